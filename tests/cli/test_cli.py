"""`supagate migrate` and `supagate local` as a user runs them: exit codes, JSON, secrecy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg

from tests.conftest import PROJECT, write_migrations


def supagate(*args, env=None, cwd=PROJECT):
    return subprocess.run([sys.executable, "-m", "supagate.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=300)


def test_migrate_json_then_dry_run_and_exit_0(db_url, tmp_path):
    src = write_migrations(tmp_path, {"20240101000000_a.sql": "create table a (id int);",
                                      "down/20240101000000_a.down.sql": "drop table a;"})
    dry = supagate("migrate", "--migrations", str(src), "--dry-run", "--format", "json",
                   env={"SUPABASE_DB_URL": db_url})
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["pending"][0]["version"] == "20240101000000" and plan["pending"][0]["has_down"]
    run = supagate("migrate", "--db-url", db_url, "--migrations", str(src), "--format", "json")
    assert run.returncode == 0 and json.loads(run.stdout)["applied"] == ["20240101000000"]
    assert "Applying migration 20240101000000_a.sql" in run.stderr  # progress on stderr
    down = supagate("migrate", "--db-url", db_url, "--down-to", "0", "--format", "json")
    assert down.returncode == 0 and json.loads(down.stdout)["reverted"] == ["20240101000000"]


def test_quiet_migrate_prints_no_progress_up_or_down(db_url, tmp_path):
    src = write_migrations(tmp_path, {"20240101000000_q.sql": "create table q (id int);",
                                      "down/20240101000000_q.down.sql": "drop table q;"})
    run = supagate("-q", "migrate", "--db-url", db_url, "--migrations", str(src))
    assert run.returncode == 0 and run.stderr == "" and "Applied 1 migration(s)" in run.stdout
    down = supagate("--quiet", "migrate", "--db-url", db_url, "--down-to", "0")
    assert down.returncode == 0 and down.stderr == ""


def test_bad_input_exits_2_naming_the_file(db_url, tmp_path):
    src = write_migrations(tmp_path, {"20240101000000_a.sql": "select 'unterminated;"})
    run = supagate("migrate", "--db-url", db_url, "--migrations", str(src))
    assert run.returncode == 2
    assert "20240101000000_a.sql:1: unterminated quoted string" in run.stderr
    assert supagate("migrate", "--migrations", str(src)).returncode == 2  # no URL
    assert supagate("migrate", "--bogus").returncode == 2
    assert supagate("migrate", "--db-url", db_url, "--migrations", str(tmp_path / "nope")).returncode == 2


def test_failed_migration_exits_1_and_changes_nothing(db_url, tmp_path):
    src = write_migrations(tmp_path, {"20240101000000_a.sql": "create table a (id int);\ncreate table a (id int);"})
    run = supagate("migrate", "--db-url", db_url, "--migrations", str(src))
    assert run.returncode == 1 and "statement 2 at line 2" in run.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select to_regclass('public.a')").fetchone() == (None,)


def test_password_never_printed(cluster, tmp_path):
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute("do $$ begin if not exists (select from pg_roles where rolname = 'deployer') then "
                      "create role deployer login password 'right-password'; end if; end $$")
        # The test cluster trusts loopback; make this role prove its password.
        hba = cluster.root / "data" / "pg_hba.conf"
        if "deployer" not in hba.read_text():
            hba.write_text("host all deployer 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        conn.execute("select pg_reload_conf()")
    src = write_migrations(tmp_path, {"1_a.sql": "select 1;"})
    url = f"postgresql://deployer:Wr0ng-Passw0rd@127.0.0.1:{cluster.port}/postgres?sslmode=disable"
    run = supagate("migrate", "--migrations", str(src), env={"SUPABASE_DB_URL": url})
    assert run.returncode == 1
    assert "failed to connect" in run.stderr
    assert "Wr0ng-Passw0rd" not in run.stderr + run.stdout


def test_a_database_error_outside_any_file_is_a_message_not_a_traceback(db_url, tmp_path):
    """A deploy user that may not create the history schema: the engine's own query fails
    before any file runs, and the user reads why, not a traceback."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("do $$ begin if not exists (select from pg_roles where rolname = 'narrow') then "
                     "create role narrow login; end if; end $$")
        conn.execute("alter role narrow password 'S3cret-in-url'")  # a login over TCP needs one
    src = write_migrations(tmp_path, {"20240101000000_a.sql": "create table a (id int);"})
    url = db_url.replace("postgresql://postgres@", "postgresql://narrow:S3cret-in-url@")
    run = supagate("migrate", "--migrations", str(src), env={"SUPABASE_DB_URL": url})
    assert run.returncode == 1, run.stderr
    assert "permission denied for database" in run.stderr and "may create schemas" in run.stderr
    assert "Traceback" not in run.stderr and "S3cret-in-url" not in run.stderr + run.stdout


def test_ctrl_c_during_a_long_statement_cancels_it_and_applies_nothing(db_url, tmp_path):
    """A deployer's Ctrl-C: the statement stops on the server (not only in the client), the
    file's transaction rolls back, the lock comes free, and the exit says interrupted."""
    import signal
    import time

    src = write_migrations(tmp_path, {"20240101000000_slow.sql": "create table slow (id int);\nselect pg_sleep(60);"})
    proc = subprocess.Popen([sys.executable, "-m", "supagate.cli", "migrate", "--migrations", str(src)],
                            cwd=PROJECT, env={**os.environ, "SUPABASE_DB_URL": db_url},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # By what it waits on: the file's text comes after the session guard in the query, past
    # what pg_stat_activity keeps of it (track_activity_query_size).
    running = "select count(*) from pg_stat_activity where wait_event = 'PgSleep' and application_name = 'supagate'"
    with psycopg.connect(db_url, autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while conn.execute(running).fetchone() != (1,):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
        assert conn.execute(running).fetchone() == (0,)
        assert conn.execute("select to_regclass('public.slow')").fetchone() == (None,)
        assert conn.execute("select count(*) from supabase_migrations.schema_migrations").fetchone() == (0,)
        assert conn.execute("select count(*) from pg_locks where locktype = 'advisory'").fetchone() == (0,)


def test_local_runs_the_main_job_and_summarises(tmp_path):
    run = supagate("local", "--format", "json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["migrations_applied"] >= 7 and summary["failed_files"] == []
    assert summary["assertions"] >= 100
    assert "PASS:" in run.stderr
