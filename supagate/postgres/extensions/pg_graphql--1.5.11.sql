-- pg_graphql as the API and migrations see it: graphql.resolve raises when called.
CREATE FUNCTION graphql.resolve(query text, variables jsonb DEFAULT '{}', "operationName" text DEFAULT NULL,
                                extensions jsonb DEFAULT NULL) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
    MESSAGE = 'graphql.resolve is a placeholder in the supagate shadow database (pg_graphql is not installed there)';
END $$;
CREATE FUNCTION graphql.comment_directive(comment_ text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS
  $$ SELECT NULL::jsonb $$;
GRANT USAGE ON SCHEMA graphql TO postgres, anon, authenticated, service_role;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA graphql TO postgres, anon, authenticated, service_role;
