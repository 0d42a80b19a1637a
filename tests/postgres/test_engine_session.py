"""The migration engine's session against a real server: its settings win over the URL's,
the URL's own options are kept beside them, a failed connection never shows the password,
and TLS with a verified certificate works as it does to a hosted project."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from supagate.postgres.connect import DatabaseError, connect
from tests.conftest import url_with


def connect_engine(url):
    return connect(url, engine=True)


def test_settings_override_the_url_and_the_session_is_utf8(db_url):
    with connect_engine(url_with(db_url, application_name="other", client_encoding="LATIN1")) as conn:
        row = conn.execute("SELECT current_setting('application_name'), current_setting('client_encoding'), "
                           "current_setting('client_connection_check_interval'), "
                           "current_setting('standard_conforming_strings')").fetchone()
    assert row == ("supagate", "UTF8", "2s", "on")


@pytest.mark.parametrize("client", ["engine", "psycopg"])
def test_the_urls_own_options_are_kept_beside_ours(db_url, client, monkeypatch):
    """Supabase's pooler finds a project by options=reference=<ref> when there is no SNI;
    replacing the URL's options would make it refuse the connection."""
    opener = connect_engine if client == "engine" else connect
    query = ("SELECT current_setting('search_path'), current_setting('work_mem'), "
             "current_setting('client_connection_check_interval')")
    with opener(url_with(db_url, options="-c search_path=tenant_a -c work_mem=7MB")) as conn:
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


def test_tls_with_a_verified_server_certificate_as_to_a_hosted_project(tmp_path):
    """Every hosted deploy runs over TLS: the engine verifies the server and refuses one it
    cannot verify."""
    from supagate.migrations import runner
    from supagate.migrations.files import load_migrations
    from supagate.postgres.embedded import EmbeddedPostgres
    from tests.conftest import write_migrations

    with EmbeddedPostgres() as pg:
        cert = _enable_tls(pg)
        secure = url_with(pg.url, sslmode="verify-full", sslrootcert=str(cert))
        with connect_engine(secure) as conn:
            assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
        src = write_migrations(tmp_path, {"20240101000000_tls.sql": "create table tls_t (id int);"})
        runner.migrate(secure, load_migrations(src), progress=lambda _: None)
        with psycopg.connect(pg.url) as other:
            assert other.execute("SELECT count(*) FROM supabase_migrations.schema_migrations").fetchone() == (1,)
        stranger = tmp_path / "stranger.crt"
        _self_signed(tmp_path / "stranger.key", stranger)
        with pytest.raises(DatabaseError, match="certificate verify failed"):
            connect_engine(url_with(pg.url, sslmode="verify-full", sslrootcert=str(stranger)))


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
