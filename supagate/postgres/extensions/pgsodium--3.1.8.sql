-- pgsodium as migrations see it: the key table and the functions most often called; they raise.
CREATE TABLE pgsodium.key (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text UNIQUE, status text DEFAULT 'valid',
                           key_type text, key_id bigint, key_context bytea, created timestamptz NOT NULL DEFAULT now(),
                           expires timestamptz, associated_data text DEFAULT 'associated', comment text);
CREATE FUNCTION pgsodium._placeholder(what text) RETURNS bytea LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
    MESSAGE = what || ' is a placeholder in the supagate shadow database (pgsodium is not installed there)';
END $$;
CREATE FUNCTION pgsodium.crypto_aead_det_encrypt(message bytea, additional bytea, key_uuid uuid, nonce bytea DEFAULT NULL)
  RETURNS bytea LANGUAGE sql AS $$ SELECT pgsodium._placeholder('pgsodium.crypto_aead_det_encrypt') $$;
CREATE FUNCTION pgsodium.crypto_aead_det_decrypt(message bytea, additional bytea, key_uuid uuid, nonce bytea DEFAULT NULL)
  RETURNS bytea LANGUAGE sql AS $$ SELECT pgsodium._placeholder('pgsodium.crypto_aead_det_decrypt') $$;
CREATE FUNCTION pgsodium.randombytes_buf(size integer) RETURNS bytea
  LANGUAGE sql AS $$ SELECT pgsodium._placeholder('pgsodium.randombytes_buf') $$;
CREATE FUNCTION pgsodium.crypto_secretbox_keygen() RETURNS bytea
  LANGUAGE sql AS $$ SELECT pgsodium._placeholder('pgsodium.crypto_secretbox_keygen') $$;
CREATE FUNCTION pgsodium.create_key(key_type text DEFAULT 'aead-det', name text DEFAULT NULL, raw_key bytea DEFAULT NULL,
                                    raw_key_nonce bytea DEFAULT NULL, parent_key uuid DEFAULT NULL,
                                    key_context bytea DEFAULT 'pgsodium', expires timestamptz DEFAULT NULL,
                                    associated_data text DEFAULT '') RETURNS pgsodium.key
  LANGUAGE plpgsql AS $$ BEGIN PERFORM pgsodium._placeholder('pgsodium.create_key'); RETURN NULL; END $$;
