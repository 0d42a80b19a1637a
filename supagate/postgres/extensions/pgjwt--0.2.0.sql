-- pgjwt as migrations see it: sign, verify and the url helpers; they raise when called.
CREATE FUNCTION _pgjwt_placeholder(what text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
    MESSAGE = what || ' is a placeholder in the supagate shadow database (pgjwt is not installed there)';
END $$;
CREATE FUNCTION url_encode(data bytea) RETURNS text LANGUAGE sql AS $$ SELECT _pgjwt_placeholder('url_encode') $$;
CREATE FUNCTION url_decode(data text) RETURNS bytea LANGUAGE sql AS $$ SELECT _pgjwt_placeholder('url_decode')::bytea $$;
CREATE FUNCTION algorithm_sign(signables text, secret text, algorithm text) RETURNS text
  LANGUAGE sql AS $$ SELECT _pgjwt_placeholder('algorithm_sign') $$;
CREATE FUNCTION sign(payload json, secret text, algorithm text DEFAULT 'HS256') RETURNS text
  LANGUAGE sql AS $$ SELECT _pgjwt_placeholder('sign') $$;
CREATE FUNCTION verify(token text, secret text, algorithm text DEFAULT 'HS256')
  RETURNS TABLE (header json, payload json, valid boolean)
  LANGUAGE plpgsql AS $$ BEGIN PERFORM _pgjwt_placeholder('verify'); END $$;
