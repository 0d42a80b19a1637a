-- pgsql-http as migrations see it: its types and request functions; they raise when called.
CREATE DOMAIN http_method AS text;
CREATE DOMAIN content_type AS text CHECK (VALUE ~ '^\S+\/\S+');
CREATE TYPE http_header AS (field character varying, value character varying);
CREATE TYPE http_request AS (method http_method, uri character varying, headers http_header[],
                             content_type character varying, content character varying);
CREATE TYPE http_response AS (status integer, content_type character varying, headers http_header[],
                              content character varying);
CREATE FUNCTION _http_placeholder(what text) RETURNS http_response LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
    MESSAGE = what || ' is a placeholder in the supagate shadow database (http sends no requests there)';
END $$;
CREATE FUNCTION http(request http_request) RETURNS http_response LANGUAGE sql AS $$ SELECT _http_placeholder('http') $$;
CREATE FUNCTION http_get(uri character varying) RETURNS http_response LANGUAGE sql AS $$ SELECT _http_placeholder('http_get') $$;
CREATE FUNCTION http_get(uri character varying, data jsonb) RETURNS http_response
  LANGUAGE sql AS $$ SELECT _http_placeholder('http_get') $$;
CREATE FUNCTION http_post(uri character varying, content character varying, content_type character varying)
  RETURNS http_response LANGUAGE sql AS $$ SELECT _http_placeholder('http_post') $$;
CREATE FUNCTION http_post(uri character varying, data jsonb) RETURNS http_response
  LANGUAGE sql AS $$ SELECT _http_placeholder('http_post') $$;
CREATE FUNCTION http_delete(uri character varying) RETURNS http_response
  LANGUAGE sql AS $$ SELECT _http_placeholder('http_delete') $$;
CREATE FUNCTION http_header(field character varying, value character varying) RETURNS http_header
  LANGUAGE sql AS $$ SELECT $1, $2 $$;
CREATE FUNCTION urlencode(string character varying) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT $1::text $$;
CREATE FUNCTION http_set_curlopt(curlopt character varying, value character varying) RETURNS boolean
  LANGUAGE sql AS $$ SELECT true $$;
