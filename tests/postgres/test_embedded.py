"""The throwaway cluster goes away on exit, on Ctrl-C and when its owner is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT

SCRIPT = """
import sys, time
from supagate.postgres.embedded import EmbeddedPostgres
pg = EmbeddedPostgres().start()
print(pg.url, pg.root, flush=True)
time.sleep(120)
"""


def start_owner():
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    url, root = proc.stdout.readline().split()
    with psycopg.connect(url) as conn:  # the shim is loaded
        assert conn.execute("select count(*) from pg_roles where rolname in "
                            "('anon', 'authenticated', 'service_role', 'authenticator')").fetchone() == (4,)
        assert conn.execute("select auth.uid() is null").fetchone() == (True,)
    return proc, url, Path(root)


def wait_gone(url, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            psycopg.connect(url, connect_timeout=1).close()
        except psycopg.OperationalError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cluster_removed_after_interrupt(sig):
    proc, url, root = start_owner()
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert wait_gone(url) and not root.exists()


def test_cluster_stops_when_the_owner_is_killed_outright():
    proc, url, root = start_owner()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert wait_gone(url)
    from supagate.postgres.embedded import sweep_stale_clusters
    deadline = time.monotonic() + 15
    while root.exists() and time.monotonic() < deadline:  # the postmaster may still be exiting
        sweep_stale_clusters()
        time.sleep(0.2)
    assert not root.exists()


def test_jwt_claims_drive_auth_functions(cluster):
    with psycopg.connect(cluster.url) as conn:
        conn.execute("set local request.jwt.claims = '{\"sub\": \"aaaaaaaa-0000-0000-0000-00000000000a\", "
                     "\"role\": \"authenticated\", \"email\": \"a@x.test\"}'")
        assert conn.execute("select auth.uid()::text, auth.role(), auth.email(), auth.jwt() ->> 'role'").fetchone() == (
            "aaaaaaaa-0000-0000-0000-00000000000a", "authenticated", "a@x.test", "authenticated")
        assert conn.execute("select current_setting('pgrst.db_schemas')").fetchone() == ("public,graphql_public",)
