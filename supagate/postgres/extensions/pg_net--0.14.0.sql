-- pg_net as migrations and webhooks see it: the `net` schema, its queue tables and the
-- request functions, which raise when called (the shadow database sends no HTTP).
CREATE SCHEMA IF NOT EXISTS net;
CREATE TABLE net.http_request_queue (id bigserial, method text NOT NULL, url text NOT NULL, headers jsonb NOT NULL,
                                     body bytea, timeout_milliseconds integer NOT NULL);
CREATE TABLE net._http_response (id bigint, status_code integer, content_type text, headers jsonb, content text,
                                 timed_out boolean, error_msg text, created timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION net._placeholder(what text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
    MESSAGE = what || ' is a placeholder in the supagate shadow database (pg_net sends no requests there)';
END $$;
CREATE FUNCTION net.http_get(url text, params jsonb DEFAULT '{}', headers jsonb DEFAULT '{}',
                             timeout_milliseconds integer DEFAULT 5000) RETURNS bigint
  LANGUAGE sql AS $$ SELECT net._placeholder('net.http_get') $$;
CREATE FUNCTION net.http_post(url text, body jsonb DEFAULT '{}', params jsonb DEFAULT '{}',
                              headers jsonb DEFAULT '{"Content-Type": "application/json"}',
                              timeout_milliseconds integer DEFAULT 5000) RETURNS bigint
  LANGUAGE sql AS $$ SELECT net._placeholder('net.http_post') $$;
CREATE FUNCTION net.http_delete(url text, params jsonb DEFAULT '{}', headers jsonb DEFAULT '{}',
                                timeout_milliseconds integer DEFAULT 5000) RETURNS bigint
  LANGUAGE sql AS $$ SELECT net._placeholder('net.http_delete') $$;
REVOKE ALL ON FUNCTION net.http_get(text, jsonb, jsonb, integer), net.http_post(text, jsonb, jsonb, jsonb, integer),
  net.http_delete(text, jsonb, jsonb, integer) FROM PUBLIC;
