"""The one redactor, fed real secrets through real failure paths: a malformed URL makes
libpq echo the password, httpx echoes a token with a newline in its repr, an API echoes
a secret JSON-escaped. Making `redact` a no-op turns these red."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import threading

import pytest

from supagate.secrets import redact, url_without_password
from tests.cli.test_cli import supagate
from tests.conftest import APP_MIGRATIONS, write_migrations

PASSWORD = "Wr0ng%zzPassw0rd"  # an invalid percent escape: libpq quotes it back in its error


def test_redact_replaces_every_form_of_a_secret():
    token = 'sbp_a"b\\c\n'
    text = f"raw {token} json {json.dumps(token)} repr {token!r} bytes {token.encode()!r} trimmed {token.strip()}"
    cleaned = redact(text, token)
    assert "sbp_a" not in cleaned
    url = "postgresql://deployer:p%40ss@db.example:5432/postgres"
    assert redact(f"failed for {url}; password p@ss; raw p%40ss", url) == \
        "failed for <database url>; password ***; raw ***"
    assert url_without_password(url) == "postgresql://deployer@db.example:5432/postgres"


def test_libpq_echoes_the_password_of_a_malformed_url_and_the_cli_hides_it(tmp_path):
    src = write_migrations(tmp_path, {"20240101000000_a.sql": "select 1;"})
    url = f"postgresql://deployer:{PASSWORD}@127.0.0.1:1/postgres"
    import psycopg

    with pytest.raises(psycopg.Error) as raw:  # the real failure path echoes the secret
        psycopg.connect(url)
    assert PASSWORD in str(raw.value)
    run = supagate("migrate", "--migrations", str(src), env={"SUPABASE_DB_URL": url})
    assert run.returncode == 1 and "failed to connect" in run.stderr
    assert PASSWORD not in run.stderr + run.stdout


def test_the_migrations_provider_hides_an_echoed_password(tmp_path):
    from components.providers.migrations import MigrationsProvider
    from supagate.migrations.files import load_migrations
    from supagate.offline.resource_types import migration_inputs

    src = write_migrations(tmp_path, {"20240101000000_a.sql": "select 1;"})
    url = f"postgresql://deployer:{PASSWORD}@[::1/postgres"  # libpq quotes the whole URL back
    with pytest.raises(Exception) as err:
        MigrationsProvider().create({"db_url": url, "migrations": migration_inputs(load_migrations(src))})
    assert "failed to connect" in str(err.value)
    assert "Wr0ng" not in str(err.value)


class _Echo(BaseHTTPRequestHandler):
    """Answers 422 with the request body echoed back JSON-escaped, as APIs do."""

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
        reply = json.dumps({"message": f"invalid secrets: {body}"}).encode()
        self.send_response(422)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_api_errors_hide_escaped_secrets_and_a_token_with_a_newline(echo_server):
    from supagate.supabase_api.client import ApiError, ManagementApi, RetryPolicy

    secret = 'quote"back\\slash-value-0123'
    with ManagementApi("sbp_token_value", echo_server, RetryPolicy(attempts=1, total=5), secrets=(secret,),
                       allow_unlisted_api=True) as api:
        with pytest.raises(ApiError) as err:
            api.request("POST", "/v1/projects/x/secrets", json_body=[{"name": "S", "value": secret}])
    assert "HTTP 422" in str(err.value)
    assert "slash-value" not in str(err.value) and "quote" not in str(err.value)
    token = "sbp_newline_token_0123\n"  # pasted with its line end: httpx would quote it in its own error
    with pytest.raises(ApiError) as err:
        ManagementApi(token, echo_server, RetryPolicy(attempts=1, total=5), allow_unlisted_api=True)
    assert "sbp_newline_token" not in str(err.value) and "control characters" in str(err.value)


def test_a_secret_across_the_truncation_point_does_not_leak_in_part(echo_server):
    """The client scrubs an error body before it cuts it: a secret straddling the cut is
    replaced whole, not left half-visible."""
    from supagate.supabase_api.client import ApiError, ManagementApi, RetryPolicy

    secret = "straddling-secret-value-0123456789"
    with ManagementApi("sbp_token_value", echo_server, RetryPolicy(attempts=1, total=5), secrets=(secret,),
                       allow_unlisted_api=True) as api:
        with pytest.raises(ApiError) as err:
            api.request("POST", "/v1/projects/x/secrets", json_body=[{"name": "S", "pad": "p" * 270, "value": secret}])
    assert "straddling" not in str(err.value) and "0123456789" not in str(err.value)


# A password holding an unencoded `@ / : ? #`: libpq and psycopg read another host, port or
# query out of the URL and quote it back, with a piece of the password in it.
LEFT, RIGHT = "Lft7qPiece", "Rgt9zPiece"
PIECES = (LEFT, RIGHT, "Xtr4aPiece", "Ytr5bPiece", "Ztr6cPiece")
AMBIGUOUS = [f"{LEFT}@{RIGHT}",  # host "Rgt9zPiece@127.0.0.1"
             f"{LEFT}/{RIGHT}",  # port "Lft7qPiece" (psql), host "deployer"
             f"{LEFT}/{RIGHT}%zz",  # "invalid percent-encoded token: "Rgt9zPiece%zz@127.0.0.1:..."
             f"{LEFT}:{RIGHT}%zz", f"{LEFT}?{RIGHT}%zz", f"{LEFT}#{RIGHT}%zz",  # the whole password quoted
             f"{LEFT}@{RIGHT}/Xtr4aPiece:Ytr5bPiece?Ztr6cPiece#tail"]


def _chain(exc: BaseException | None):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def _ambiguous_url(cluster, password: str) -> str:
    return f"postgresql://deployer:{password}@127.0.0.1:{cluster.port}/postgres"


@pytest.mark.parametrize("password", AMBIGUOUS)
def test_no_piece_of_an_unencoded_password_leaks_from_a_failed_connection(cluster, password, caplog):
    """Through the real failure path: the message, its exception chain and every log line."""
    import logging

    from supagate.postgres.connect import DatabaseError, connect

    caplog.set_level(logging.DEBUG)
    with pytest.raises(DatabaseError) as raised:
        connect(_ambiguous_url(cluster, password), connect_timeout=3)
    texts = [caplog.text] + [t for exc in _chain(raised.value) for t in (str(exc), repr(exc))]
    assert "failed to connect to the database" in texts[1] and "percent-encode them" in texts[1]
    for text in texts:
        assert not any(piece in text for piece in PIECES), text


@pytest.mark.parametrize("password", AMBIGUOUS)
def test_no_piece_of_an_unencoded_password_leaks_from_psql_or_the_cli(cluster, password):
    """psql (libpq itself) quotes the pieces back; the redactor hides them, and the CLI's
    output never holds them."""
    import subprocess

    from supagate.postgres.pgtap import find_psql

    url = _ambiguous_url(cluster, password)
    done = subprocess.run([find_psql(), "-X", "-c", "select 1", url], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode != 0 and any(piece in done.stderr for piece in PIECES)  # the real echo
    assert not any(piece in redact(done.stderr, url) for piece in PIECES)
    run = supagate("migrate", "--migrations", str(APP_MIGRATIONS), env={"SUPABASE_DB_URL": url})
    assert run.returncode == 1 and "failed to connect" in run.stderr, run.stderr
    assert not any(piece in run.stderr + run.stdout for piece in PIECES)


@pytest.mark.parametrize("tail", [f"{LEFT} {RIGHT}", f"'{LEFT} {RIGHT}", f"{LEFT}={RIGHT}", f"{LEFT}\\ {RIGHT}"])
def test_no_piece_of_a_key_value_password_leaks(cluster, tail):
    """A key=value connection string with an unquoted space in its password: libpq stops at
    the space and quotes the rest back (`missing "=" after "Rgt9zPiece"`)."""
    from supagate.postgres.connect import DatabaseError, connect

    conninfo = f"host=127.0.0.1 port={cluster.port} user=deployer password={tail} dbname=postgres"
    with pytest.raises(DatabaseError) as raised:
        connect(conninfo, connect_timeout=3)
    texts = [t for exc in _chain(raised.value) for t in (str(exc), repr(exc))]
    assert "failed to connect to the database" in texts[0]
    for text in texts:
        assert not any(piece in text for piece in PIECES), text


def test_an_encoded_password_with_every_delimiter_connects_and_messages_keep_their_words(db_url):
    """The safe twin: percent-encoded, the same characters are an ordinary password (a real
    role logs in with it), and masking a short piece leaves the words of a message alone."""
    from urllib.parse import quote

    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from supagate.postgres.connect import connect

    password = f"{LEFT}@/:?#{RIGHT}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select set_config('password_encryption', 'scram-sha-256', false)")
        conn.execute(f"create role delimited login password '{password}'")
    params = conninfo_to_dict(db_url)
    encoded = (f"postgresql://delimited:{quote(password, safe='')}@{params.get('host', '127.0.0.1')}:"
               f"{params.get('port', 5432)}/{params['dbname']}")
    with connect(encoded) as conn:
        assert conn.execute("select current_user").fetchone() == ("delimited",)
    message = 'could not translate host name "db.example" to address: Name or service not known'
    assert redact(message, encoded) == message
    # The pieces "a" and "e" of "a@e" are masked where they stand alone, not inside words.
    echoed = 'could not translate host name "e@db.example" to address: Name or service not known'
    assert redact(echoed, "postgresql://deployer:a@e@db.example/x") == \
        'could not translate host name "***@db.example" to address: Name or service not known'
