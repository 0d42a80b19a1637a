-- pgvector as migrations see it: the types with their dimension modifier, casts, operators
-- and functions. Values are kept as text; every operator and function raises. No index
-- access methods (hnsw, ivfflat): such an index is reported as shadow-unsupported.
CREATE FUNCTION _placeholder(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
    MESSAGE = what || ' is a placeholder in the supagate shadow database (pgvector is not installed there)';
END $$;
DO $do$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['vector', 'halfvec', 'sparsevec'] LOOP
    EXECUTE format('CREATE FUNCTION %1$I_in(cstring, oid, integer) RETURNS %1$I AS ''textin'' LANGUAGE internal IMMUTABLE STRICT', t);
    EXECUTE format('CREATE FUNCTION %1$I_out(%1$I) RETURNS cstring AS ''textout'' LANGUAGE internal IMMUTABLE STRICT', t);
    EXECUTE format('CREATE FUNCTION %1$I_typmod_in(cstring[]) RETURNS integer AS ''varchartypmodin'' LANGUAGE internal IMMUTABLE STRICT', t);
    EXECUTE format('CREATE FUNCTION %1$I_typmod_out(integer) RETURNS cstring AS ''varchartypmodout'' LANGUAGE internal IMMUTABLE STRICT', t);
    EXECUTE format('CREATE TYPE %1$I (INPUT = %1$I_in, OUTPUT = %1$I_out, TYPMOD_IN = %1$I_typmod_in, '
                   'TYPMOD_OUT = %1$I_typmod_out, INTERNALLENGTH = VARIABLE, STORAGE = extended)', t);
    EXECUTE format('CREATE FUNCTION %1$I(%1$I, integer, boolean) RETURNS %1$I LANGUAGE sql IMMUTABLE STRICT AS ''SELECT $1''', t);
    EXECUTE format('CREATE CAST (%1$I AS %1$I) WITH FUNCTION %1$I(%1$I, integer, boolean) AS IMPLICIT', t);
    EXECUTE format('CREATE FUNCTION array_to_%1$s(real[], integer, boolean) RETURNS %1$I LANGUAGE plpgsql IMMUTABLE STRICT AS '
                   '$f$ BEGIN PERFORM _placeholder(%2$L); RETURN NULL; END $f$', t, 'array_to_' || t);
    EXECUTE format('CREATE CAST (real[] AS %1$I) WITH FUNCTION array_to_%1$s(real[], integer, boolean) AS ASSIGNMENT', t);
    EXECUTE format('CREATE FUNCTION array_to_%1$s(double precision[], integer, boolean) RETURNS %1$I LANGUAGE plpgsql IMMUTABLE STRICT AS '
                   '$f$ BEGIN PERFORM _placeholder(%2$L); RETURN NULL; END $f$', t, 'array_to_' || t);
    EXECUTE format('CREATE CAST (double precision[] AS %1$I) WITH FUNCTION array_to_%1$s(double precision[], integer, boolean) AS ASSIGNMENT', t);
    EXECUTE format('CREATE FUNCTION %1$s_to_float4(%1$I, integer, boolean) RETURNS real[] LANGUAGE plpgsql IMMUTABLE STRICT AS '
                   '$f$ BEGIN PERFORM _placeholder(%2$L); RETURN NULL; END $f$', t, t || '_to_float4');
    EXECUTE format('CREATE CAST (%1$I AS real[]) WITH FUNCTION %1$s_to_float4(%1$I, integer, boolean) AS ASSIGNMENT', t);
  END LOOP;
END $do$;
DO $do$
DECLARE t text; f text; op text;
BEGIN
  FOREACH t IN ARRAY ARRAY['vector', 'halfvec', 'sparsevec'] LOOP
    FOR f, op IN VALUES ('l2_distance', '<->'), ('inner_product', NULL), ('negative_inner_product', '<#>'),
                        ('cosine_distance', '<=>'), ('l1_distance', '<+>') LOOP
      EXECUTE format('CREATE FUNCTION %1$I(%2$I, %2$I) RETURNS double precision LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS '
                     '$f$ BEGIN PERFORM _placeholder(%3$L); RETURN NULL; END $f$', f, t, f);
      IF op IS NOT NULL THEN
        EXECUTE format('CREATE OPERATOR %1$s (LEFTARG = %2$I, RIGHTARG = %2$I, PROCEDURE = %3$I, COMMUTATOR = %1$s)', op, t, f);
      END IF;
    END LOOP;
    EXECUTE format('CREATE FUNCTION vector_dims(%1$I) RETURNS integer LANGUAGE plpgsql IMMUTABLE STRICT AS '
                   '$f$ BEGIN PERFORM _placeholder(''vector_dims''); RETURN NULL; END $f$', t);
    EXECUTE format('CREATE FUNCTION l2_norm(%1$I) RETURNS double precision LANGUAGE plpgsql IMMUTABLE STRICT AS '
                   '$f$ BEGIN PERFORM _placeholder(''l2_norm''); RETURN NULL; END $f$', t);
    EXECUTE format('CREATE FUNCTION l2_normalize(%1$I) RETURNS %1$I LANGUAGE plpgsql IMMUTABLE STRICT AS '
                   '$f$ BEGIN PERFORM _placeholder(''l2_normalize''); RETURN NULL; END $f$', t);
    FOR op IN VALUES ('='), ('<>'), ('<'), ('<='), ('>'), ('>=') LOOP
      EXECUTE format('CREATE FUNCTION %1$s_cmp_%2$s(%1$I, %1$I) RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT AS '
                     '$f$ BEGIN PERFORM _placeholder(''vector comparison''); RETURN NULL; END $f$',
                     t, md5(op));
      EXECUTE format('CREATE OPERATOR %1$s (LEFTARG = %2$I, RIGHTARG = %2$I, PROCEDURE = %2$s_cmp_%3$s)', op, t, md5(op));
    END LOOP;
  END LOOP;
END $do$;
CREATE FUNCTION vector_norm(vector) RETURNS double precision LANGUAGE plpgsql IMMUTABLE STRICT AS
  $f$ BEGIN PERFORM _placeholder('vector_norm'); RETURN NULL; END $f$;
CREATE FUNCTION subvector(vector, integer, integer) RETURNS vector LANGUAGE plpgsql IMMUTABLE STRICT AS
  $f$ BEGIN PERFORM _placeholder('subvector'); RETURN NULL; END $f$;
CREATE FUNCTION binary_quantize(vector) RETURNS bit LANGUAGE plpgsql IMMUTABLE STRICT AS
  $f$ BEGIN PERFORM _placeholder('binary_quantize'); RETURN NULL; END $f$;
