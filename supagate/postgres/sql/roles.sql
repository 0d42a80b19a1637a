-- Supabase's roles, cluster-wide, created once per cluster. Followed: supabase/postgres
-- migrations/db/init-scripts (00000000000000-initial-schema, -auth-schema, -storage-schema,
-- -post-setup) and migrations/db/migrations up to 20240822021428_enable_webhooks_by_default,
-- as in the 15.8 image (migrations/schema-15.sql). Idempotent: a database given by URL may
-- already have some of them.
create function pg_temp.ensure_role(name text, options text) returns void language plpgsql as $$
begin
  if not exists (select 1 from pg_roles where rolname = name) then
    execute format('create role %I %s', name, options);
  end if;
end $$;
select pg_temp.ensure_role('supabase_admin', 'login superuser createdb createrole replication bypassrls');
select pg_temp.ensure_role('supabase_replication_admin', 'login replication');
select pg_temp.ensure_role('supabase_read_only_user', 'login bypassrls');
grant pg_read_all_data to supabase_read_only_user;
select pg_temp.ensure_role('anon', 'nologin noinherit');
select pg_temp.ensure_role('authenticated', 'nologin noinherit');
select pg_temp.ensure_role('service_role', 'nologin noinherit bypassrls');
select pg_temp.ensure_role('authenticator', 'login noinherit');
grant anon, authenticated, service_role to authenticator;
select pg_temp.ensure_role('supabase_auth_admin', 'login noinherit createrole noreplication');
select pg_temp.ensure_role('supabase_storage_admin', 'login noinherit createrole noreplication');
select pg_temp.ensure_role('supabase_functions_admin', 'login noinherit createrole noreplication');
select pg_temp.ensure_role('supabase_realtime_admin', 'nologin noinherit');
select pg_temp.ensure_role('dashboard_user', 'nosuperuser createdb createrole replication');
select pg_temp.ensure_role('pgbouncer', 'login');
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role supabase_auth_admin set search_path = auth;
alter role supabase_storage_admin set search_path = storage;
alter role supabase_functions_admin set search_path = supabase_functions;
-- On Supabase `postgres` bypasses RLS (it is not a superuser there; here it is, to build
-- the shadow) and may act as the API roles.
alter role postgres bypassrls;
grant anon, authenticated, service_role to postgres;
