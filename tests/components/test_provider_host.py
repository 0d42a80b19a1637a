"""supabase:Migrations in the SDK's own provider host, driven over gRPC as the engine
drives it (tests/provider_host.py): Configure, Check, Diff, Create, Read, Update, Delete."""

from __future__ import annotations

import psycopg
import pytest

from components.providers.migrations import MigrationsProvider
from supagate.migrations.files import load_migrations
from supagate.offline.resource_types import migration_inputs
from tests.conftest import write_migrations
from tests.provider_host import ProviderHost, without_provider

URN = "urn:pulumi:prod::supabase-platform::pulumi-python:dynamic/supabase:Migrations::database-migrations"


def _props(url, directory, **extra):
    return {"db_url": url, "migrations": migration_inputs(load_migrations(directory)),
            "lock_timeout": "5s", "statement_timeout": "1min", "exposed_schemas": ["public"], **extra}


def test_the_engine_drives_the_migrations_provider(db_url, tmp_path):
    src = write_migrations(tmp_path / "m", {"20240101000000_a.sql": "create table host_a (id int);"})
    with ProviderHost(MigrationsProvider(), URN) as host:
        assert host.configure().acceptSecrets is False  # secrets arrive stripped: the provider sees plain values
        inputs, failures = host.check({}, _props(db_url, src))
        assert failures == [] and inputs["pending_migrations"] == ["20240101000000_a.sql"]
        id_, outs = host.create(without_provider(inputs))
        assert id_ == "migrations" and outs["applied_versions"] == ["20240101000000"]

        write_migrations(src, {"20240102000000_b.sql": "create table host_b (id int);"})
        news, _ = host.check(without_provider(inputs), _props(db_url, src))
        assert news["pending_migrations"] == ["20240102000000_b.sql"]  # what the preview shows
        assert host.diff(id_, without_provider(outs), without_provider(news)).changes == 2  # DIFF_SOME
        outs = host.update(id_, without_provider(outs), without_provider(news))
        assert outs["applied_versions"] == ["20240101000000", "20240102000000"]
        unchanged, _ = host.check(without_provider(news), _props(db_url, src))
        assert host.diff(id_, without_provider(outs), without_provider(unchanged)).changes == 1  # DIFF_NONE

        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("insert into supabase_migrations.schema_migrations (version, name, statements) "
                         "values ('20240103000000', 'manual', '{}')")
        assert host.read(id_, without_provider(outs))["drift"] == ["20240103000000: applied outside this stack"]

        edited = write_migrations(tmp_path / "e", {"20240101000000_a.sql": "create table host_a (id bigint);",
                                                   "20240102000000_b.sql": "create table host_b (id int);"})
        with pytest.raises(Exception, match="20240101000000_a.sql changed after it was applied"):
            host.diff(id_, without_provider(outs), _props(db_url, edited))
        host.delete(id_, without_provider(outs))
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select count(*) from pg_tables where tablename like 'host_%'").fetchone() == (2,)
