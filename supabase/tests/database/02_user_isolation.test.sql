-- User A can never read, change or delete user B's rows, nor create rows owned by B;
-- coaches see only the people they coach; signed-out visitors (anon) see nothing.
begin;
create extension if not exists pgtap with schema extensions;
select * from no_plan();

create schema tests;
grant usage on schema tests to anon, authenticated;

-- Rows a statement touched, 0 when the role may not run it at all.
create function tests.affected(statement text) returns bigint language plpgsql as $$
declare n bigint;
begin
  execute statement;
  get diagnostics n = row_count;
  return n;
exception when insufficient_privilege then
  return 0;
end $$;

-- Rows of a relation the current role can see, 0 when it may not select at all.
create function tests.visible(rel regclass, filter text default 'true') returns bigint language plpgsql as $$
declare n bigint;
begin
  execute format('select count(*) from %s where %s', rel, filter) into n;
  return n;
exception when insufficient_privilege then
  return 0;
end $$;

create function tests.act_as(role_name text, user_id uuid, app_role text default null) returns void
language plpgsql as $$
begin
  perform set_config('request.jwt.claims', json_build_object(
    'sub', user_id, 'role', role_name,
    'app_metadata', case when app_role is null then '{}'::json else json_build_object('role', app_role) end
  )::text, true);
  execute format('set local role %I', role_name);
end $$;
grant execute on all functions in schema tests to anon, authenticated;

-- Tables with an owner column, in every exposed schema.
create view tests.owned_tables as
select c.oid::regclass as rel
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = c.oid and a.attname = 'user_id' and not a.attisdropped
where n.nspname = any (string_to_array(current_setting('pgrst.db_schemas'), ','))
  and c.relkind in ('r', 'p');
grant select on tests.owned_tables to anon, authenticated;

-- Fixtures, written as the table owner.
insert into auth.users (id, email, raw_app_meta_data) values
  ('aaaaaaaa-0000-0000-0000-00000000000a', 'a@example.test', '{}'),
  ('bbbbbbbb-0000-0000-0000-00000000000b', 'b@example.test', '{}'),
  ('cccccccc-0000-0000-0000-00000000000c', 'coach@example.test', '{"role": "coach"}'),
  ('dddddddd-0000-0000-0000-00000000000d', 'mallory@example.test', '{}');
-- Mallory sets user_metadata to claim she is a coach: it must not matter.
update auth.users set raw_user_meta_data = '{"role": "coach"}' where email = 'mallory@example.test';

insert into public.daily_engagement_scores (user_id, date, score, momentum_state)
select u, current_date - d, 50 + d, 'steady'
from unnest(array['aaaaaaaa-0000-0000-0000-00000000000a', 'bbbbbbbb-0000-0000-0000-00000000000b']::uuid[]) u,
     generate_series(0, 2) d;
insert into public.momentum_notifications (user_id, kind, title)
select u, 'reminder', 'Keep going' from unnest(array['aaaaaaaa-0000-0000-0000-00000000000a', 'bbbbbbbb-0000-0000-0000-00000000000b']::uuid[]) u;
insert into public.engagement_events (user_id, event_type)
select u, 'app_open' from unnest(array['aaaaaaaa-0000-0000-0000-00000000000a', 'bbbbbbbb-0000-0000-0000-00000000000b']::uuid[]) u;
insert into public.assessments (user_id, phq9_score, gad7_score)
select u, 12, 9 from unnest(array['aaaaaaaa-0000-0000-0000-00000000000a', 'bbbbbbbb-0000-0000-0000-00000000000b']::uuid[]) u;
insert into public.metric_confidence_cache (user_id, metric, confidence)
select u, 'sleep', 0.8 from unnest(array['aaaaaaaa-0000-0000-0000-00000000000a', 'bbbbbbbb-0000-0000-0000-00000000000b']::uuid[]) u;
-- The coach looks after A only.
insert into public.coach_interventions (user_id, coach_id, kind) values
  ('aaaaaaaa-0000-0000-0000-00000000000a', 'cccccccc-0000-0000-0000-00000000000c', 'check_in'),
  ('bbbbbbbb-0000-0000-0000-00000000000b', 'dddddddd-0000-0000-0000-00000000000d', 'check_in');
insert into public.feature_flags (key, enabled) values ('momentum_v2', true);
insert into public.terra_webhooks_raw (event_type, signature, payload) values ('activity', 'sig', '{}');
insert into public.background_jobs (job_type) values ('recalculate');
insert into public.background_jobs_dlq (job_id, job_type, payload, error, attempts) values (1, 'x', '{}', 'boom', 5);
insert into public.rate_limits (key, window_start, request_count) values ('ip:1', now(), 3);
insert into public.engagement_events_archive (id, user_id, event_type, payload, occurred_at)
values (1, 'bbbbbbbb-0000-0000-0000-00000000000b', 'app_open', '{}', now());

-- ---------------------------------------------------------------- user A
select tests.act_as('authenticated', 'aaaaaaaa-0000-0000-0000-00000000000a');

select is(tests.visible(rel, $$user_id = 'bbbbbbbb-0000-0000-0000-00000000000b'$$), 0::bigint,
          format('A cannot read B''s rows in %s', rel))
from tests.owned_tables order by rel::text;
select is(tests.affected(format($$update %s set user_id = user_id where user_id = 'bbbbbbbb-0000-0000-0000-00000000000b'$$, rel)),
          0::bigint, format('A cannot update B''s rows in %s', rel))
from tests.owned_tables order by rel::text;
select is(tests.affected(format($$delete from %s where user_id = 'bbbbbbbb-0000-0000-0000-00000000000b'$$, rel)),
          0::bigint, format('A cannot delete B''s rows in %s', rel))
from tests.owned_tables order by rel::text;
select is(tests.affected(format($$update %s set user_id = 'aaaaaaaa-0000-0000-0000-00000000000a' where user_id = 'bbbbbbbb-0000-0000-0000-00000000000b'$$, rel)),
          0::bigint, format('A cannot take over B''s rows in %s', rel))
from tests.owned_tables order by rel::text;

select is(tests.visible('public.assessments'), 1::bigint, 'A reads exactly her own assessment');
select is(tests.visible('public.daily_engagement_scores'), 3::bigint, 'A reads her own three scores');
select is(tests.visible('public.coach_interventions'), 1::bigint, 'A reads the intervention planned for her');
select is(tests.visible('public.feature_flags'), 1::bigint, 'A reads feature flags');

-- Inserting rows owned by B is refused by the policies (or by missing privileges).
select throws_ok($$insert into public.assessments (user_id, phq9_score, gad7_score) values ('bbbbbbbb-0000-0000-0000-00000000000b', 1, 1)$$,
                 '42501', null, 'A cannot submit an assessment as B');
select throws_ok($$insert into public.engagement_events (user_id, event_type) values ('bbbbbbbb-0000-0000-0000-00000000000b', 'forged')$$,
                 '42501', null, 'A cannot record events as B');
select throws_ok($$insert into public.momentum_notifications (user_id, kind, title) values ('bbbbbbbb-0000-0000-0000-00000000000b', 'reminder', 'x')$$,
                 '42501', null, 'A cannot send B a notification');
select throws_ok($$insert into public.daily_engagement_scores (user_id, date, score, momentum_state) values ('bbbbbbbb-0000-0000-0000-00000000000b', current_date + 1, 1, 'steady')$$,
                 '42501', null, 'A cannot write B''s scores');
select throws_ok($$insert into public.metric_confidence_cache (user_id, metric, confidence) values ('bbbbbbbb-0000-0000-0000-00000000000b', 'hrv', 0.1)$$,
                 '42501', null, 'A cannot write B''s confidence cache');
select throws_ok($$insert into public.coach_interventions (user_id, coach_id, kind) values ('bbbbbbbb-0000-0000-0000-00000000000b', 'aaaaaaaa-0000-0000-0000-00000000000a', 'call')$$,
                 '42501', null, 'A, not a coach, cannot create interventions');
select throws_ok($$insert into public.feature_flags (key, enabled) values ('forged', true)$$,
                 '42501', null, 'A cannot create feature flags');
select lives_ok($$insert into public.engagement_events (user_id, event_type) values ('aaaaaaaa-0000-0000-0000-00000000000a', 'app_open')$$,
                'A records her own events');
select is(tests.affected($$update public.momentum_notifications set read_at = now() where user_id = 'aaaaaaaa-0000-0000-0000-00000000000a'$$),
          1::bigint, 'A marks her own notification read');

-- Service-only tables are closed to her.
select is(tests.visible(rel), 0::bigint, format('A sees nothing in %s', rel))
from unnest(array['public.terra_webhooks_raw', 'public.background_jobs', 'public.background_jobs_dlq',
                  'public.rate_limits', 'public.engagement_events_archive']::regclass[]) rel;
reset role;

-- ---------------------------------------------------------------- coach and Mallory
select tests.act_as('authenticated', 'cccccccc-0000-0000-0000-00000000000c', 'coach');
select is(tests.visible('public.assessments', $$user_id = 'aaaaaaaa-0000-0000-0000-00000000000a'$$), 1::bigint,
          'the coach reads the assessment of the user she coaches');
select is(tests.visible('public.assessments', $$user_id = 'bbbbbbbb-0000-0000-0000-00000000000b'$$), 0::bigint,
          'the coach cannot read assessments of users she does not coach');
select is(tests.visible('public.daily_engagement_scores', $$user_id = 'bbbbbbbb-0000-0000-0000-00000000000b'$$), 0::bigint,
          'the coach cannot read scores of users she does not coach');
select lives_ok($$insert into public.coach_interventions (user_id, coach_id, kind) values ('aaaaaaaa-0000-0000-0000-00000000000a', 'cccccccc-0000-0000-0000-00000000000c', 'call')$$,
                'the coach plans an intervention assigned to herself');
select throws_ok($$insert into public.coach_interventions (user_id, coach_id, kind) values ('bbbbbbbb-0000-0000-0000-00000000000b', 'dddddddd-0000-0000-0000-00000000000d', 'call')$$,
                 '42501', null, 'the coach cannot plan interventions for another coach');
reset role;

-- Mallory's user_metadata says coach; app_metadata does not. She stays a plain user.
select tests.act_as('authenticated', 'dddddddd-0000-0000-0000-00000000000d');
select is(tests.visible('public.assessments'), 0::bigint, 'a user_metadata "coach" reads no assessments');
select throws_ok($$insert into public.coach_interventions (user_id, coach_id, kind) values ('bbbbbbbb-0000-0000-0000-00000000000b', 'dddddddd-0000-0000-0000-00000000000d', 'call')$$,
                 '42501', null, 'a user_metadata "coach" cannot plan interventions');
reset role;

-- ---------------------------------------------------------------- anon
select tests.act_as('anon', null);
select is(tests.visible(c.oid::regclass), 0::bigint, format('anon reads nothing from %s', c.oid::regclass))
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any (string_to_array(current_setting('pgrst.db_schemas'), ','))
  and c.relkind in ('r', 'p', 'v', 'm')
order by 1;
select throws_ok($$insert into public.engagement_events (user_id, event_type) values ('aaaaaaaa-0000-0000-0000-00000000000a', 'forged')$$,
                 '42501', null, 'anon cannot record events');
reset role;

select * from finish();
rollback;
