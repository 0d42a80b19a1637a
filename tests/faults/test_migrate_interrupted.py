"""`supagate migrate` killed (kill -9) or its server crashed at random points, repeatedly.
Invariants after every fault: a file's history row exists iff its effect does; no INVALID
index is left behind; the migration lock is free; the next run converges to every
migration applied exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from supagate.migrations.runner import LOCK_KEY
from tests.conftest import ROOT, write_migrations

RNG = random.Random(20261122)
ROWS = 400_000


def _start_migrate(url: str, src) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "supagate.cli", "migrate", "--migrations", str(src)],
                            cwd=ROOT, env={**os.environ, "SUPABASE_DB_URL": url}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def _migrate(url: str, src) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "supagate.cli", "migrate", "--migrations", str(src)], cwd=ROOT,
                          env={**os.environ, "SUPABASE_DB_URL": url}, capture_output=True, text=True, timeout=300)


def _invariants(url: str, expect_applied: set[str] | None = None) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        # The lock is free within a few seconds: the server ends a dead client's statement
        # (client_connection_check_interval) and its session with it. Only then is the
        # state final enough to judge.
        deadline = time.monotonic() + 15
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the migration lock is stuck"
            time.sleep(0.2)
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        history = {r[0] for r in conn.execute("SELECT version FROM supabase_migrations.schema_migrations")} \
            if conn.execute("SELECT to_regclass('supabase_migrations.schema_migrations')").fetchone()[0] else set()
        table = conn.execute("SELECT to_regclass('public.readings') IS NOT NULL").fetchone()[0]
        index = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('public.readings_value_idx')"
                             ).fetchone()
        # A transactional file: its history row exists iff its effect does.
        assert ("20250101000000" in history) == table, "history row without the table, or the other way round"
        # A CIC file: never recorded over an index that is missing or INVALID (a complete index
        # without its row is what a kill after the build leaves; the next run adopts it).
        if "20250102000000" in history:
            assert index and index[0], "CIC history without a valid index"
        if expect_applied is not None:
            assert history == expect_applied
            assert conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()[0] == 0
        return history


def _files(tmp_path):
    return write_migrations(tmp_path / "m", {
        "20250101000000_readings.sql":
            "create table public.readings (id bigint primary key, value numeric not null);\n"
            f"insert into public.readings select g, g % 97 from generate_series(1, {ROWS}) g;\n"
            "select pg_sleep(0.3);\n",
        "20250102000000_readings_index.sql":
            "create index concurrently readings_value_idx on public.readings (value, id);\n",
    })


@pytest.mark.parametrize("round_", range(8))
def test_kill_9_at_a_random_point_then_converge(cluster, tmp_path, round_):
    url = cluster.create_database(f"kill_{round_}")
    src = _files(tmp_path)
    proc = _start_migrate(url, src)
    time.sleep(RNG.uniform(0.3, 2.5))  # anywhere in start-up, the bulk insert, or the CIC
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _invariants(url)
    done = _migrate(url, src)
    assert done.returncode == 0, done.stderr
    _invariants(url, {"20250101000000", "20250102000000"})


@pytest.mark.parametrize("round_", range(3))
def test_server_crash_during_the_concurrent_index_then_converge(tmp_path, round_):
    from supagate.postgres.embedded import EmbeddedPostgres

    with EmbeddedPostgres() as pg:
        src = _files(tmp_path)
        first = write_migrations(tmp_path / "first", {"20250101000000_readings.sql":
                                                      (src / "20250101000000_readings.sql").read_text()})
        assert _migrate(pg.url, first).returncode == 0
        proc = _start_migrate(pg.url, src)
        time.sleep(RNG.uniform(0.6, 1.6))  # the CIC is building
        pg.crash()
        proc.wait(timeout=60)
        _invariants(pg.url)
        done = _migrate(pg.url, src)
        assert done.returncode == 0, done.stderr
        _invariants(pg.url, {"20250101000000", "20250102000000"})


def test_an_invalid_index_left_behind_is_rebuilt_and_a_complete_one_adopted(cluster, tmp_path):
    url = cluster.create_database("cic_leftovers")
    src = write_migrations(tmp_path / "m", {
        "20250101000000_t.sql": "create table public.t (id int primary key, v int);\n"
                                "insert into public.t select g, g % 3 from generate_series(1, 100) g;\n",
        "20250102000000_uniq.sql": "create unique index concurrently t_v_key on public.t (v);\n"})
    failed = _migrate(url, src)  # duplicates: the CIC fails and leaves t_v_key INVALID
    assert failed.returncode == 1 and "INVALID index" in failed.stderr or "Invalid indexes" in failed.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_key'::regclass").fetchone() == (False,)
        conn.execute("UPDATE public.t SET v = id")  # the data is fixed
    done = _migrate(url, src)
    assert done.returncode == 0, done.stderr
    assert "dropping the INVALID index public.t_v_key" in done.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_key'::regclass").fetchone() == (True,)
        # A complete index whose history row was lost is adopted, not built twice.
        conn.execute("DELETE FROM supabase_migrations.schema_migrations WHERE version = '20250102000000'")
        conn.execute("DELETE FROM supabase_migrations.supagate_migrations WHERE version = '20250102000000'")
    again = _migrate(url, src)
    assert again.returncode == 0 and "adopting it" in again.stderr
    other = write_migrations(tmp_path / "other", {
        "20250101000000_t.sql": (src / "20250101000000_t.sql").read_text(),
        "20250102000000_uniq.sql": (src / "20250102000000_uniq.sql").read_text(),
        "20250103000000_clash.sql": "create index concurrently t_v_key2 on public.t (v);\n"})
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE INDEX t_v_key2 ON public.t (id)")  # same name, another definition
    clash = _migrate(url, other)
    assert clash.returncode == 1 and "already exists with another definition" in clash.stderr
