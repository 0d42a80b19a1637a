"""The pre-migration snapshot (scripts/snapshot, run by the Database component on prod):
made with the pg_dump of the server's major version, it restores into a fresh database
with every table's rows."""

from __future__ import annotations

import json
import os
import subprocess

import psycopg

from supagate.migrations import runner
from supagate.migrations.files import load_migrations
from supagate.postgres.connect import libpq_env
from tests.conftest import ROOT


def test_snapshot_restores_with_the_same_row_counts(cluster, tmp_path):
    source = cluster.create_database("snapshot_source")
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "20250101000000_readings.sql").write_text(
        "create table public.readings (id bigint primary key generated always as identity,\n"
        "  user_id uuid references auth.users, value numeric not null);\n"
        "alter table public.readings enable row level security;\n"
        "insert into public.readings (value) select g from generate_series(1, 40) g;\n")
    runner.migrate(source, load_migrations(migrations), progress=lambda _: None)
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("insert into auth.users (id, email, aud, role) select gen_random_uuid(), "
                     "'u' || g || '@example.com', 'authenticated', 'authenticated' from generate_series(1, 25) g")
    dump = tmp_path / "backups" / "pre-migration-abc.dump"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, **libpq_env(source),
           "SNAPSHOT_FILE": str(dump)}
    done = subprocess.run([str(ROOT / "scripts" / "snapshot")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "PostgreSQL 15" in done.stderr
    counts = json.loads(dump.with_suffix("").with_suffix(".rows.json").read_text())
    assert counts["auth.users"] == 25 and counts["public.readings"] == 40

    with psycopg.connect(cluster.url, autocommit=True) as conn:  # an empty database, as a restore would use
        conn.execute("create database snapshot_target")
    target = cluster.url_for("snapshot_target")
    restore = subprocess.run(["/usr/lib/postgresql/15/bin/pg_restore", "--no-owner", "--dbname", target, str(dump)],
                             capture_output=True, text=True, timeout=120)
    assert restore.returncode == 0, restore.stderr
    with psycopg.connect(target) as conn:
        for table, rows in counts.items():
            schema, name = table.split(".")
            assert conn.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0] == rows, table
