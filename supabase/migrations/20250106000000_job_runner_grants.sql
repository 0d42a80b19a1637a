-- What the maintenance jobs (maintenance.jobs in Pulumi.<stack>.yaml) may do. They run as
-- supagate_job_runner (supagate's ops migration), which owns nothing and holds only this:
-- the metrics refresh (a definer function) and the rate-limit cleanup (its table).
grant usage on schema analytics to supagate_job_runner;
grant execute on function analytics.refresh_latest_unified_metrics() to supagate_job_runner;
grant execute on function public.cleanup_rate_limits(interval) to supagate_job_runner;
grant select, delete on public.rate_limits to supagate_job_runner;
