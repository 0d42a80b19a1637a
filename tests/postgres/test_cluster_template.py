"""Throwaway clusters start from a Supabase-shaped template built once per machine; a
half-built or damaged template is never used as is; clusters live in memory when there is
room and on disk when asked or when there is not."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from supagate.postgres import cluster_template, embedded
from supagate.postgres.embedded import EmbeddedPostgres, EmbeddedPostgresError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache of our own, readable by the server's user when the tests run as root."""
    folder = tmp_path / "cache"
    folder.mkdir()
    os.chmod(tmp_path, 0o755)
    monkeypatch.setenv("SUPAGATE_CACHE_DIR", str(folder))
    return folder / "pg-templates"


@pytest.fixture
def initdb_calls(monkeypatch):
    calls = []
    real = EmbeddedPostgres._initdb

    def counting(self, *args):
        calls.append(args[1])
        return real(self, *args)

    monkeypatch.setattr(EmbeddedPostgres, "_initdb", counting)
    return calls


def _shaped(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("select to_regclass('auth.users') is not null and to_regclass('storage.objects') "
                            "is not null and current_setting('pgrst.db_schemas') <> ''").fetchone()[0]


def test_the_template_is_built_once_and_every_cluster_and_database_is_a_shaped_copy(cache, initdb_calls):
    with EmbeddedPostgres() as first:
        assert _shaped(first.url) and _shaped(first.create_database("clone_a"))
    with EmbeddedPostgres(exposed_schemas=("public", "api")) as second:
        assert _shaped(second.url)
        with psycopg.connect(second.url) as conn:  # settings are the cluster's own, not the template's
            assert conn.execute("select current_setting('pgrst.db_schemas')").fetchone() == ("public,api",)
        with psycopg.connect(second.create_database("clone_b")) as conn:
            assert conn.execute("select current_setting('pgrst.db_schemas')").fetchone() == ("public,api",)
    assert len(initdb_calls) == 1  # the template's build; both clusters were copies
    assert [p.name for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")] != []


def test_a_half_built_template_is_never_used(cache, initdb_calls):
    with EmbeddedPostgres():
        pass
    (built,) = [p for p in cache.iterdir() if p.is_dir()]
    (built / "READY").unlink()  # as if its builder died before finishing
    with EmbeddedPostgres() as pg:
        assert _shaped(pg.url)
    assert len(initdb_calls) == 2 and (built / "READY").exists()


def test_a_damaged_template_fails_once_naming_the_log_then_is_rebuilt(cache, initdb_calls):
    with EmbeddedPostgres():
        pass
    (built,) = [p for p in cache.iterdir() if p.is_dir()]
    (built / "data" / "global" / "pg_control").write_bytes(b"not a control file")
    with pytest.raises(EmbeddedPostgresError, match="failed to start PostgreSQL"):
        EmbeddedPostgres().start()
    assert not built.exists()  # discarded: the next cluster builds a fresh one
    with EmbeddedPostgres() as pg:
        assert _shaped(pg.url)
    assert len(initdb_calls) == 2


def test_the_key_follows_what_the_data_directory_depends_on():
    bindir = embedded.find_bindir()
    base = cluster_template.key(bindir, ["pg_cron"], 1000, embedded.INITDB_ARGS)
    assert base == cluster_template.key(bindir, ["pg_cron"], 1000, embedded.INITDB_ARGS)
    assert base != cluster_template.key(bindir, [], 1000, embedded.INITDB_ARGS)
    assert base != cluster_template.key(bindir, ["pg_cron"], 1001, embedded.INITDB_ARGS)
    assert base != cluster_template.key(bindir, ["pg_cron"], 1000, [*embedded.INITDB_ARGS, "--data-checksums"])


def test_clusters_live_in_memory_when_there_is_room_else_on_disk(monkeypatch):
    monkeypatch.delenv("SUPAGATE_PG_TMPDIR", raising=False)
    if embedded.MEMORY_DIR.is_dir():
        assert embedded.cluster_base() == embedded.MEMORY_DIR
    assert embedded.cluster_base(persistent=True) != embedded.MEMORY_DIR  # `supagate db start` keeps its data
    real_statvfs = os.statvfs

    def noexec(path):  # a hardened /dev/shm: the cluster's own postgres link could not run there
        stats = real_statvfs(path)
        return os.statvfs_result((*stats[:8], stats.f_flag | os.ST_NOEXEC, stats.f_namemax))

    monkeypatch.setattr(embedded.os, "statvfs", noexec)
    assert embedded.cluster_base() != embedded.MEMORY_DIR
    monkeypatch.setattr(embedded.os, "statvfs", real_statvfs)
    monkeypatch.setattr(embedded, "MEMORY_MIN_FREE", 1 << 62)  # no tmpfs has that much room
    assert embedded.cluster_base() != embedded.MEMORY_DIR
    chosen = Path(tempfile.mkdtemp(prefix="chosen-"))  # in /tmp: the server's user can reach it
    try:
        os.chmod(chosen, 0o777)
        monkeypatch.setenv("SUPAGATE_PG_TMPDIR", str(chosen))
        assert embedded.cluster_base() == chosen
        with EmbeddedPostgres() as pg:
            assert pg.root.parent == chosen and _shaped(pg.url)
    finally:
        shutil.rmtree(chosen, ignore_errors=True)


def test_an_unwritable_home_falls_back_to_a_folder_per_boot(monkeypatch, tmp_path):
    monkeypatch.delenv("SUPAGATE_CACHE_DIR", raising=False)
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    folder = cluster_template.cache_dir()
    assert folder.is_dir() and Path(folder).name.startswith("supagate-templates-")


BUILD_AND_REPORT = """
import sys
from supagate.postgres.embedded import EmbeddedPostgres
real = EmbeddedPostgres._initdb
def counting(self, *args):
    print("initdb", flush=True)
    return real(self, *args)
EmbeddedPostgres._initdb = counting
with EmbeddedPostgres() as pg:
    print("ready", pg.url, flush=True)
"""


def test_two_first_checks_at_once_build_one_template(cache):
    """The build lock: the second process waits for the first one's template, then copies it."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    procs = [subprocess.Popen([sys.executable, "-c", BUILD_AND_REPORT], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ}) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    lines = [line for out, _ in outputs for line in out.splitlines()]
    assert sum(line == "initdb" for line in lines) == 1 and sum(line.startswith("ready") for line in lines) == 2


def test_a_cache_folder_someone_else_controls_is_refused(tmp_path, monkeypatch):
    """Whoever can write the cache decides how every later cluster starts (a planted
    postgresql.auto.conf runs their archive_command as the cluster's user): a symlink, or a
    folder of another user (as a pre-created /tmp/supagate-templates-<uid> would be), is
    refused; a folder of ours that others can read becomes 0700."""
    base = tmp_path / "cache"
    base.mkdir()
    monkeypatch.setenv("SUPAGATE_CACHE_DIR", str(base))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (base / "pg-templates").symlink_to(elsewhere)
    with pytest.raises(cluster_template.TemplateError, match="not a folder of yours"):
        cluster_template.cache_dir()
    (base / "pg-templates").unlink()
    (base / "pg-templates").mkdir(mode=0o755)
    if os.geteuid() == 0:
        os.chown(base / "pg-templates", 65534, 65534)
        with pytest.raises(cluster_template.TemplateError, match=r"owner uid 65534.*\nRemove it, or set SUPAGATE_CACHE_DIR"):
            cluster_template.cache_dir()
        os.chown(base / "pg-templates", 0, 0)
    assert cluster_template.cache_dir() == base / "pg-templates"
    assert (base / "pg-templates").stat().st_mode & 0o777 == 0o700
