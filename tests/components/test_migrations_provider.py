"""The supabase:Migrations dynamic provider: CRUD against a real Postgres, the serialized
provider in a fresh process, and the connection string kept out of errors."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import dill
import psycopg
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.providers.migrations import MigrationsProvider
from supagate.offline.resource_types import migration_inputs
from supagate.migrations.files import load_migrations
from tests.conftest import ROOT, write_migrations


def props(url, directory):
    return {"db_url": url, "migrations": migration_inputs(load_migrations(directory)),
            "lock_timeout": "5s", "statement_timeout": "1min"}


def test_create_diff_update_read_delete(db_url, tmp_path):
    src = write_migrations(tmp_path, {"20240101000000_a.sql": "create table a (id int);"})
    provider = MigrationsProvider()
    created = provider.create(props(db_url, src))
    assert created.outs["applied_versions"] == ["20240101000000"]

    write_migrations(src, {"20240102000000_b.sql": "create table b (id int);"})
    news = props(db_url, src)
    assert provider.diff("migrations", created.outs, news).changes is True
    assert provider.diff("migrations", created.outs, props(db_url, tmp_path)).changes is True
    updated = provider.update("migrations", created.outs, news)
    assert updated.outs["applied_versions"] == ["20240101000000", "20240102000000"]
    assert provider.diff("migrations", updated.outs, news).changes is False

    # refresh reports a migration applied behind the stack's back
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("insert into supabase_migrations.schema_migrations (version, name, statements) "
                      "values ('20240103000000', 'manual', '{}')")
    read = provider.read("migrations", updated.outs)
    assert read.outs["drift"] == ["20240103000000: applied outside this stack"]

    # An edited applied file or a late new one stops the preview itself.
    edited = write_migrations(tmp_path / "edited", {"20240101000000_a.sql": "create table a (id bigint);",
                                                    "20240102000000_b.sql": "create table b (id int);"})
    with pytest.raises(Exception, match="20240101000000_a.sql changed after it was applied"):
        provider.diff("migrations", updated.outs, props(db_url, edited))
    late = write_migrations(tmp_path / "late", {"20240101000000_a.sql": "create table a (id int);",
                                                "20240101120000_late.sql": "create table late (id int);",
                                                "20240102000000_b.sql": "create table b (id int);"})
    with pytest.raises(Exception, match=r"older than the newest applied one \(20240102000000\): 20240101120000_late.sql"):
        provider.diff("migrations", updated.outs, props(db_url, late))

    provider.delete("migrations", updated.outs)  # never drops data
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select count(*) from pg_tables where tablename in ('a', 'b')").fetchone() == (2,)


def test_failure_message_never_contains_the_connection_string(tmp_path):
    src = write_migrations(tmp_path, {"1_a.sql": "select 1;"})
    url = "postgresql://postgres:Sup3r-S3cret@127.0.0.1:1/postgres"
    with pytest.raises(Exception) as err:
        MigrationsProvider().create(props(url, src))
    assert "Sup3r-S3cret" not in str(err.value) and "failed to connect" in str(err.value)


def test_serialized_provider_round_trips_in_a_fresh_process(db_url, tmp_path):
    """The engine's provider host unpickles the provider in a new process started from the
    project root: the class must be importable there and hold no live state."""
    src = write_migrations(tmp_path, {"20240101000000_a.sql": "create table roundtrip (id int);"})
    blob = serialize_provider(MigrationsProvider())
    assert b"psycopg.Connection" not in base64.b64decode(blob)
    script = (
        "import base64, dill, json, sys\n"
        "provider = dill.loads(base64.b64decode(sys.argv[1]))\n"
        "result = provider.create(json.loads(sys.stdin.read()))\n"
        "print(json.dumps(result.outs['applied_versions']))\n")
    run = subprocess.run([sys.executable, "-c", script, blob], input=json.dumps(props(db_url, src)),
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == ["20240101000000"]
    assert type(dill.loads(base64.b64decode(blob))).__module__ == "components.providers.migrations"
