-- Supabase's API roles (cluster-wide, created once per cluster).
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;
create role supabase_admin login superuser createdb createrole replication bypassrls;
create role supabase_auth_admin nologin noinherit createrole;
alter role postgres bypassrls;
-- postgres may act as the API roles, as on Supabase (isolation probes SET ROLE to them).
grant anon, authenticated, service_role to postgres;
