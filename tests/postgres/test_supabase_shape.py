"""The embedded cluster starts where a hosted Supabase project starts (supabase_shape.py:
the pinned inventory), and the placeholders live only in the cluster's private directory."""

from __future__ import annotations

import psycopg
import pytest

from supagate.postgres.supabase_shape import INVENTORY, PLACEHOLDER_EXTENSIONS


def test_every_inventory_item_exists(db_url):
    with psycopg.connect(db_url) as conn:
        missing = []
        for role in INVENTORY["roles"]:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                missing.append(f"role {role}")
        for schema in INVENTORY["schemas"]:
            if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone():
                missing.append(f"schema {schema}")
        for table in INVENTORY["tables"]:
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
                missing.append(f"table {table}")
        for function in INVENTORY["functions"]:
            schema, name = function.split(".")
            if not conn.execute("SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                                "WHERE n.nspname = %s AND p.proname = %s", (schema, name)).fetchone():
                missing.append(f"function {function}")
        for extension in INVENTORY["extensions"]:
            if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (extension,)).fetchone():
                missing.append(f"extension {extension}")
        for table in INVENTORY["rls"]:
            if not conn.execute("SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()[0]:
                missing.append(f"RLS on {table}")
        assert missing == []
        assert conn.execute("SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime'").fetchone()


def test_api_roles_and_grants_are_supabases(db_url):
    with psycopg.connect(db_url) as conn:
        roles = dict(conn.execute("SELECT rolname, rolcanlogin::text || rolinherit::text || rolbypassrls::text "
                                  "FROM pg_roles WHERE rolname IN ('authenticator', 'anon', 'authenticated', "
                                  "'service_role')").fetchall())
        assert roles == {"authenticator": "truefalsefalse", "anon": "falsefalsefalse",
                         "authenticated": "falsefalsefalse", "service_role": "falsefalsetrue"}
        for role in ("anon", "authenticated"):  # storage: every privilege, RLS decides
            assert conn.execute("SELECT has_table_privilege(%s, 'storage.objects', 'INSERT')", (role,)).fetchone()[0]
            assert not conn.execute("SELECT has_table_privilege(%s, 'vault.secrets', 'SELECT')", (role,)).fetchone()[0]
        conn.execute("CREATE TABLE public.shape_probe (id int)")
        conn.execute("CREATE FUNCTION public.shape_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        assert conn.execute("SELECT has_table_privilege('anon', 'public.shape_probe', 'SELECT')").fetchone()[0]
        assert conn.execute("SELECT has_function_privilege('anon', 'public.shape_fn()', 'EXECUTE')").fetchone()[0]


@pytest.mark.parametrize("extension", PLACEHOLDER_EXTENSIONS)
def test_placeholders_install_and_are_not_system_wide(cluster, db_url, extension):
    from pathlib import Path

    assert not Path(f"/usr/share/postgresql/15/extension/{extension}.control").exists()
    with psycopg.connect(db_url, autocommit=True) as conn:
        schema = {"pgsodium": "pgsodium", "pg_graphql": "graphql", "supabase_vault": "vault"}.get(extension, "extensions")
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(f'CREATE EXTENSION IF NOT EXISTS "{extension}" WITH SCHEMA "{schema}"')


def test_a_placeholder_says_so_when_called(db_url):
    with psycopg.connect(db_url) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="placeholder in the supagate shadow database"):
            conn.execute("SELECT net.http_post('https://example.com')")
        conn.rollback()
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions")
        conn.execute("CREATE TABLE public.docs (embedding extensions.vector(1536))")
        assert conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                            "WHERE attrelid = 'public.docs'::regclass AND attname = 'embedding'").fetchone() == ("vector(1536)",)
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("SELECT extensions.cosine_distance('[1]'::extensions.vector, '[1]'::extensions.vector)")
