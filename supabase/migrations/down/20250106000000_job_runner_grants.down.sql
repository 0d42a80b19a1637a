revoke select, delete on public.rate_limits from supagate_job_runner;
revoke execute on function public.cleanup_rate_limits(interval) from supagate_job_runner;
revoke execute on function analytics.refresh_latest_unified_metrics() from supagate_job_runner;
revoke usage on schema analytics from supagate_job_runner;
