"""The migration engine's libpq connection against a real server: values both ways, errors
with the server's fields, transactions, notices, COPY and Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from supagate.postgres import libpq
from supagate.postgres.connect import DatabaseError, connect_engine
from supagate.postgres.sql_values import bind, identifier, literal

AWKWARD = ["it's", "back\\slash", 'say "hi"', "a,b", "{braces}", "NULL", "", " spaced ", "naïve ✓", "new\nline"]


@pytest.fixture
def conn(db_url):
    with connect_engine(db_url) as connection:
        yield connection


@pytest.mark.parametrize("conforming", ["on", "off"])
def test_bound_text_comes_back_unchanged_whatever_standard_conforming_strings_says(conn, conforming):
    conn.execute(f"SET standard_conforming_strings = {conforming}")
    for value in AWKWARD:
        assert conn.execute("SELECT %s::text", (value,)).fetchone() == (value,)
    assert conn.execute("SELECT %s", (AWKWARD,)).fetchone() == (AWKWARD,)
    assert conn.execute("SELECT %s", ([],)).fetchone() == ([],)


def test_scalars_and_arrays_are_python_values(conn):
    row = conn.execute("SELECT true, false, 1::int2, -2::int4, 9007199254740993::int8, 'pg_class'::regclass::oid, "
                       "NULL::text, 'x'::name, ARRAY[1, NULL, 3], ARRAY[true, false], ARRAY['a', NULL]::text[], "
                       "'[0:1]={x,y}'::text[], 42::numeric").fetchone()
    assert row == (True, False, 1, -2, 9007199254740993, 1259, None, "x", [1, None, 3], [True, False],
                   ["a", None], ["x", "y"], "42")
    assert conn.execute("SELECT %s, %s, %s, %s", (None, True, -5, 2 ** 62)).fetchone() == (None, True, -5, 2 ** 62)
    with pytest.raises(libpq.NotSupportedError, match="multi-dimensional"):
        conn.execute("SELECT ARRAY[[1,2],[3,4]]; SELECT 1")
    assert conn.idle and conn.execute("SELECT 2").fetchone() == (2,)  # the rest of the query was drained


def test_binding_is_strict_about_placeholders_and_values():
    assert bind("select %s, '100%%'", ("a",)) == "select 'a', '100%'"
    assert identifier("public", 'we"ird idx') == '"public"."we""ird idx"'
    with pytest.raises(ValueError, match="fewer parameters"):
        bind("select %s, %s", (1,))
    with pytest.raises(ValueError, match="more parameters"):
        bind("select %s", (1, 2))
    with pytest.raises(ValueError, match="only %s"):
        bind("select %(x)s", (1,))
    with pytest.raises(ValueError, match="NUL"):
        literal("a\x00b")
    with pytest.raises(TypeError):
        literal(1.5)


def test_a_nul_in_a_query_is_refused_not_truncated(conn):
    """libpq reads a C string: without the check, what follows the NUL would silently not run."""
    conn.execute("CREATE TABLE libpq_nul (v int)")
    with pytest.raises(libpq.NotSupportedError, match="NUL"):
        conn.execute("INSERT INTO libpq_nul VALUES (1);\x00 INSERT INTO libpq_nul VALUES (2)")
    assert conn.execute("SELECT count(*) FROM libpq_nul").fetchone() == (0,)


def test_an_error_carries_the_server_fields_and_the_session_recovers(conn):
    query = "BEGIN; CREATE TABLE libpq_t (id int); SELECT * FROM libpq_missing; COMMIT"
    with pytest.raises(libpq.Error) as caught:
        conn.execute(query)
    error = caught.value
    assert error.sqlstate == error.diag.sqlstate == "42P01"
    assert error.diag.message_primary == 'relation "libpq_missing" does not exist'
    assert int(error.diag.statement_position) == query.index("libpq_missing") + 1
    assert not str(error).startswith("ERROR")
    assert not conn.idle  # the failed transaction waits for its ROLLBACK, as the engine expects
    conn.rollback()
    assert conn.idle
    assert conn.execute("SELECT to_regclass('libpq_t')").fetchone() == (None,)
    with pytest.raises(libpq.Error) as caught:
        conn.execute("SELECT 1/0")
    assert caught.value.diag.sqlstate == "22012"
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_transactions_commit_roll_back_and_nest(conn, db_url):
    conn.execute("CREATE TABLE libpq_tx (v text)")
    with conn.transaction():
        conn.execute("INSERT INTO libpq_tx VALUES ('kept')")
        with pytest.raises(libpq.Error):
            with conn.transaction():
                conn.execute("INSERT INTO libpq_tx VALUES ('inner, undone')")
                conn.execute("SELECT * FROM libpq_nowhere")
        with conn.transaction(force_rollback=True):
            conn.execute("INSERT INTO libpq_tx VALUES ('rehearsal')")
    with pytest.raises(RuntimeError):
        with conn.transaction():
            conn.execute("INSERT INTO libpq_tx VALUES ('outer, undone')")
            raise RuntimeError("stop")
    assert conn.idle
    with psycopg.connect(db_url) as other:
        assert other.execute("SELECT v FROM libpq_tx").fetchall() == [("kept",)]


def test_notices_stay_off_stderr(conn, capfd):
    conn.execute("CREATE TABLE IF NOT EXISTS libpq_n (id int); CREATE TABLE IF NOT EXISTS libpq_n (id int); "
                 "DO $$ BEGIN RAISE NOTICE 'chatty'; END $$")
    assert capfd.readouterr().err == ""


def test_copy_from_stdin_is_refused_and_copy_out_is_drained(conn):
    conn.execute("CREATE TABLE libpq_c (id int)")
    with pytest.raises(libpq.NotSupportedError, match="COPY"):
        conn.execute("COPY libpq_c FROM STDIN")
    conn.execute("COPY (SELECT generate_series(1, 1000)) TO STDOUT")
    assert conn.execute("SELECT count(*) FROM libpq_c").fetchone() == (0,)
    assert conn.idle


def test_ctrl_c_cancels_the_running_statement(conn):
    """Without the cancel, Ctrl-C would wait out the statement (and its locks) on the server."""
    pid = conn.backend_pid
    main = threading.main_thread().ident
    threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT)).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        conn.execute("SELECT pg_sleep(30)")
    assert time.monotonic() - started < 5
    assert conn.idle and conn.backend_pid == pid
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_settings_override_the_url_and_the_session_is_utf8(db_url):
    with connect_engine(db_url + ("&" if "?" in db_url else "?") + "application_name=other&client_encoding=LATIN1") as conn:
        row = conn.execute("SELECT current_setting('application_name'), current_setting('client_encoding'), "
                           "current_setting('client_connection_check_interval')").fetchone()
    assert row == ("supagate", "UTF8", "2s")


@pytest.mark.parametrize("client", ["engine", "psycopg"])
def test_the_urls_own_options_are_kept_beside_ours(db_url, client, monkeypatch):
    """Supabase's pooler finds a project by options=reference=<ref> when there is no SNI;
    replacing the URL's options would make it refuse the connection."""
    from supagate.postgres.connect import connect

    opener = connect_engine if client == "engine" else connect
    query = ("SELECT current_setting('search_path'), current_setting('work_mem'), "
             "current_setting('client_connection_check_interval')")
    with opener(db_url + "?options=-c%20search_path%3Dtenant_a%20-c%20work_mem%3D7MB") as conn:
        assert tuple(conn.execute(query).fetchone()) == ("tenant_a", "7MB", "2s")
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=9MB")  # counts when the URL sets none, as in libpq
    with opener(db_url) as conn:
        assert tuple(conn.execute(query).fetchone())[1:] == ("9MB", "2s")


def test_a_failed_connection_names_the_problem_and_never_the_password(cluster):
    secret = "Pw-d0-not-print-9f3c"
    url = f"postgresql://nobody:{secret}@127.0.0.1:1/postgres?connect_timeout=2"
    with pytest.raises(DatabaseError) as caught:
        connect_engine(url)
    assert "failed to connect to the database" in str(caught.value) and secret not in str(caught.value)
    with pytest.raises(DatabaseError) as caught:
        connect_engine(f"postgresql://nobody:{secret}@127.0.0.1:1/postgres?bogus_option=1")
    assert "bogus_option" in str(caught.value) and secret not in str(caught.value)
    with pytest.raises(DatabaseError, match="no database URL"):
        connect_engine("")


def test_a_missing_libpq_is_a_clear_error():
    done = subprocess.run([sys.executable, "-c", "from supagate.postgres import libpq\nlibpq.connect('')"],
                          capture_output=True, text=True, env={**os.environ, "SUPAGATE_LIBPQ": "/nonexistent/libpq.so"})
    assert done.returncode != 0
    assert "libpq was not found at SUPAGATE_LIBPQ=/nonexistent/libpq.so" in done.stderr
    assert "psycopg[binary]" in done.stderr


def test_a_descriptor_above_1023_is_waited_on(db_url):
    """select() cannot watch a descriptor past FD_SETSIZE; a provider host with many open
    files would get its session there."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if max(soft, hard if hard != resource.RLIM_INFINITY else 4096) < 1200:
        pytest.skip("cannot open 1,200 files here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = []
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        with connect_engine(db_url) as conn:
            assert conn.execute("SELECT 7 FROM pg_sleep(0.05)").fetchone() == (7,)
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_tls_with_a_verified_server_certificate_as_to_a_hosted_project(tmp_path):
    """Every hosted deploy runs over TLS: the bundled libpq must bring its OpenSSL through
    ctypes, verify the server, and refuse a server it cannot verify."""
    from supagate.migrations import runner
    from supagate.migrations.files import load_migrations
    from supagate.postgres.embedded import EmbeddedPostgres
    from tests.conftest import write_migrations

    with EmbeddedPostgres() as pg:
        cert = _enable_tls(pg)
        secure = f"{pg.url}?sslmode=verify-full&sslrootcert={cert}"
        with connect_engine(secure) as conn:
            assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
        src = write_migrations(tmp_path, {"20240101000000_tls.sql": "create table tls_t (id int);"})
        runner.migrate(secure, load_migrations(src), progress=lambda _: None)
        with psycopg.connect(pg.url) as other:
            assert other.execute("SELECT count(*) FROM supabase_migrations.schema_migrations").fetchone() == (1,)
        stranger = tmp_path / "stranger.crt"
        _self_signed(tmp_path / "stranger.key", stranger)
        with pytest.raises(DatabaseError, match="certificate verify failed"):
            connect_engine(f"{pg.url}?sslmode=verify-full&sslrootcert={stranger}")


def _self_signed(key, cert) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)


def _enable_tls(pg) -> Path:
    """A certificate for 127.0.0.1 in the cluster's folder, owned by its server, and ssl=on."""
    folder = pg.root / "tls"
    folder.mkdir()
    _self_signed(folder / "server.key", folder / "server.crt")
    owner = pg.root.stat()
    for path in (folder, folder / "server.key", folder / "server.crt"):
        os.chown(path, owner.st_uid, owner.st_gid)
    os.chmod(folder / "server.key", 0o600)
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET ssl_cert_file = '{folder / 'server.crt'}'")
        conn.execute(f"ALTER SYSTEM SET ssl_key_file = '{folder / 'server.key'}'")
        conn.execute("ALTER SYSTEM SET ssl = on")
        conn.execute("SELECT pg_reload_conf()")
    for _ in range(50):  # the reload is asynchronous
        with psycopg.connect(pg.url) as conn:
            if conn.execute("SHOW ssl").fetchone() == ("on",):
                break
        time.sleep(0.05)
    return folder / "server.crt"
