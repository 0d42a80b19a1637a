"""Local clusters are private: TCP asks every role for a password that is the cluster's own,
the socket and the passfile are out of other OS users' reach, the password is on no command
line and in no log, and the server runs neither as root nor as `postgres` (whose commands,
through COPY ... TO PROGRAM, would reach the machine's real clusters)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from supagate.postgres import cluster_access, cluster_template
from supagate.postgres.cluster_access import ClusterAccessError
from supagate.postgres.connect import libpq_env
from supagate.postgres.embedded import EmbeddedPostgres, find_bindir
from tests.conftest import ROOT

AS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not AS_ROOT, reason="switching OS users needs root")
NOBODY = ["runuser", "-u", "nobody", "--"]


def _passfile(pg: EmbeddedPostgres) -> Path:
    return Path(conninfo_to_dict(pg.url)["passfile"])


def _password(pg: EmbeddedPostgres) -> str:
    return _passfile(pg).read_text().strip().rsplit(":", 1)[1]


def _bare(pg: EmbeddedPostgres, user: str = "postgres") -> str:
    """The cluster's address with no password and no passfile."""
    return f"postgresql://{user}@127.0.0.1:{pg.port}/postgres"


def _server_pids(pg: EmbeddedPostgres) -> list[int]:
    postmaster = pg._proc.pid
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return [postmaster, *children]


def _uids(pid: int) -> set[int]:
    """Real, effective, saved and filesystem uids."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return {int(uid) for uid in line.split()[1:]}
    raise AssertionError(f"no Uid line for {pid}")


def _everywhere(name: str) -> bytes:
    """`name` (cmdline or environ) of every process we may read, joined."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / name).read_bytes())
            except OSError:
                continue
    return b"\n".join(found)


def test_tcp_asks_every_role_for_the_clusters_own_password(cluster):
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(_bare(cluster), connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(_bare(cluster), password="postgres", connect_timeout=5)
    # Supabase's other login roles (supabase_admin is a superuser) have no password here:
    # not even the superuser's opens them.
    for role in ("supabase_admin", "supabase_auth_admin", "pgbouncer"):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(_bare(cluster, role), password=_password(cluster), connect_timeout=5)
    with psycopg.connect(cluster.url) as conn:  # the safe twin: the URL names the passfile
        assert conn.execute("select current_user").fetchone() == ("postgres",)
    assert _password(cluster) not in cluster.url


def test_each_cluster_gets_its_own_password_and_the_template_holds_none(cluster):
    with EmbeddedPostgres() as other:
        assert _password(other) != _password(cluster)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(_bare(other), password=_password(cluster), connect_timeout=5)
        with psycopg.connect(other.url) as conn:
            rows = conn.execute("select rolname, rolpassword from pg_authid where rolpassword is not null").fetchall()
        assert [name for name, _ in rows] == ["postgres"] and rows[0][1].startswith("SCRAM-SHA-256$4096:")
    templates = [p / "data" / "global" for p in cluster_template.cache_dir().iterdir() if (p / "READY").exists()]
    assert templates
    for folder in templates:  # pg_authid and the rest of the shared catalog, as stored
        for file in folder.iterdir():
            assert b"SCRAM-SHA-256$" not in file.read_bytes(), file


def test_the_server_runs_as_an_unprivileged_user_of_its_own_in_private_folders(cluster):
    expected = pwd.getpwnam(cluster_access.SERVICE_USER).pw_uid if AS_ROOT else os.geteuid()
    uids = {uid for pid in _server_pids(cluster) for uid in _uids(pid)}
    assert uids == {expected} and 0 not in uids
    try:
        assert pwd.getpwnam("postgres").pw_uid not in uids
    except KeyError:
        pass
    for folder in (cluster.root, cluster.root / "data"):
        assert (folder.stat().st_mode & 0o777, folder.stat().st_uid) == (0o700, expected), folder
    passfile = _passfile(cluster).stat()
    assert (passfile.st_mode & 0o777, passfile.st_uid) == (0o600, os.geteuid())
    socket = cluster.root / f".s.PGSQL.{cluster.port}"
    assert socket.stat().st_mode & 0o077 == 0


def test_the_password_is_on_no_command_line_in_no_environment_and_in_no_log(cluster, tmp_path):
    password = _password(cluster)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(_bare(cluster), password="a-wrong-one", connect_timeout=5)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, **libpq_env(cluster.url)}
    assert "PGPASSWORD" not in env and env["PGPASSFILE"] == str(_passfile(cluster))
    # A psql child connected while every process's command line and environment are read.
    client = subprocess.Popen([str(find_bindir() / "psql"), "-w", "-X", "-c", "select pg_sleep(30)"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            deadline = time.monotonic() + 15
            while not conn.execute("select count(*) from pg_stat_activity where query = 'select pg_sleep(30)'"
                                   ).fetchone()[0]:
                assert client.poll() is None and time.monotonic() < deadline, client.stderr.read()
                time.sleep(0.05)
            seen = _everywhere("cmdline") + _everywhere("environ")
            statements = conn.execute("select string_agg(query, ' ') from pg_stat_statements").fetchone()[0] or ""
    finally:
        client.kill()
        client.wait()
    assert password.encode() not in seen
    assert password not in statements and "SCRAM-SHA-256$" not in statements  # set as a verifier, untracked
    assert password not in (cluster.root / "postgres.log").read_text(errors="replace")


def test_root_never_runs_the_server_as_root_or_postgres(monkeypatch):
    if not AS_ROOT:
        assert cluster_access.server_user() is None  # a normal user's cluster runs as that user
        return
    for name in ("postgres", "root"):
        monkeypatch.setenv("SUPAGATE_PG_USER", name)
        with pytest.raises(ClusterAccessError, match=f"refusing to run it as '{name}'"):
            EmbeddedPostgres().start()
    monkeypatch.setenv("SUPAGATE_PG_USER", "no-such-user-here")
    with pytest.raises(ClusterAccessError, match="SUPAGATE_PG_USER names 'no-such-user-here', which does not exist"):
        EmbeddedPostgres().start()


@root_only
def test_a_machine_without_the_service_user_gets_one_unprivileged(monkeypatch):
    """As on a fresh runner: the first cluster creates the system user, the next reuses it."""
    name = f"supagate-t{os.getpid()}"
    monkeypatch.setattr(cluster_access, "SERVICE_USER", name)
    monkeypatch.delenv("SUPAGATE_PG_USER", raising=False)
    try:
        created = cluster_access.server_user()
        assert created.pw_name == name and 0 < created.pw_uid < 1000 and created.pw_gid != 0
        assert created.pw_shell == "/usr/sbin/nologin" and not Path(created.pw_dir).exists()
        assert cluster_access.server_user() == created
    finally:
        subprocess.run(["userdel", name], capture_output=True)


@root_only
def test_another_os_user_reaches_neither_the_socket_nor_the_passfile(cluster):
    psql = [str(find_bindir() / "psql"), "-w", "-X", "-At", "-c", "select 1"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def run(*args):
        return subprocess.run([*args], capture_output=True, text=True, env=clean, cwd="/", timeout=30)

    socket = ["-h", str(cluster.root), "-p", str(cluster.port), "-U", "postgres"]
    refused = run(*NOBODY, *psql, *socket)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    assert run(*NOBODY, "cat", str(_passfile(cluster))).returncode != 0
    by_url = run(*NOBODY, *psql, "-d", cluster.url)  # the URL is public; the passfile it names is not
    assert by_url.returncode != 0 and "no password supplied" in by_url.stderr
    owner = run(*psql, *socket)  # the safe twin: the user who started it
    assert owner.returncode == 0 and owner.stdout.strip() == "1", owner.stderr


NORMAL_USER = """
import os, psycopg, sys
from supagate.postgres.embedded import EmbeddedPostgres
with EmbeddedPostgres() as pg:
    with psycopg.connect(pg.url) as conn:
        conn.execute("select 1")
    print(pg.url, pg.port, pg._proc.pid, flush=True)
    sys.stdin.readline()
"""


@root_only
def test_a_normal_user_gets_a_private_cluster_running_as_themselves(tmp_path):
    """The same code started by an ordinary user (nobody: no home, so the template cache
    falls back to a folder per boot)."""
    python = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not python.exists():
        pytest.skip(f"{python} (readable by nobody, unlike this venv's interpreter) is not installed")
    site = next(Path(sys.prefix, "lib").glob("python3*/site-packages"))
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{ROOT}:{site}", "LANG": "C.UTF-8"}
    proc = subprocess.Popen([*NOBODY, str(python), "-c", NORMAL_USER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd="/")
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        url, port, postmaster = line.split()
        assert _uids(int(postmaster)) == {pwd.getpwnam("nobody").pw_uid}
        with pytest.raises(psycopg.OperationalError, match="no password supplied"):  # root, by TCP
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=5)
        with psycopg.connect(url) as conn:  # root may read nobody's passfile, as root reads anything
            assert conn.execute("select current_user").fetchone() == ("postgres",)
    finally:
        proc.communicate("\n", timeout=60)
    assert proc.returncode == 0, proc.stderr
