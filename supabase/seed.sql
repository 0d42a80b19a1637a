-- Staging demo data. Never production: the stack settings, the policy pack and the database
-- itself (ops.assert_not_production) refuse it there. Recorded in
-- supabase_migrations.seed_files, as `supabase db push --include-seed` records it.
insert into public.terra_webhooks_raw (event_type, terra_user_id, signature, payload, processed_at)
values ('activity', 'demo-terra-user', 'demo-signature',
        '{"type": "activity", "data": [{"steps": 8421, "active_minutes": 47}]}', now());

insert into public.background_jobs (job_type, payload, status, finished_at)
values ('momentum.recalculate', '{"demo": true}', 'succeeded', now());
