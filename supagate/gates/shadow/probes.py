"""Isolation probes in the shadow database: for every table in an exposed schema that has
an owner column (or contact fields), rows of two users are seeded, then, as
`authenticated` with user A's JWT claims, A must not read, change, delete or create B's
rows, and `anon` must see none. Every probe runs in a transaction that rolls back; a
probe that cannot run is reported (probe-incomplete), never passed."""

from __future__ import annotations

import json
import re
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


def isolation_probes(conn: psycopg.Connection, exposed: tuple[str, ...]) -> tuple[list[Finding], int]:
    findings: list[Finding] = []
    probed = 0
    for schema, table, owner, contact in _tables(conn, exposed):
        if owner is None and not contact:
            continue  # nothing personal to leak: no owner column, no contact fields
        probed += 1
        findings += _probe_table(conn, schema, table, owner)
    return findings, probed


def _claims(role: str, user: uuid.UUID | None) -> str:
    claims = {"role": role, "aud": role}
    if user is not None:
        claims["sub"] = str(user)
    return json.dumps(claims)


def _probe_table(conn, schema: str, table: str, owner: str | None) -> list[Finding]:
    name = f"{schema}.{table}"
    target = sql.Identifier(schema, table)
    columns = _columns(conn, schema, table)
    findings: list[Finding] = []

    def leak(verb: str, role: str, detail: str) -> None:
        findings.append(rls_isolation_leak.finding(name, verb, role, detail, owner))

    def incomplete(error: str) -> None:
        findings.append(probe_incomplete.finding(name, error))

    owner_key = owner or next((c.name for c in columns if c.name in CONTACT_COLUMNS), None)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL session_replication_role = replica")  # seeded rows skip FKs and triggers
            conn.execute("INSERT INTO auth.users (id, email, aud, role) VALUES (%s, 'a@probe.invalid', "
                         "'authenticated', 'authenticated'), (%s, 'b@probe.invalid', 'authenticated', "
                         "'authenticated') ON CONFLICT DO NOTHING", (USER_A, USER_B))
            try:
                for user, n in ((USER_A, 1), (USER_B, 2)):
                    conn.execute(sql.SQL("INSERT INTO {} ").format(target) + _row(columns, owner_key, user, n))
            except (psycopg.Error, ValueError) as exc:
                incomplete(_short(exc))
                return findings
            if owner is not None:
                column = sql.Identifier(owner)
                own = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(target, column),
                                   (USER_A,)).fetchone()[0]
                conn.execute("SET LOCAL ROLE authenticated")
                conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (_claims("authenticated", USER_A),))
                # No WHERE clause: an UPDATE or DELETE that reads no column is checked against
                # its own policy only, not the SELECT policies, which is how real leaks happen.
                checks = (
                    ("select", sql.SQL("SELECT 1 FROM {}").format(target), None, "reads user B's rows"),
                    ("update", sql.SQL("UPDATE {} SET {} = %s").format(target, column), (USER_A,),
                     "changes user B's rows"),
                    ("delete", sql.SQL("DELETE FROM {}").format(target), None, "deletes user B's rows"),
                )
                for verb, statement, params, detail in checks:
                    affected = _attempt(conn, statement, params)
                    if affected is not None and affected > own:
                        leak(verb, "authenticated user A", detail)
                affected = _attempt(conn, sql.SQL("INSERT INTO {} ").format(target)
                                    + _row(columns, owner, USER_B, 3), None)
                if affected:
                    leak("insert", "authenticated user A", "creates rows owned by user B")
                elif affected is None:
                    incomplete("inserting a row as user A failed for a reason other than permissions")
            conn.execute("SET LOCAL ROLE anon")
            conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (_claims("anon", None),))
            if _attempt(conn, sql.SQL("SELECT 1 FROM {}").format(target), None):
                leak("select", "anon", "sees personal rows")
    except psycopg.Error as exc:
        incomplete(_short(exc))
    return findings


def _attempt(conn, statement, params) -> int | None:
    """Rows the statement returned or touched; 0 when permissions stopped it; None when it
    failed for another reason."""
    try:
        with conn.transaction(force_rollback=True):  # a savepoint, undone: probes stay independent
            cursor = conn.execute(statement, params)
            return cursor.rowcount if cursor.rowcount >= 0 else len(cursor.fetchall())
    except psycopg.errors.InsufficientPrivilege:
        return 0
    except psycopg.Error:
        return None


def _short(exc: Exception) -> str:
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        return exc.diag.message_primary
    return str(exc).strip().splitlines()[0]

