"""`supagate verify`: post-deploy verification of a live database, read only.

What the migrations promise is worked out from the migration files themselves (static
analysis of the set), then checked in the database: every migration recorded as applied,
every table present, RLS on every table of an exposed schema, every policy present,
materialized views hidden from the API roles, every pg_cron job scheduled, and, when a
URL is configured, the health-check function answering healthy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import httpx
import psycopg

from .db import connect
from .engine import read_history
from .migrations import Migration
from .static_analysis import analyse

_CRON_JOB = re.compile(r"cron\.schedule\s*\(\s*'((?:[^']|'')+)'\s*,", re.IGNORECASE)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_json(self) -> dict:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


@dataclass
class Verification:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict:
        return {"ok": self.ok, "checks": [c.to_json() for c in self.checks]}


def expected_cron_jobs(migrations: list[Migration]) -> list[str]:
    return sorted({m.group(1).replace("''", "'") for mig in migrations for m in _CRON_JOB.finditer(mig.sql)})


def verify(url: str, migrations: list[Migration], exposed: tuple[str, ...], health_url: str | None = None,
           health_timeout: float = 10.0) -> Verification:
    catalog = analyse(migrations, exposed).catalog
    tables = sorted(r.qualified for r in catalog.relations.values() if r.kind == "table")
    policies = sorted((r.qualified, p) for r in catalog.relations.values() for p in r.policies)
    result = Verification()
    with connect(url) as conn:
        result.checks.append(_migrations_applied(conn, migrations))
        result.checks.append(_tables_present(conn, tables))
        result.checks.append(_rls_everywhere(conn, exposed))
        result.checks.append(_policies_present(conn, policies))
        result.checks.append(_matviews_hidden(conn))
        result.checks.append(_cron_jobs(conn, expected_cron_jobs(migrations)))
    if health_url:
        result.checks.append(_health(health_url, health_timeout))
    return result


def _migrations_applied(conn: psycopg.Connection, migrations: list[Migration]) -> Check:
    applied = read_history(conn)
    missing = [m.filename for m in migrations if m.version not in applied]
    return Check("migrations-applied", not missing,
                 f"{len(migrations) - len(missing)}/{len(migrations)} migrations recorded as applied"
                 + (f"; missing: {', '.join(missing)}" if missing else ""),
                 "Run `supagate migrate` (or `pulumi up`) against this database." if missing else "")


def _tables_present(conn: psycopg.Connection, tables: list[str]) -> Check:
    present = {r[0] for r in conn.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p')").fetchall()}
    missing = [t for t in tables if t not in present]
    return Check("tables-present", not missing, f"{len(tables) - len(missing)}/{len(tables)} tables present"
                 + (f"; missing: {', '.join(missing)}" if missing else ""),
                 "A table the migrations create is gone: restore it from the pre-migration snapshot "
                 "or re-run the migration that creates it." if missing else "")


def _rls_everywhere(conn: psycopg.Connection, exposed: tuple[str, ...]) -> Check:
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname, c.relrowsecurity FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) "
        "ORDER BY 1", (list(exposed),)).fetchall()
    off = [name for name, rls in rows if not rls]
    return Check("rls-enabled", not off, f"RLS on {len(rows) - len(off)}/{len(rows)} tables in "
                 f"{', '.join(exposed)}" + (f"; off on: {', '.join(off)}" if off else ""),
                 (f"ALTER TABLE {off[0]} ENABLE ROW LEVEL SECURITY; (someone switched it off outside "
                  "the migrations: find out who, then add the ALTER as a migration)") if off else "")


def _policies_present(conn: psycopg.Connection, policies: list[tuple[str, str]]) -> Check:
    present = {(f"{s}.{t}", p) for s, t, p in conn.execute(
        "SELECT schemaname, tablename, policyname FROM pg_policies").fetchall()}
    missing = [f'{table} "{name}"' for table, name in policies if (table, name) not in present]
    return Check("policies-present", not missing, f"{len(policies) - len(missing)}/{len(policies)} policies present"
                 + (f"; missing: {', '.join(missing)}" if missing else ""),
                 "A policy the migrations create was dropped: re-create it in a new migration." if missing else "")


def _matviews_hidden(conn: psycopg.Connection) -> Check:
    readable = [r[0] for r in conn.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'm' AND (has_table_privilege('anon', c.oid, 'SELECT') "
        "OR has_table_privilege('authenticated', c.oid, 'SELECT')) ORDER BY 1").fetchall()]
    total = conn.execute("SELECT count(*) FROM pg_class WHERE relkind = 'm'").fetchone()[0]
    return Check("matviews-hidden", not readable, f"{total - len(readable)}/{total} materialized views hidden "
                 "from anon and authenticated" + (f"; readable: {', '.join(readable)}" if readable else ""),
                 f"REVOKE ALL ON {readable[0]} FROM anon, authenticated;" if readable else "")


def _cron_jobs(conn: psycopg.Connection, expected: list[str]) -> Check:
    if not expected:
        return Check("cron-jobs", True, "no pg_cron jobs expected")
    if not conn.execute("SELECT to_regclass('cron.job') IS NOT NULL").fetchone()[0]:
        return Check("cron-jobs", False, f"pg_cron is not installed; expected jobs: {', '.join(expected)}",
                     "Enable pg_cron (Database > Extensions) and re-run the migration that schedules them.")
    present = {r[0] for r in conn.execute("SELECT jobname FROM cron.job WHERE active").fetchall()}
    missing = [j for j in expected if j not in present]
    return Check("cron-jobs", not missing, f"{len(expected) - len(missing)}/{len(expected)} scheduled jobs active"
                 + (f"; missing or inactive: {', '.join(missing)}" if missing else ""),
                 "Re-schedule them (select cron.schedule(...)) in a new migration." if missing else "")


def _health(url: str, timeout: float) -> Check:
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return Check("health-check", False, f"{url} did not answer: {type(exc).__name__}",
                     "Check the function is deployed and its logs (Edge Functions > health-check).")
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = {}
    healthy = response.status_code == 200 and body.get("status", "ok") in ("ok", "healthy")
    problems = body.get("problems") if isinstance(body, dict) else None
    return Check("health-check", healthy, f"{url} answered HTTP {response.status_code}"
                 + (f": {', '.join(map(str, problems))}" if problems else ""),
                 "" if healthy else "Read the problems above; the health workflow opens an issue for them.")
