"""Interoperability with the real Supabase CLI (npm supabase@3.1.0), both directions."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg

from supagate.migrations import runner
from supagate.migrations.files import load_migrations
from tests.conftest import APP_MIGRATIONS, write_migrations

QUIET = dict(progress=lambda _: None)

# Files that exercise every corner of the CLI's splitter.
TRICKY = {
    "20240101000000_tricky.sql": (
        "-- leading comment\ncreate table public.t1 (id int primary key, note text default 'a;b');;\n\n"
        "/* outer /* nested ; */ still ; */\n"
        "create function public.f() returns text language plpgsql as $fn$ begin return 'it''s;$$'; end $fn$;\n"
        "create function public.add1(a int) returns int language sql\nbegin atomic\n  select a + 1;\nend;\n"
        "insert into t1 values (1, E'x\\';y')  ;\ncreate table \"we;ird\" (id int);\n  -- trailing comment\n"),
    "20240102000000_second.sql": "alter table t1 add column extra int;\n",
}


def cli(supabase_cli: str, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SUPABASE_TELEMETRY_DISABLED": "1", "DO_NOT_TRACK": "1"}
    return subprocess.run([supabase_cli, "--workdir", str(workdir), *args], capture_output=True,
                          text=True, env=env, timeout=120)


def project(tmp_path: Path, migrations: Path) -> Path:
    shutil.copytree(migrations, tmp_path / "supabase" / "migrations")
    return tmp_path


def stored(url):
    with psycopg.connect(url) as conn:
        return conn.execute("select version, name, statements from supabase_migrations.schema_migrations "
                            "order by version").fetchall()


def test_history_we_write_equals_what_db_push_writes(supabase_cli, cluster, tmp_path):
    source = write_migrations(tmp_path / "src", TRICKY)
    ours = cluster.create_database("interop_ours")
    theirs = cluster.create_database("interop_theirs")
    runner.migrate(ours, load_migrations(source), **QUIET)
    pushed = cli(supabase_cli, project(tmp_path / "p", source), "db", "push", "--db-url", theirs, "--yes")
    assert pushed.returncode == 0, pushed.stderr
    assert stored(ours) == stored(theirs)
    assert len(stored(ours)[0][2]) == 6  # the empty statement dropped, the trailing comment kept


def test_migration_list_shows_our_migrations_applied(supabase_cli, app_db_url, tmp_path):
    migrations = load_migrations(APP_MIGRATIONS)
    runner.migrate(app_db_url, migrations, **QUIET)
    workdir = project(tmp_path, APP_MIGRATIONS)
    listed = cli(supabase_cli, workdir, "migration", "list", "--db-url", app_db_url)
    assert listed.returncode == 0, listed.stderr
    for m in migrations:
        assert f"`{m.version}` | `{m.version}`" in listed.stdout, listed.stdout
    # and db push finds nothing left to do
    pushed = cli(supabase_cli, workdir, "db", "push", "--db-url", app_db_url, "--yes")
    assert pushed.returncode == 0, pushed.stderr
    assert "up to date" in (pushed.stdout + pushed.stderr).lower()


def test_after_db_push_our_engine_applies_nothing_twice_and_adopts_history(supabase_cli, cluster, tmp_path):
    source = write_migrations(tmp_path / "src", TRICKY)
    url = cluster.create_database("interop_adopt")
    pushed = cli(supabase_cli, project(tmp_path / "p", source), "db", "push", "--db-url", url, "--yes")
    assert pushed.returncode == 0, pushed.stderr
    write_migrations(source, {"20240103000000_third.sql": "create table t3 (id int);"})
    result = runner.migrate(url, load_migrations(source), **QUIET)
    assert result.applied == ["20240103000000"]
    with psycopg.connect(url) as conn:
        adopted = conn.execute("select version, applied_by from supabase_migrations.supagate_migrations "
                               "order by version").fetchall()
    assert [v for v, _ in adopted] == ["20240101000000", "20240102000000", "20240103000000"]
    assert "adopted" in adopted[0][1]


def test_edit_after_db_push_is_detected_without_our_checksum(supabase_cli, cluster, tmp_path):
    source = write_migrations(tmp_path / "src", TRICKY)
    url = cluster.create_database("interop_drift")
    assert cli(supabase_cli, project(tmp_path / "p", source), "db", "push", "--db-url", url, "--yes").returncode == 0
    write_migrations(source, {"20240102000000_second.sql": "alter table t1 add column extra bigint;\n"})
    try:
        runner.migrate(url, load_migrations(source), **QUIET)
    except runner.MigrationError as exc:
        assert "20240102000000_second.sql changed after it was applied" in str(exc)
        assert "supabase db push" in str(exc)
    else:
        raise AssertionError("an edited migration applied by db push went unnoticed")
