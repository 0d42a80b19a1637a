drop view if exists monitoring.job_processing_stats;
drop view if exists monitoring.health_summary;
drop function if exists analytics.refresh_latest_unified_metrics();
drop materialized view if exists analytics.latest_unified_metrics;
