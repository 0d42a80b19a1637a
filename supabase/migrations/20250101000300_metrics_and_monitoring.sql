-- The latest metrics per user, precomputed for the dashboard. A materialized view has
-- no RLS, so it lives in the analytics schema, which the Data API does not expose; the
-- momentum-score-calculator function reads it with the service key.
create materialized view analytics.latest_unified_metrics as
select
  u.id as user_id,
  s.date as score_date,
  s.score,
  s.momentum_state,
  a.phq9_score,
  a.gad7_score,
  a.crisis,
  a.taken_at as assessed_at,
  e.last_event_at,
  coalesce(e.events_7d, 0) as events_7d
from auth.users u
left join lateral (
  select date, score, momentum_state from public.daily_engagement_scores d
  where d.user_id = u.id order by date desc limit 1
) s on true
left join lateral (
  select phq9_score, gad7_score, crisis, taken_at from public.assessments x
  where x.user_id = u.id order by taken_at desc limit 1
) a on true
left join lateral (
  select max(occurred_at) as last_event_at,
         count(*) filter (where occurred_at > now() - interval '7 days') as events_7d
  from public.engagement_events ev where ev.user_id = u.id
) e on true
with no data;

create unique index latest_unified_metrics_user_idx on analytics.latest_unified_metrics (user_id);
revoke all on analytics.latest_unified_metrics from public, anon, authenticated;
grant usage on schema analytics to service_role;
grant select on analytics.latest_unified_metrics to service_role;

-- Refreshes without blocking readers (needs the unique index above).
create function analytics.refresh_latest_unified_metrics()
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if exists (select 1 from analytics.latest_unified_metrics limit 1) then
    refresh materialized view concurrently analytics.latest_unified_metrics;
  else
    refresh materialized view analytics.latest_unified_metrics;
  end if;
exception when object_not_in_prerequisite_state then
  -- never populated yet: a concurrent refresh is not allowed on the first run
  refresh materialized view analytics.latest_unified_metrics;
end;
$$;
revoke execute on function analytics.refresh_latest_unified_metrics() from public, anon, authenticated;
grant execute on function analytics.refresh_latest_unified_metrics() to service_role;

-- Operational views for the health check and dashboards; security_invoker so they
-- apply the caller's privileges, never the owner's.
create view monitoring.health_summary with (security_invoker = true) as
select
  now() as checked_at,
  (select count(*) from public.background_jobs where status = 'pending') as jobs_pending,
  (select count(*) from public.background_jobs
     where status = 'pending' and run_at < now() - interval '15 minutes') as jobs_overdue,
  (select count(*) from public.background_jobs_dlq
     where failed_at > now() - interval '24 hours') as dead_letters_24h,
  (select count(*) from public.terra_webhooks_raw where processed_at is null) as webhooks_unprocessed,
  (select count(*) from public.assessments
     where crisis and taken_at > now() - interval '24 hours') as crisis_assessments_24h,
  (select max(occurred_at) from public.engagement_events) as last_event_at;

create view monitoring.job_processing_stats with (security_invoker = true) as
select
  job_type,
  count(*) filter (where status = 'pending') as pending,
  count(*) filter (where status = 'running') as running,
  count(*) filter (where status = 'succeeded' and finished_at > now() - interval '24 hours') as succeeded_24h,
  count(*) filter (where status = 'failed') as failed,
  round(avg(extract(epoch from finished_at - created_at))
        filter (where status = 'succeeded')::numeric, 2) as avg_seconds_to_finish,
  max(attempts) as max_attempts_seen
from public.background_jobs
group by job_type;

revoke all on monitoring.health_summary, monitoring.job_processing_stats from public, anon, authenticated;
grant usage on schema monitoring to service_role;
grant select on monitoring.health_summary, monitoring.job_processing_stats to service_role;
