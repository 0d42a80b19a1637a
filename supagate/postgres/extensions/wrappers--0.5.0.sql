-- Supabase wrappers as migrations see it: a handler and a validator per wrapper, enough to
-- create foreign data wrappers, servers and foreign tables. The handlers are postgres_fdw's
-- (a real FDW of this PostgreSQL); querying a foreign table fails, as there is no remote.
DO $do$
DECLARE w text;
BEGIN
  FOREACH w IN ARRAY ARRAY['stripe', 'firebase', 's3', 'clickhouse', 'big_query', 'airtable', 'logflare', 'auth0',
                           'cognito', 'mssql', 'redis', 'wasm', 'iceberg', 'duckdb', 'cal', 'calendly', 'notion',
                           'paddle', 'snowflake', 'gravatar', 'hubspot', 'orb', 'slack', 'cfd1', 'clerk'] LOOP
    EXECUTE format('CREATE FUNCTION %I() RETURNS fdw_handler AS ''$libdir/postgres_fdw'', ''postgres_fdw_handler'' '
                   'LANGUAGE C STRICT', w || '_fdw_handler');
    EXECUTE format('CREATE FUNCTION %I(options text[], catalog oid) RETURNS void LANGUAGE plpgsql AS '
                   '$f$ BEGIN RETURN; END $f$', w || '_fdw_validator');
    EXECUTE format('CREATE FUNCTION %I() RETURNS jsonb LANGUAGE sql AS $f$ SELECT ''{}''::jsonb $f$', w || '_fdw_meta');
  END LOOP;
END $do$;
CREATE TABLE wrappers_fdw_stats (fdw_name text PRIMARY KEY, create_times bigint, rows_in bigint, rows_out bigint,
                                 bytes_in bigint, bytes_out bigint, metadata jsonb, created_at timestamptz DEFAULT now(),
                                 updated_at timestamptz DEFAULT now());
