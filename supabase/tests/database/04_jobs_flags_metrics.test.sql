-- Housekeeping functions, the feature flag rollout and the metrics refresh.
begin;
create extension if not exists pgtap with schema extensions;
select plan(12);

insert into public.rate_limits (key, window_start, request_count) values
  ('ip:old', now() - interval '3 hours', 10),
  ('ip:new', now() - interval '5 minutes', 2);
select is(public.cleanup_rate_limits(), 1, 'cleanup_rate_limits removes the expired window');
select is((select array_agg(key) from public.rate_limits), array['ip:new'], 'the current window stays');
select ok(not has_function_privilege('authenticated', 'public.cleanup_rate_limits(interval)', 'execute'),
          'clients cannot run cleanup_rate_limits');
select ok(has_function_privilege('service_role', 'public.cleanup_rate_limits(interval)', 'execute'),
          'the service role can run cleanup_rate_limits');

insert into auth.users (id, email, raw_app_meta_data) values
  ('aaaaaaaa-0000-0000-0000-00000000000a', 'a@example.test', '{}'),
  ('cccccccc-0000-0000-0000-00000000000c', 'coach@example.test', '{"role": "coach"}');
insert into ops.flags (key, salt, enabled, steps, audience) values
  ('all_in', 'all_in', true, '{10000}', 'everyone'), ('nobody', 'nobody', true, '{0}', 'everyone'),
  ('switched_off', 'switched_off', false, '{10000}', 'everyone'), ('coach_tools', 'coach_tools', true, '{10000}', 'coaches');
insert into ops.flags (key, kind, salt, enabled) values ('crisis_detection', 'safety', 'crisis_detection', true)
  on conflict (key) do nothing;

set local role authenticated;
set local request.jwt.claims = '{"sub": "aaaaaaaa-0000-0000-0000-00000000000a", "role": "authenticated", "app_metadata": {}}';
select ok(public.feature_enabled('all_in'), 'a flag at 100% is on');
select ok(not public.feature_enabled('nobody'), 'a flag at 0% is off');
select ok(not public.feature_enabled('switched_off'), 'a disabled flag is off');
select ok(not public.feature_enabled('coach_tools'), 'a coaches-only flag is off for members');
set local request.jwt.claims = '{"sub": "cccccccc-0000-0000-0000-00000000000c", "role": "authenticated", "app_metadata": {"role": "coach"}}';
select ok(public.feature_enabled('coach_tools'), 'a coaches-only flag is on for coaches');
select ok(public.feature_enabled('crisis_detection'), 'a safety flag is on');
select is((select reason from public.my_feature_flags() where key = 'nobody'), 'DEFAULT',
          'the bulk read says why a flag is off');
reset role;

insert into public.daily_engagement_scores (user_id, date, score, momentum_state)
values ('aaaaaaaa-0000-0000-0000-00000000000a', current_date, 72.5, 'rising');
select analytics.refresh_latest_unified_metrics();
select analytics.refresh_latest_unified_metrics();
select is((select score from analytics.latest_unified_metrics where user_id = 'aaaaaaaa-0000-0000-0000-00000000000a'),
          72.5::numeric(5, 2), 'the refreshed metrics carry the latest score (refresh runs twice: plain, then concurrent)');

select * from finish();
rollback;
