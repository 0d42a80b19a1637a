-- Housekeeping on a schedule (pg_cron, available on every Supabase project).
create extension if not exists pg_cron;

select cron.schedule('cleanup-rate-limits', '7 * * * *', $$select public.cleanup_rate_limits()$$);
select cron.schedule('refresh-latest-unified-metrics', '*/15 * * * *',
                     $$select analytics.refresh_latest_unified_metrics()$$);
