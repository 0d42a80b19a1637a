drop function if exists public.cleanup_rate_limits(interval);
drop table if exists public.engagement_events_archive;
drop table if exists public.rate_limits;
drop table if exists public.background_jobs_dlq;
drop table if exists public.background_jobs;
drop table if exists public.terra_webhooks_raw;
