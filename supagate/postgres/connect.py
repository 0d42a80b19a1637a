"""Connections that never leak the connection string's password."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import Failed
from ..secrets import password_is_ambiguous, redact

if TYPE_CHECKING:
    import psycopg

# A client killed mid-statement (kill -9, a lost runner) must not leave its statement and
# locks running: PostgreSQL 14+ checks the client is still there every 2 s.
CLIENT_CHECK = "-c client_connection_check_interval=2000"
# How the server reads SQL text, fixed for the migration engine's session whatever the URL,
# PGOPTIONS or an `ALTER ROLE/DATABASE ... SET` say (startup options win over those): the
# static analysis reads every file this way, so the server must too (migrations/session.py
# keeps it so from file to file).
LEXING = "-c standard_conforming_strings=on -c backslash_quote=safe_encoding"


def _settings(url_options: str | None, engine: bool = False) -> dict[str, str]:
    """Ours, added to the URL's `options` rather than replacing them: Supabase's pooler finds
    the project by `options=reference=<ref>` when the client sends no SNI, and users set
    search_path or timeouts there. PGOPTIONS counts when the URL sets none, as in libpq.
    Ours come last, so they win over theirs."""
    theirs = url_options if url_options is not None else os.environ.get("PGOPTIONS", "")
    ours = f"{CLIENT_CHECK} {LEXING}" if engine else CLIENT_CHECK
    settings = {"application_name": "supagate", "options": f"{theirs} {ours}".strip()}
    if engine:
        settings["client_encoding"] = "UTF8"
    return settings


class DatabaseError(Failed):
    pass


def _no_url() -> DatabaseError:
    return DatabaseError("failed to connect: no database URL given\nPass --db-url or set SUPABASE_DB_URL.")


def _failed(exc: Exception, url: str) -> DatabaseError:
    hint = ("Its password holds an unencoded @ / : ? or #, which ends it early: percent-encode them (%40 %2F %3A "
            "%3F %23)." if password_is_ambiguous(url) else "Check the host, port, user and password of the database URL.")
    return DatabaseError(f"failed to connect to the database: {redact(str(exc).strip(), url)}\n{hint}")


def connect(url: str, *, autocommit: bool = True, connect_timeout: int = 10,
            engine: bool = False) -> "psycopg.Connection":
    """A psycopg connection. `engine=True` is the migration engine's session: UTF-8 and
    standard string lexing forced, nothing prepared behind its back (a migration may drop
    what a prepared statement names)."""
    import psycopg

    if not url:
        raise _no_url()
    try:
        from psycopg.conninfo import conninfo_to_dict

        settings = _settings(conninfo_to_dict(url).get("options"), engine)
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=connect_timeout, **settings)
    except (psycopg.Error, ValueError) as exc:
        failure = _failed(exc, url)
    else:
        failure = None
    if failure is not None:  # raised here, not in the handler: psycopg's error, which quotes the URL, is no context
        raise failure
    if engine:
        conn.prepare_threshold = None
    return conn


def libpq_env(url: str) -> dict[str, str]:
    """PG* variables for a child process (psql, pg_dump), so the URL stays off its command line."""
    from psycopg.conninfo import conninfo_to_dict

    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "passfile": "PGPASSFILE",
             "dbname": "PGDATABASE", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
             "options": "PGOPTIONS", "connect_timeout": "PGCONNECT_TIMEOUT"}
    return {names[k]: str(v) for k, v in conninfo_to_dict(url).items() if k in names and v is not None}
