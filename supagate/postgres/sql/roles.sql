-- Supabase's roles, cluster-wide, created once per cluster. Followed: supabase/postgres
-- migrations/db/init-scripts (00000000000000-initial-schema, -auth-schema, -storage-schema,
-- -post-setup) and migrations/db/migrations up to 20240822021428_enable_webhooks_by_default,
-- as in the 15.8 image (migrations/schema-15.sql).
create role supabase_admin login superuser createdb createrole replication bypassrls;
create role supabase_replication_admin login replication;
create role supabase_read_only_user login bypassrls;
grant pg_read_all_data to supabase_read_only_user;
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;
create role supabase_auth_admin login noinherit createrole noreplication;
create role supabase_storage_admin login noinherit createrole noreplication;
create role supabase_functions_admin login noinherit createrole noreplication;
create role supabase_realtime_admin nologin noinherit;
create role dashboard_user nosuperuser createdb createrole replication;
create role pgbouncer login;
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role supabase_auth_admin set search_path = auth;
alter role supabase_storage_admin set search_path = storage;
alter role supabase_functions_admin set search_path = supabase_functions;
-- On Supabase `postgres` bypasses RLS (it is not a superuser there; here it is, to build
-- the shadow) and may act as the API roles.
alter role postgres bypassrls;
grant anon, authenticated, service_role to postgres;
