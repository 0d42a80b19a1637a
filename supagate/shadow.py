"""The shadow database: the whole migration set applied with our engine to a throwaway
Postgres, then checked from the inside, where dynamic SQL, renames and functions that
change state have already happened.

Three checks run there:
- the catalog: the end-state gate rules asked of pg_catalog instead of the SQL text;
- isolation probes: for every table in an exposed schema that has an owner column, rows
  of two users are seeded, then, as `authenticated` with user A's JWT claims, A must not
  read, change, delete or create B's rows, and `anon` must see none. Every probe runs in
  a transaction that rolls back;
- Supabase's own advisors, through the pinned Supabase CLI (`supabase db advisors`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psycopg
from psycopg import sql

from . import engine
from .db import connect, libpq_env, redact
from .migrations import Migration
from .rules import Finding
from .static_analysis import CONTACT_COLUMNS

USER_A = uuid.UUID("00000000-0000-4000-a000-00000000000a")
USER_B = uuid.UUID("00000000-0000-4000-a000-00000000000b")
# Objects of the platform itself, not of the migrations under review.
PLATFORM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "auth", "extensions", "cron",
                    "supabase_migrations", "graphql_public", "storage", "realtime", "vault", "pgsodium")
# Supabase's lints that say what one of our rules says: ours carry the file and line.
ADVISOR_EQUIVALENTS = {
    "rls_disabled_in_public": "rls-missing",
    "security_definer_view": "view-security-definer",
    "auth_users_exposed": "view-auth-users",
    "materialized_view_in_api": "matview-exposed",
    "rls_enabled_no_policy": "rls-no-policy",
}
# Lints that read usage statistics, which a just-built database does not have.
ADVISOR_NEEDS_TRAFFIC = {"unused_index"}


class ShadowError(RuntimeError):
    """The shadow database could not be used (not a migration's fault)."""


@dataclass
class ShadowResult:
    findings: list[Finding] = field(default_factory=list)
    applied: int = 0
    probed_tables: int = 0
    advisor_lints: int = 0


def run_shadow(migrations: list[Migration], exposed: tuple[str, ...], db_url: str | None = None,
               supabase_cli: str | None = None, progress: Callable[[str], None] = lambda _: None) -> ShadowResult:
    if db_url is None:
        from .embedded import EmbeddedPostgres

        progress("Starting the shadow database (a throwaway PostgreSQL 15)...")
        with EmbeddedPostgres(exposed_schemas=exposed) as pg:
            return _check(pg.url, migrations, exposed, supabase_cli, progress)
    _prepare_given(db_url, exposed)
    return _check(db_url, migrations, exposed, supabase_cli, progress)


def _prepare_given(url: str, exposed: tuple[str, ...]) -> None:
    from .embedded import prepare_supabase_database

    with connect(url) as conn:
        applied = conn.execute(
            "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL").fetchone()[0]
        if applied and conn.execute("SELECT count(*) FROM supabase_migrations.schema_migrations").fetchone()[0]:
            raise ShadowError("the shadow database given with --db-url already has migrations applied\n"
                              "Pass an empty database (it is changed), or leave out --db-url to use a "
                              "throwaway one.")
        has_auth = conn.execute("SELECT to_regclass('auth.users') IS NOT NULL").fetchone()[0]
        has_roles = conn.execute("SELECT count(*) = 4 FROM pg_roles WHERE rolname IN "
                                 "('anon', 'authenticated', 'service_role', 'authenticator')").fetchone()[0]
    if not has_auth:
        prepare_supabase_database(url, exposed, roles_exist=has_roles)


def _check(url: str, migrations: list[Migration], exposed: tuple[str, ...], supabase_cli: str | None,
           progress) -> ShadowResult:
    result = ShadowResult()
    progress(f"Applying {len(migrations)} migration(s) to the shadow database...")
    try:
        applied = engine.migrate(url, migrations, engine.Options(include_all=True, lock_wait=5),
                                 progress=lambda _: None)
        result.applied = len(applied.applied)
    except engine.MigrationError as exc:
        first_line = str(exc).splitlines()[0]
        result.findings.append(Finding(
            rule="migration-failed", object=exc.file or "migrations", file=exc.file, line=exc.line,
            message=f"{first_line} (in a fresh database).",
            fix="Fix the statement so the whole set applies from scratch; `supagate migrate --db-url` "
                "on a local database shows the full error.", source="shadow"))
        return result  # later checks would describe a half-built schema
    progress("Checking the catalog and probing row level security as anon and authenticated...")
    with connect(url) as conn:
        result.findings += catalog_findings(conn, exposed)
        probe_findings, result.probed_tables = isolation_probes(conn, exposed)
        result.findings += probe_findings
    if supabase_cli:
        progress("Running Supabase's advisors (supabase db advisors)...")
        lints = run_advisors(supabase_cli, url)
        result.advisor_lints = len(lints)
        result.findings += advisor_findings(lints, result.findings)
    return result


# ---------------------------------------------------------------- catalog

_CATALOG_QUERIES = {
    "rls-missing": """
        SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%(exposed)s) AND NOT c.relrowsecurity""",
    "rls-no-policy": """
        SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%(exposed)s) AND c.relrowsecurity
          AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)""",
    "view-security-definer": """
        SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'v' AND n.nspname = ANY(%(exposed)s)
          AND NOT coalesce(c.reloptions && ARRAY['security_invoker=true', 'security_invoker=on',
                                                 'security_invoker=1'], false)""",
    "view-auth-users": """
        SELECT DISTINCT n.nspname || '.' || c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_rewrite r ON r.ev_class = c.oid
        JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass
        WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY(%(exposed)s)
          AND d.refobjid = 'auth.users'::regclass""",
    "matview-exposed": """
        SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'm' AND n.nspname = ANY(%(exposed)s)
          AND (has_table_privilege('anon', c.oid, 'SELECT')
               OR has_table_privilege('authenticated', c.oid, 'SELECT'))""",
    "function-search-path": """
        SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname <> ALL(%(platform)s) AND n.nspname NOT LIKE 'pg\\_%%'
          AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) s WHERE s LIKE 'search\\_path=%%')""",
    "policy-permissive-write": """
        SELECT schemaname || '.' || tablename || ' policy "' || policyname || '"' FROM pg_policies
        WHERE schemaname = ANY(%(exposed)s) AND permissive = 'PERMISSIVE'
          AND roles && ARRAY['public', 'anon']::name[]
          AND cmd IN ('INSERT', 'UPDATE', 'DELETE', 'ALL')
          AND (qual = 'true' OR with_check = 'true')""",
    "policy-user-metadata": """
        SELECT schemaname || '.' || tablename || ' policy "' || policyname || '"' FROM pg_policies
        WHERE schemaname = ANY(%(exposed)s)
          AND (coalesce(qual, '') || coalesce(with_check, '')) ~* '(user_metadata|raw_user_meta_data)'""",
}
_CATALOG_MESSAGES = {
    "rls-missing": ("Table {o} in an exposed schema has no row level security in the migrated database.",
                    "ALTER TABLE {o} ENABLE ROW LEVEL SECURITY; and add policies (look for a DO block, "
                    "a rename or a function that created or replaced it)."),
    "rls-no-policy": ("Table {o} has row level security but no policy in the migrated database.",
                      "Add the policies its users need, or `-- gate:allow rls-no-policy <reason>`."),
    "view-security-definer": ("View {o} runs with its owner's rights in the migrated database.",
                              "ALTER VIEW {o} SET (security_invoker = true)."),
    "view-auth-users": ("View {o} in an exposed schema depends on auth.users in the migrated database.",
                        "Read a public profiles table instead, or move the view out of the exposed schemas."),
    "matview-exposed": ("Materialized view {o} is readable by anon or authenticated in the migrated database.",
                        "REVOKE ALL ON {o} FROM anon, authenticated."),
    "function-search-path": ("SECURITY DEFINER function {o} has no pinned search_path in the migrated database.",
                             "ALTER FUNCTION {o} SET search_path = ''; and schema-qualify its body."),
    "policy-permissive-write": ("{o} lets anon/PUBLIC write any row in the migrated database.",
                                "Add TO authenticated and an owner condition."),
    "policy-user-metadata": ("{o} trusts user_metadata in the migrated database.",
                             "Use app_metadata: auth.jwt() -> 'app_metadata'."),
}


def catalog_findings(conn: psycopg.Connection, exposed: tuple[str, ...]) -> list[Finding]:
    params = {"exposed": list(exposed), "platform": list(PLATFORM_SCHEMAS)}
    found = []
    for rule, query in _CATALOG_QUERIES.items():
        message, fix = _CATALOG_MESSAGES[rule]
        for (obj,) in conn.execute(query, params).fetchall():
            found.append(Finding(rule=rule, object=obj, message=message.format(o=obj), fix=fix.format(o=obj),
                                 source="shadow"))
    return found


# ---------------------------------------------------------------- isolation probes

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
        findings.append(Finding(
            rule="rls-isolation-leak", object=f"{name} {verb} as {role}",
            message=f"In the shadow database, {role} {detail} in {name}.",
            fix=f"Tighten the {verb} policies of {name}: TO authenticated with "
                f"USING/WITH CHECK ((select auth.uid()) = {owner or 'user_id'}).", source="shadow"))

    def incomplete(error: str) -> None:
        findings.append(Finding(
            rule="probe-incomplete", object=name,
            message=f"Isolation probe of {name} could not run: {error}.",
            fix="Give the table's required columns defaults, or cover it with a pgTAP test in "
                "supabase/tests/database.", source="shadow"))

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


# ---------------------------------------------------------------- Supabase advisors

def run_advisors(supabase_cli: str, url: str) -> list[dict]:
    """`supabase db advisors` against the shadow database; the password, if any, goes in
    PGPASSWORD, never on the command line."""
    env = {**os.environ, **libpq_env(url)}
    bare = redact_password(url)
    with tempfile.TemporaryDirectory(prefix="supagate-advisors-") as workdir:
        Path(workdir, "supabase").mkdir()  # an empty project: the CLI wants a supabase/ folder
        done = subprocess.run(
            [supabase_cli, "--workdir", workdir, "db", "advisors", f"--remote={bare}", "--type", "all",
             "--level", "info", "--output-format", "json"],
            capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise ShadowError(f"failed to run supabase db advisors: {redact(done.stderr.strip()[-500:], url)}\n"
                          "Check the pinned Supabase CLI is installed (npm install).")
    try:
        return json.loads(done.stdout).get("results") or []
    except json.JSONDecodeError:
        raise ShadowError("failed to read supabase db advisors output: not JSON\n"
                          "Check the Supabase CLI version is the pinned 3.1.0.") from None


def redact_password(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1@", url)


def advisor_findings(lints: list[dict], ours: list[Finding]) -> list[Finding]:
    seen = {(f.rule, f.object) for f in ours}
    found = []
    for lint in lints:
        meta = lint.get("metadata") or {}
        obj = ".".join(p for p in (meta.get("schema"), meta.get("name")) if p) or lint.get("name", "?")
        if lint.get("name") in ADVISOR_NEEDS_TRAFFIC:
            continue
        equivalent = ADVISOR_EQUIVALENTS.get(lint.get("name", ""))
        if equivalent and (equivalent, obj) in seen:
            continue  # one of our rules already says this, with more detail
        found.append(Finding(
            rule=f"advisor/{lint.get('name')}", object=obj, level=lint.get("level"), source="advisor",
            message=(lint.get("detail") or lint.get("title") or "").replace("\n", " ").strip(),
            fix=f"See {lint.get('remediation')}" if lint.get("remediation") else "See Supabase's database linter docs."))
    return found
