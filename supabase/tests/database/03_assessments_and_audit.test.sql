-- Clinical rules of the assessments table and the audit trail of health data.
begin;
create extension if not exists pgtap with schema extensions;
select plan(9);

insert into auth.users (id, email) values ('aaaaaaaa-0000-0000-0000-00000000000a', 'a@example.test');

select lives_ok($$insert into public.assessments (user_id, phq9_score, gad7_score) values ('aaaaaaaa-0000-0000-0000-00000000000a', 27, 21)$$,
                'the highest PHQ-9 (27) and GAD-7 (21) scores are accepted');
select throws_ok($$insert into public.assessments (user_id, phq9_score, gad7_score) values ('aaaaaaaa-0000-0000-0000-00000000000a', 28, 0)$$,
                 '23514', null, 'PHQ-9 above 27 is refused');
select throws_ok($$insert into public.assessments (user_id, phq9_score, gad7_score) values ('aaaaaaaa-0000-0000-0000-00000000000a', 0, 22)$$,
                 '23514', null, 'GAD-7 above 21 is refused');
select throws_ok($$insert into public.assessments (user_id, phq9_score, gad7_score) values ('aaaaaaaa-0000-0000-0000-00000000000a', -1, 0)$$,
                 '23514', null, 'negative scores are refused');

insert into public.assessments (user_id, phq9_score, gad7_score) values
  ('aaaaaaaa-0000-0000-0000-00000000000a', 19, 14),
  ('aaaaaaaa-0000-0000-0000-00000000000a', 20, 0),
  ('aaaaaaaa-0000-0000-0000-00000000000a', 0, 15);

select results_eq(
  $$ select phq9_score::int, gad7_score::int, crisis from public.assessments
     where (phq9_score, gad7_score) in ((19, 14), (20, 0), (0, 15)) order by phq9_score, gad7_score $$,
  $$ values (0, 15, true), (19, 14, false), (20, 0, true) $$,
  'crisis is set when PHQ-9 >= 20 or GAD-7 >= 15, and only then');

-- The audit trigger records who changed what, as the signed-in user.
set local role authenticated;
set local request.jwt.claims = '{"sub": "aaaaaaaa-0000-0000-0000-00000000000a", "role": "authenticated"}';
insert into public.assessments (phq9_score, gad7_score) values (3, 4);
reset role;

select is((select actor from private.audit_log where table_name = 'public.assessments'
           and new_data ->> 'phq9_score' = '3'),
          'aaaaaaaa-0000-0000-0000-00000000000a'::uuid, 'the audit log names the user who submitted');
select is((select actor_role from private.audit_log where new_data ->> 'phq9_score' = '3'),
          'authenticated', 'the audit log records the role');
select is((select count(*) from private.audit_log where table_name = 'public.assessments' and operation = 'INSERT')::int,
          (select count(*) from public.assessments)::int, 'every assessment insert is audited');
select function_privs_are('private', 'audit_trigger', array[]::text[], 'authenticated', array[]::text[],
                          'authenticated cannot call the audit trigger function');

select * from finish();
rollback;
