-- What every database of a hosted project has before its first migration, apart from
-- auth and storage (auth.sql, storage.sql): the extensions schema with the extensions
-- Supabase preinstalls, the realtime publication, API grants and default privileges.
-- Sources: supabase/postgres init scripts and migrations/schema-15.sql (see roles.sql).
create schema if not exists extensions;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists pg_stat_statements with schema extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
grant all on schema extensions to dashboard_user;

create publication supabase_realtime;

grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on sequences to postgres, anon, authenticated, service_role;

-- GraphQL: pg_graphql lives in `graphql`; `graphql_public.graphql` is what the API calls.
create schema if not exists graphql_public;
grant usage on schema graphql_public to postgres, anon, authenticated, service_role;
-- Extensions Debian lacks come from the embedded cluster's placeholders; a database given
-- by URL may not have them, and then they are left out (the shadow reports what fails).
create function pg_temp.create_extension(name text, schema_name text) returns void language plpgsql as $$
begin
  if exists (select 1 from pg_available_extensions where pg_available_extensions.name = create_extension.name) then
    execute format('create extension if not exists %I with schema %I', name, schema_name);
  end if;
end $$;
create schema if not exists graphql;
select pg_temp.create_extension('pg_graphql', 'graphql');
create or replace function graphql_public.graphql("operationName" text default null, query text default null,
                                                  variables jsonb default null, extensions jsonb default null)
  returns jsonb language plpgsql as $$
begin
  return graphql.resolve(query, coalesce(variables, '{}'), "operationName", extensions);
end $$;
grant execute on function graphql_public.graphql(text, text, jsonb, jsonb) to postgres, anon, authenticated, service_role;

-- Vault (the supabase_vault extension in `vault`).
create schema if not exists vault;
select pg_temp.create_extension('supabase_vault', 'vault');

-- pg_net and database webhooks, on by default since 20240822021428_enable_webhooks_by_default.
select pg_temp.create_extension('pg_net', 'extensions');
do $$ begin
  if exists (select 1 from pg_namespace where nspname = 'net') then
    grant usage on schema net to supabase_functions_admin, postgres, anon, authenticated, service_role;
  end if;
end $$;
create schema if not exists supabase_functions authorization supabase_admin;
grant usage on schema supabase_functions to postgres, anon, authenticated, service_role;
alter default privileges in schema supabase_functions grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema supabase_functions grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema supabase_functions grant all on sequences to postgres, anon, authenticated, service_role;
create table supabase_functions.migrations (version text primary key, inserted_at timestamptz not null default now());
insert into supabase_functions.migrations (version) values ('initial'), ('20210809183423_update_grants');
create table supabase_functions.hooks (
  id bigserial primary key,
  hook_table_id integer not null,
  hook_name text not null,
  created_at timestamptz not null default now(),
  request_id bigint
);
create function supabase_functions.http_request() returns trigger language plpgsql
  security definer set search_path = supabase_functions as $$
declare
  request_id bigint;
  url text := TG_ARGV[0]::text;
  method text := TG_ARGV[1]::text;
  headers jsonb := coalesce(nullif(TG_ARGV[2], 'null')::jsonb, '{"Content-Type": "application/json"}');
  params jsonb := coalesce(nullif(TG_ARGV[3], 'null')::jsonb, '{}');
  timeout_ms integer := coalesce(nullif(TG_ARGV[4], 'null')::integer, 1000);
begin
  if method = 'GET' then
    select net.http_get(url, params, headers, timeout_ms) into request_id;
  else
    select net.http_post(url, jsonb_build_object('old_record', OLD, 'record', NEW, 'type', TG_OP,
                         'table', TG_TABLE_NAME, 'schema', TG_TABLE_SCHEMA), params, headers, timeout_ms)
      into request_id;
  end if;
  insert into supabase_functions.hooks (hook_table_id, hook_name, request_id) values (TG_RELID, TG_NAME, request_id);
  return NEW;
end $$;
alter table supabase_functions.migrations owner to supabase_functions_admin;
alter table supabase_functions.hooks owner to supabase_functions_admin;
alter function supabase_functions.http_request() owner to supabase_functions_admin;
revoke all on function supabase_functions.http_request() from public;
grant execute on function supabase_functions.http_request() to postgres, anon, authenticated, service_role;

-- Realtime: the schema, its broadcast/presence authorization table and topic().
create schema if not exists realtime;
grant usage on schema realtime to postgres, anon, authenticated, service_role;
create table realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp not null default now(),
  inserted_at timestamp not null default now(),
  id uuid not null default gen_random_uuid(),
  primary key (id, inserted_at)
);
alter table realtime.messages enable row level security;
alter table realtime.messages owner to supabase_realtime_admin;
grant select, insert, update on realtime.messages to anon, authenticated, service_role;
create function realtime.topic() returns text language sql stable as
  $$ select nullif(current_setting('realtime.topic', true), '')::text $$;
grant execute on function realtime.topic() to anon, authenticated, service_role;
