-- Every table the Data API can reach has row level security on, and the objects that
-- must stay private are out of the clients' reach.
begin;
create extension if not exists pgtap with schema extensions;
select * from no_plan();

-- RLS on every table in every exposed schema (read from pgrst.db_schemas, as PostgREST does).
select ok(c.relrowsecurity, format('RLS is enabled on %s', c.oid::regclass))
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any (string_to_array(current_setting('pgrst.db_schemas'), ','))
  and c.relkind in ('r', 'p')
order by 1;

select tables_are('public', array[
  'daily_engagement_scores', 'momentum_notifications', 'coach_interventions', 'engagement_events',
  'assessments', 'metric_confidence_cache', 'feature_flags', 'terra_webhooks_raw', 'background_jobs',
  'background_jobs_dlq', 'rate_limits', 'engagement_events_archive'
], 'public holds exactly the tables of the app');

-- Client-facing tables have owner policies for authenticated and none for anon.
select policies_are('public', 'assessments', array[
  'owner reads own assessments', 'owner submits own assessments', 'coach reads assessments of coached users']);
select policy_roles_are('public', 'assessments', 'owner reads own assessments', array['authenticated']);
select policy_roles_are('public', 'daily_engagement_scores', 'owner reads own scores', array['authenticated']);
select policy_roles_are('public', 'engagement_events', 'owner records own events', array['authenticated']);

-- No policy anywhere trusts user_metadata (users can edit it).
select is_empty($$
  select policyname from pg_policies
  where coalesce(qual, '') || coalesce(with_check, '') ilike '%user_metadata%'
$$, 'no policy reads user_metadata');

-- Service-only tables: no privilege at all for the client roles.
select is_empty($$
  select table_name || ':' || grantee || ':' || privilege_type
  from information_schema.role_table_grants
  where table_schema = 'public'
    and table_name in ('terra_webhooks_raw', 'background_jobs', 'background_jobs_dlq',
                       'rate_limits', 'engagement_events_archive')
    and grantee in ('anon', 'authenticated')
$$, 'service-only tables grant nothing to anon or authenticated');

-- The materialized view and the audit log are outside every exposed schema.
select is(
  (select n.nspname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where c.relname = 'latest_unified_metrics' and c.relkind = 'm'),
  'analytics', 'latest_unified_metrics lives in the non-exposed analytics schema');
select ok(not ('analytics' = any (string_to_array(current_setting('pgrst.db_schemas'), ','))),
  'analytics is not exposed');
select ok(not has_table_privilege('authenticated', 'analytics.latest_unified_metrics', 'select'),
  'authenticated cannot select latest_unified_metrics');
select ok(not has_table_privilege('authenticated', 'private.audit_log', 'select'),
  'authenticated cannot read the audit log');
select ok(not has_schema_privilege('anon', 'private', 'usage'), 'anon cannot use the private schema');

-- SECURITY DEFINER functions pin their search_path.
select is_empty($$
  select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where p.prosecdef and n.nspname in ('public', 'private', 'analytics', 'monitoring')
    and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%')
$$, 'every SECURITY DEFINER function pins search_path');

-- Monitoring views run with the caller's privileges.
select ok(coalesce('security_invoker=true' = any (c.reloptions), false),
          format('%s is security_invoker', c.oid::regclass))
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'monitoring' and c.relkind = 'v' order by 1;

-- Scheduled housekeeping exists.
select set_eq($$ select jobname from cron.job $$,
  array['cleanup-rate-limits', 'refresh-latest-unified-metrics'], 'pg_cron jobs are scheduled');

select * from finish();
rollback;
