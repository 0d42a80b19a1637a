"""Who may reach a local cluster, and which OS user it runs as.

A cluster's superuser can run OS commands as the server's user (COPY ... TO PROGRAM), so
both questions decide who else on the machine gets a shell:

- Over TCP (127.0.0.1 only) every login needs a password (scram-sha-256). `postgres` gets a
  random one per cluster, set at the cluster's first start, after the template is copied:
  the template never holds one, so no two clusters share a password. The other login roles
  have none and cannot log in until something sets one (the shadow's probes do, for
  `authenticator`).
- The Unix socket (trust) sits in the cluster's own 0700 folder, with mode 0700 itself:
  only the server's OS user and the caller (the same user, or root) reach it. That is how
  the password is set, how the template is built without one, and how pg_cron runs its
  jobs (it connects as each job's role, as on Supabase, where loopback is trusted).
- The password lives only in a 0600 passfile in that folder. URLs name the file
  (`passfile=`), never the password, so they may appear on command lines, in logs and in
  `.supagate/db.json`. libpq (psycopg, psql, pg_dump) and pgx (the Supabase CLI) read it.
- The server runs as the caller. As root, as the system user `supagate` (created on first
  use; $SUPAGATE_PG_USER picks another): never root, never `postgres`, which owns the
  machine's real clusters and is their superuser through peer authentication.
"""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
from pathlib import Path
from urllib.parse import quote

from psycopg import Connection, sql

from supagate.errors import Failed

SERVICE_USER = "supagate"
REFUSED_USERS = {"root", "postgres"}
SUPERUSER = "postgres"
PASSFILE = "pgpass"


class ClusterAccessError(Failed):
    pass


def server_user() -> pwd.struct_passwd | None:
    """The OS user the server runs as when the caller is root; None: the caller itself."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("SUPAGATE_PG_USER") or SERVICE_USER
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        if name != SERVICE_USER:
            raise ClusterAccessError(f"failed to start PostgreSQL as root: SUPAGATE_PG_USER names {name!r}, "
                                     "which does not exist\nCreate it (useradd --system NAME) or unset "
                                     f"SUPAGATE_PG_USER to use {SERVICE_USER!r}.") from None
        user = _create_service_user()
    if user.pw_name in REFUSED_USERS or user.pw_uid == 0 or user.pw_gid == 0:
        raise ClusterAccessError(
            f"failed to start PostgreSQL as root: refusing to run it as {user.pw_name!r} (uid {user.pw_uid}, "
            f"gid {user.pw_gid})\nIts superuser could run commands as that user. Unset SUPAGATE_PG_USER to use "
            f"{SERVICE_USER!r}, or name an unprivileged user of its own.")
    return user


def _create_service_user() -> pwd.struct_passwd:
    try:
        done = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                               "/nonexistent", "--shell", "/usr/sbin/nologin", "--comment",
                               "supagate local PostgreSQL clusters", SERVICE_USER], capture_output=True, text=True)
        why = done.stderr.strip() or f"useradd exited {done.returncode}"
    except OSError as exc:  # no useradd on this system
        why = str(exc)
    try:  # another process may have created it first (useradd then exits 9)
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise ClusterAccessError(
            f"failed to create the system user {SERVICE_USER!r} the local clusters run as: {why}\n"
            f"Create it (useradd --system --user-group {SERVICE_USER}) or set SUPAGATE_PG_USER to an unprivileged "
            "user.") from None


HBA = """# Written by supagate for this cluster (supagate/postgres/cluster_access.py).
# The socket's folder is 0700: only the server's OS user and the caller reach it.
local all all trust
host all all 127.0.0.1/32 scram-sha-256
"""


def write_rules(data: Path, owner: pwd.struct_passwd | None) -> None:
    """The cluster's pg_hba.conf, written after the copy: no template (nor a tampered cache)
    decides who gets in."""
    path = data / "pg_hba.conf"
    path.write_text(HBA)
    os.chmod(path, 0o600)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def write_passfile(root: Path, port: int) -> tuple[Path, str]:
    """A fresh password for `postgres` on this cluster's port, in a file only the caller reads."""
    password = secrets.token_urlsafe(32)  # [A-Za-z0-9_-]: nothing the passfile format escapes
    path = root / PASSFILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"127.0.0.1:{port}:*:{SUPERUSER}:{password}\n")
    return path, password


def set_password(conn: Connection, password: str) -> None:
    """Give `postgres` its password, over the socket, as a SCRAM verifier computed here, so
    no statement text holds the password; pg_stat_statements does not keep even that one."""
    verifier = conn.pgconn.encrypt_password(password.encode(), SUPERUSER.encode(), b"scram-sha-256").decode()
    conn.execute("SET pg_stat_statements.track_utility = off")
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SUPERUSER), sql.Literal(verifier)))


def tcp_url(port: int, dbname: str, passfile: Path) -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{quote(dbname)}?passfile={quote(str(passfile))}"


def socket_url(root: Path, port: int, dbname: str) -> str:
    return f"postgresql://{SUPERUSER}@/{quote(dbname)}?host={quote(str(root))}&port={port}"
