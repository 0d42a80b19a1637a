"""Where a hosted Supabase database starts, reproduced in a local cluster.

Two parts. The install: a private copy of the PostgreSQL install layout for one cluster,
whose extension directory holds the real extensions of this machine plus placeholders of
the ones Supabase ships and Debian does not (pgvector, pg_net, pgsodium, pgjwt, http,
wrappers, pg_graphql, Vault). PostgreSQL finds its share directory relative to its own
binary, so a hard link of `postgres` in the private tree serves them without installing
anything system-wide. The shape: the roles, schemas, tables, functions, grants and default
privileges of Supabase's own definitions (sql/*.sql say which release each follows).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import psycopg

from supagate.gates.catalog.model import DEFAULT_EXPOSED_SCHEMAS

SHAPE_FILES = ("base.sql", "auth.sql", "storage.sql")
# Extensions present only as placeholders: DDL works, calling them raises (vault works unencrypted).
PLACEHOLDER_EXTENSIONS = ("vector", "pg_net", "pgsodium", "pgjwt", "http", "wrappers", "pg_graphql", "supabase_vault")
# What every prepared database must have (tests/postgres/test_supabase_shape.py checks it).
INVENTORY = {
    "roles": ("anon", "authenticated", "service_role", "authenticator", "supabase_admin", "supabase_auth_admin",
              "supabase_storage_admin", "supabase_functions_admin", "supabase_replication_admin",
              "supabase_read_only_user", "dashboard_user", "pgbouncer"),
    "schemas": ("auth", "storage", "extensions", "realtime", "vault", "graphql", "graphql_public", "net",
                "supabase_functions"),
    "tables": ("auth.users", "auth.identities", "auth.sessions", "auth.refresh_tokens", "auth.mfa_factors",
               "auth.one_time_tokens", "auth.audit_log_entries", "storage.buckets", "storage.objects",
               "storage.migrations", "storage.s3_multipart_uploads", "storage.s3_multipart_uploads_parts",
               "realtime.messages", "vault.secrets", "supabase_functions.hooks", "net._http_response"),
    "functions": ("auth.uid", "auth.role", "auth.jwt", "auth.email", "storage.foldername", "storage.filename",
                  "storage.extension", "storage.search", "vault.create_secret", "net.http_post", "net.http_get",
                  "supabase_functions.http_request", "realtime.topic", "graphql_public.graphql"),
    "extensions": ("uuid-ossp", "pgcrypto", "pg_stat_statements", "pg_graphql", "supabase_vault", "pg_net"),
    "rls": ("storage.objects", "storage.buckets", "auth.users", "realtime.messages"),
}


def private_install(bindir: Path, root: Path) -> Path:
    """A private install tree under `root`; returns the path of its `postgres` binary."""
    sharedir = _sharedir(bindir)
    pkglibdir = bindir.parent / "lib"
    mirror = root / "install"
    own_bin, own_share = mirror / bindir.relative_to("/"), mirror / sharedir.relative_to("/")
    own_bin.mkdir(parents=True)
    binary = own_bin / "postgres"
    try:
        os.link(bindir / "postgres", binary)  # a hard link: PostgreSQL resolves symlinks to the real install
    except OSError:
        shutil.copy2(bindir / "postgres", binary)
    own_lib = mirror / pkglibdir.relative_to("/")
    if not own_lib.exists():
        own_lib.symlink_to(pkglibdir)
    own_share.mkdir(parents=True)
    for entry in sharedir.iterdir():
        if entry.name != "extension":
            (own_share / entry.name).symlink_to(entry)
    extensions = own_share / "extension"
    extensions.mkdir()
    for entry in (sharedir / "extension").iterdir():
        (extensions / entry.name).symlink_to(entry)
    placeholders = resources.files("supagate.postgres").joinpath("extensions")
    for entry in placeholders.iterdir():
        if entry.name.endswith((".control", ".sql")) and not (extensions / entry.name).exists():
            (extensions / entry.name).write_text(entry.read_text())
    return binary


def _sharedir(bindir: Path) -> Path:
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        done = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True)
        if done.returncode == 0 and Path(done.stdout.strip()).is_dir():
            return Path(done.stdout.strip())
    return Path("/usr/share/postgresql") / bindir.parent.name


def prepare_supabase_database(url: str, exposed_schemas=DEFAULT_EXPOSED_SCHEMAS) -> None:
    """Give an empty database Supabase's shape (roles are cluster-wide: made when missing)."""
    sql_dir = resources.files("supagate.postgres").joinpath("sql")
    script = "".join(sql_dir.joinpath(name).read_text() for name in ("roles.sql", *SHAPE_FILES))
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(script)
        expose_schemas(conn, exposed_schemas)


def expose_schemas(conn: psycopg.Connection, exposed_schemas=DEFAULT_EXPOSED_SCHEMAS) -> None:
    """The database settings a shaped database needs (not copied when it is cloned: they
    belong to the database's oid): the search path and the schemas the API exposes."""
    dbname = conn.info.dbname
    schemas = ",".join(exposed_schemas)
    conn.execute(f'alter database "{dbname}" set search_path = "$user", public, extensions')
    conn.execute(f"alter database \"{dbname}\" set pgrst.db_schemas = '{schemas}'")
    conn.execute(f"alter role authenticator set pgrst.db_schemas = '{schemas}'")
