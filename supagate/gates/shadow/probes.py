"""Isolation probes in the shadow database: for every table in an exposed schema that has
an owner column (or contact fields), rows of two users are seeded, then, as
`authenticated` with user A's JWT claims, A must not read, change, delete or create B's
rows, and `anon` must see none. Every probe runs in a transaction that rolls back; a
probe that cannot run is reported (probe-incomplete), never passed.

The probes reach the tables as PostgREST does: connected as `authenticator`, then
`SET ROLE anon|authenticated` with `request.jwt.claims`, so `session_user` and
`current_user` are what a policy sees in production."""

from __future__ import annotations

import json
import os
import re
import secrets
import uuid
from dataclasses import dataclass

import psycopg
from psycopg import sql

from supagate.findings import Finding
from supagate.gates.catalog.model import CONTACT_COLUMNS
from supagate.gates.rules import probe_incomplete, rls_isolation_leak

USER_A = uuid.UUID("00000000-0000-4000-a000-00000000000a")
USER_B = uuid.UUID("00000000-0000-4000-a000-00000000000b")


@dataclass
class Column:
    name: str
    type: str
    category: str
    not_null: bool
    has_default: bool
    enum_first: str | None
    check_first: str | None  # the first literal a CHECK allows, e.g. of `x = ANY (ARRAY['a', ...])`
    check_min: str | None  # the lower bound a CHECK sets, e.g. `x >= 0`


def _tables(conn, exposed) -> list[tuple[str, str, str | None, bool]]:
    """(schema, table, owner column or None, has contact columns) for exposed tables."""
    rows = conn.execute("""
        SELECT n.nspname, c.relname,
               (SELECT a.attname FROM pg_constraint k
                  JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
                 WHERE k.conrelid = c.oid AND k.contype = 'f' AND k.confrelid = 'auth.users'::regclass
                   AND array_length(k.conkey, 1) = 1
                 ORDER BY (a.attname = 'user_id') DESC, a.attnum LIMIT 1),
               (SELECT a.attname FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND a.atttypid = 'uuid'::regtype
                   AND NOT a.attisdropped),
               EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped
                         AND a.attname = ANY(%(contact)s))
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY(%(exposed)s)
         ORDER BY 1, 2""", {"exposed": list(exposed), "contact": sorted(CONTACT_COLUMNS)}).fetchall()
    return [(schema, table, fk_owner or user_id, contact) for schema, table, fk_owner, user_id, contact in rows]


def _columns(conn, schema: str, table: str) -> list[Column]:
    rows = conn.execute("""
        SELECT a.attname, format_type(a.atttypid, a.atttypmod),
               coalesce(bt.typcategory, t.typcategory), a.attnotnull,
               a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
               (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = coalesce(bt.oid, t.oid)
                 ORDER BY e.enumsortorder LIMIT 1),
               (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k
                 WHERE k.conrelid = a.attrelid AND k.contype = 'c' AND a.attnum = ANY(k.conkey) LIMIT 1)
          FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
          LEFT JOIN pg_type bt ON bt.oid = t.typbasetype AND t.typtype = 'd'
         WHERE a.attrelid = format('%%I.%%I', %s::text, %s::text)::regclass AND a.attnum > 0
           AND NOT a.attisdropped
         ORDER BY a.attnum""", (schema, table)).fetchall()
    columns = []
    for name, type_, category, not_null, has_default, enum_first, check in rows:
        first = low = None
        if check:
            match = re.search(r"ARRAY\['((?:[^']|'')*)'", check) or re.search(r"= '((?:[^']|'')*)'", check)
            first = match.group(1).replace("''", "'") if match else None
            bound = re.search(rf"\b{re.escape(name)} (>=?) \(?(-?[0-9.]+)\)?", check)
            if bound:
                low = bound.group(2) if bound.group(1) == ">=" else str(float(bound.group(2)) + 1)
        columns.append(Column(name, type_, category, not_null, has_default, enum_first, first, low))
    return columns


def _value(column: Column, n: int) -> sql.Composable | None:
    """A value of the column's type, different for each n (unique constraints)."""
    if column.enum_first is not None:
        return sql.SQL("{}::{}").format(sql.Literal(column.enum_first), sql.SQL(column.type))
    if column.check_first is not None:
        return sql.SQL("{}::{}").format(sql.Literal(column.check_first), sql.SQL(column.type))
    literal = {
        "S": "probe" + "abcdefgh"[n], "N": column.check_min or str(n), "B": "false", "U": str(uuid.UUID(int=n)), "I": f"127.0.0.{n}",
        "A": "{}", "D": None, "T": f"{n} minutes",
    }.get(column.category)
    if column.category == "D":
        return sql.SQL("(now() - {}::interval)::{}").format(sql.Literal(f"{n} days"), sql.SQL(column.type))
    if column.type in ("json", "jsonb"):
        literal = "{}"
    if literal is None:
        return None
    return sql.SQL("{}::{}").format(sql.Literal(literal), sql.SQL(column.type))


def _row(columns: list[Column], owner: str, user: uuid.UUID, n: int):
    names, values = [], []
    for column in columns:
        if column.name == owner:
            value = sql.Literal(str(user))
        elif column.has_default or not column.not_null:
            continue
        else:
            value = _value(column, n)
            if value is None:
                raise ValueError(f"no probe value for column {column.name} of type {column.type}")
        names.append(sql.Identifier(column.name))
        values.append(value)
    return sql.SQL("({}) VALUES ({})").format(sql.SQL(", ").join(names), sql.SQL(", ").join(values))


# Probes run over a few connection pairs at once: each table's probes are independent (every
# one in its own rolled-back transaction), and a real project has hundreds of tables. On 2
# cores 300 tables take 1.1 s on one lane and 0.75-0.95 s on two to four.
WORKERS = min(4, max(2, os.cpu_count() or 2))


def isolation_probes(conn: psycopg.Connection, url: str, exposed: tuple[str, ...],
                     workers: int = WORKERS) -> tuple[list[Finding], int]:
    """Probe every exposed table holding personal data, as PostgREST would reach it. The
    findings come back in table order whatever the number of workers."""
    from concurrent.futures import ThreadPoolExecutor

    from supagate.postgres.connect import connect

    targets = [(s, t, owner) for s, t, owner, contact in _tables(conn, exposed) if owner is not None or contact]
    if not targets:
        return [], 0
    conn.execute(SEED_HELPER)
    lanes = max(1, min(workers, len(targets)))
    api_conninfo = _authenticator_conninfo(conn, url)  # once, before any lane connects

    def lane(index: int) -> list[tuple[int, list[Finding]]]:
        mine = [(i, target) for i, target in enumerate(targets) if i % lanes == index]
        with connect(url) as owner, \
                psycopg.connect(api_conninfo, autocommit=True, connect_timeout=10,
                                application_name="supagate probes") as api:
            return [(i, _probe_table(owner, api, *target)) for i, target in mine]

    try:
        with ThreadPoolExecutor(max_workers=lanes) as pool:
            done = [found for result in pool.map(lane, range(lanes)) for found in result]
    finally:
        conn.execute(f"DROP SCHEMA IF EXISTS {PROBE_SCHEMA} CASCADE")
    return [f for _, found in sorted(done, key=lambda item: item[0]) for f in found], len(targets)


PROBE_SCHEMA = "supagate_probe"  # the helper's schema (SEED_HELPER), dropped after the probes

# Seeds are written by the database owner, skipping foreign keys and triggers, inside the
# API connection's own transaction (so they roll back with it); then triggers are back on.
SEED_HELPER = """
CREATE SCHEMA IF NOT EXISTS supagate_probe;
CREATE OR REPLACE FUNCTION supagate_probe.seed(statements text[], replica boolean) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE statement text; touched bigint := 0; n bigint;
BEGIN
  IF replica THEN PERFORM set_config('session_replication_role', 'replica', true); END IF;
  FOREACH statement IN ARRAY statements LOOP
    EXECUTE statement;
    GET DIAGNOSTICS n = ROW_COUNT;
    touched := touched + n;
  END LOOP;
  PERFORM set_config('session_replication_role', 'origin', true);
  RETURN touched;
END $$;
CREATE OR REPLACE FUNCTION supagate_probe.replica() RETURNS void LANGUAGE sql SECURITY DEFINER AS
  $$ SELECT set_config('session_replication_role', 'replica', true) $$;
REVOKE ALL ON FUNCTION supagate_probe.seed(text[], boolean), supagate_probe.replica() FROM PUBLIC;
GRANT USAGE ON SCHEMA supagate_probe TO authenticator;
GRANT EXECUTE ON FUNCTION supagate_probe.seed(text[], boolean), supagate_probe.replica() TO authenticator;
"""


def _authenticator_conninfo(conn: psycopg.Connection, url: str) -> str:
    """How to connect as `authenticator`, PostgREST's login role (never the owner: on
    Supabase `postgres` bypasses RLS, and session_user would differ)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {**conninfo_to_dict(url), "user": "authenticator"}
    params.pop("password", None)
    try:
        psycopg.connect(make_conninfo(**params), connect_timeout=10).close()
        return make_conninfo(**params)
    except psycopg.OperationalError:
        password = secrets.token_urlsafe(24)  # the shadow's own: throwaway, never printed
        conn.execute(sql.SQL("ALTER ROLE authenticator PASSWORD {}").format(sql.Literal(password)))
        return make_conninfo(**params, password=password)


def _claims(role: str, user: uuid.UUID | None) -> str:
    claims = {"role": role, "aud": role}
    if user is not None:
        claims["sub"] = str(user)
    return json.dumps(claims)


def _as(api: psycopg.Connection, role: str, user: uuid.UUID | None) -> None:
    api.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
    api.execute("SELECT set_config('request.jwt.claims', %s, true)", (_claims(role, user),))


def _probe_table(conn, api, schema: str, table: str, owner: str | None) -> list[Finding]:
    name = f"{schema}.{table}"
    target = sql.Identifier(schema, table)
    columns = _columns(conn, schema, table)
    findings: list[Finding] = []

    def leak(verb: str, role: str, detail: str) -> None:
        findings.append(rls_isolation_leak.finding(name, verb, role, detail, owner))

    def incomplete(verb: str, error: str) -> None:
        findings.append(probe_incomplete.finding(name, verb, error))

    owner_key = owner or next((c.name for c in columns if c.name in CONTACT_COLUMNS), None)
    try:
        seeds = [_users_seed()] + [(sql.SQL("INSERT INTO {} ").format(target) + _row(columns, owner_key, user, n))
                                   .as_string(conn) for user, n in ((USER_A, 1), (USER_B, 2))]
    except ValueError as exc:
        incomplete("seed", str(exc))
        return findings
    with api.transaction(force_rollback=True):
        try:
            with api.transaction():
                api.execute("SELECT supagate_probe.seed(%s, true)", (seeds,))
        except psycopg.Error as exc:
            incomplete("seed", _short(exc))
            return findings
        if owner is not None:
            column = sql.Identifier(owner)
            own = 1  # the one row seeded for user A
            _as(api, "authenticated", USER_A)
            # No WHERE clause: an UPDATE or DELETE that reads no column is checked against
            # its own policy only, not the SELECT policies, which is how real leaks happen.
            # The UPDATE writes each row's own owner back: no unique or check constraint can
            # stop it, so only a policy (or a permission) can.
            checks = (
                ("select", sql.SQL("SELECT 1 FROM {}").format(target), "reads user B's rows"),
                ("update", sql.SQL("UPDATE {} SET {} = {}").format(target, column, column), "changes user B's rows"),
                ("delete", sql.SQL("DELETE FROM {}").format(target), "deletes user B's rows"),
            )
            for verb, statement, detail in checks:
                affected, error = _attempt(api, statement)
                if error is not None:
                    incomplete(verb, error)
                elif affected > own:
                    leak(verb, "authenticated user A", detail)
            # Taking B's rows over (setting the owner to A) passes a WITH CHECK on the owner.
            takeover = sql.SQL("UPDATE {} SET {} = %s").format(target, column)  # no WHERE: see above
            affected, error = _attempt(api, takeover, (USER_A,))
            mine = own
            if error is not None and error.startswith("23505"):  # A may own one row only: give up A's seed
                affected, error = _attempt_without_own_row(api, takeover, (USER_A,), target, column)
                mine = 0
            if error is not None:
                incomplete("update the owner", error)
            elif affected > mine:
                leak("update", "authenticated user A", "takes over user B's rows (sets their owner to A)")
            insert = sql.SQL("INSERT INTO {} ").format(target) + _row(columns, owner, USER_B, 3)
            affected, error = _attempt(api, insert)
            if error is not None and error.startswith("23503"):
                # A foreign key the probe's made-up values cannot meet: ask again without
                # foreign key checks and triggers; RLS still decides.
                affected, error = _attempt_replica(api, insert, "authenticated")
            if error is not None:
                incomplete("insert", error)
            elif affected:
                leak("insert", "authenticated user A", "creates rows owned by user B")
            api.execute("RESET ROLE")
        _as(api, "anon", None)
        affected, error = _attempt(api, sql.SQL("SELECT 1 FROM {}").format(target))
        if error is not None:
            incomplete("select as anon", error)
        elif affected:
            leak("select", "anon", "sees personal rows")
    return findings


def _users_seed() -> str:
    return ("INSERT INTO auth.users (id, email, aud, role) VALUES "
            f"('{USER_A}', 'a@probe.invalid', 'authenticated', 'authenticated'), "
            f"('{USER_B}', 'b@probe.invalid', 'authenticated', 'authenticated') ON CONFLICT DO NOTHING")


def _attempt(api, statement, params=None) -> tuple[int, str | None]:
    """(rows returned or touched, None), (0, None) when a permission or a policy stopped it,
    or (0, "SQLSTATE message") when it failed for another reason."""
    try:
        with api.transaction(force_rollback=True):  # a savepoint, undone: probes stay independent
            cursor = api.execute(statement, params)
            return (cursor.rowcount if cursor.rowcount >= 0 else len(cursor.fetchall())), None
    except psycopg.errors.InsufficientPrivilege:  # 42501: permission denied, or a policy's WITH CHECK
        return 0, None
    except psycopg.Error as exc:
        return 0, f"{exc.diag.sqlstate} {_short(exc)}"


def _attempt_without_own_row(api, statement, params, target, column) -> tuple[int, str | None]:
    """The attempt after A's seeded row is removed (by the owner), for owners unique per user."""
    try:
        with api.transaction(force_rollback=True):
            api.execute("RESET ROLE")
            delete = sql.SQL("DELETE FROM {} WHERE {} = {}").format(target, column, sql.Literal(str(USER_A)))
            api.execute("SELECT supagate_probe.seed(%s, true)", ([delete.as_string(api)],))
            api.execute("SET LOCAL ROLE authenticated")
            cursor = api.execute(statement, params)
            return cursor.rowcount, None
    except psycopg.errors.InsufficientPrivilege:
        return 0, None
    except psycopg.Error as exc:
        return 0, f"{exc.diag.sqlstate} {_short(exc)}"


def _attempt_replica(api, statement, role: str) -> tuple[int, str | None]:
    """The same attempt with foreign keys and triggers off (the owner switches them off)."""
    try:
        with api.transaction(force_rollback=True):
            api.execute("RESET ROLE")
            api.execute("SELECT supagate_probe.replica()")
            api.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            cursor = api.execute(statement)
            return cursor.rowcount, None
    except psycopg.errors.InsufficientPrivilege:
        return 0, None
    except psycopg.Error as exc:
        return 0, f"{exc.diag.sqlstate} {_short(exc)}"


def _short(exc: Exception) -> str:
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        return exc.diag.message_primary
    return str(exc).strip().splitlines()[0]

