"""`supagate verify`: post-deploy verification of a live database, read only.

What the migrations promise is worked out from the migration files themselves (static
analysis of the set), then checked in the database: every migration recorded as applied,
every table present, RLS on every table of an exposed schema and materialized views
hidden from the API roles (the gates' own pg_catalog queries, same scope), every policy
present, every pg_cron job scheduled, and, when a URL is configured, the health-check
function answering healthy. Each problem is a Finding; a check that cannot run fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from supagate.findings import MANDATORY, Finding
from supagate.gates.catalog.replay import analyse
from supagate.gates.rules import matview_exposed, rls_missing
from supagate.gates.rules.function_search_path import PLATFORM_SCHEMAS
from supagate.migrations.files import Migration
from supagate.migrations.history import read_history
from supagate.postgres.connect import connect

_CRON_JOB = re.compile(r"cron\.schedule\s*\(\s*'((?:[^']|'')+)'\s*,", re.IGNORECASE)


@dataclass
class Verification:
    summaries: dict[str, str] = field(default_factory=dict)  # check -> what was found, in order
    findings: list[Finding] = field(default_factory=list)  # the problems; rule = the check's name

    @property
    def ok(self) -> bool:
        return not self.findings

    def passed(self, check: str) -> bool:
        return not any(f.rule == check for f in self.findings)

    def add(self, check: str, summary: str, problem: str | None = None, fix: str = "", objects=()) -> None:
        self.summaries[check] = summary
        if problem is not None:
            self.findings.append(Finding(check, ", ".join(objects) or check, problem, fix,
                                         enforcement=MANDATORY, source="verify"))

    def to_json(self) -> dict:
        checks = []
        for name, detail in self.summaries.items():
            fix = next((f.fix for f in self.findings if f.rule == name), "")
            checks.append({"check": name, "ok": self.passed(name), "detail": detail, "fix": fix})
        return {"ok": self.ok, "checks": checks}


def render_lines(result: Verification) -> list[str]:
    lines = []
    for check in result.to_json()["checks"]:
        lines.append(f"  {'ok  ' if check['ok'] else 'FAIL'} {check['check']}: {check['detail']}")
        if not check["ok"] and check["fix"]:
            lines.append(f"       fix: {check['fix']}")
    passed = sum(result.passed(c) for c in result.summaries)
    lines.append(f"{'VERIFIED' if result.ok else 'FAILED'}: {passed}/{len(result.summaries)} checks passed.")
    return lines


def expected_cron_jobs(migrations: list[Migration]) -> list[str]:
    return sorted({m.group(1).replace("''", "'") for mig in migrations for m in _CRON_JOB.finditer(mig.sql)})


def verify(url: str, migrations: list[Migration], exposed: tuple[str, ...], health_url: str | None = None,
           health_timeout: float = 10.0, declared_jobs: dict[str, dict] | None = None,
           production: bool = False) -> Verification:
    """`declared_jobs`: the stack's pg_cron jobs (supagate/ops/cron.py stack_jobs), compared
    with cron.job on schedule, command and active, not only on their names."""
    catalog = analyse(migrations, exposed).catalog
    tables = sorted(r.qualified for r in catalog.relations.values() if r.kind == "table")
    policies = sorted((r.qualified, p) for r in catalog.relations.values() for p in r.policies)
    result = Verification()
    params = {"exposed": list(exposed), "platform": list(PLATFORM_SCHEMAS)}
    with connect(url) as conn:
        _migrations_applied(result, conn, migrations)
        _tables_present(result, conn, tables, pending=not result.passed("migrations-applied"))
        _rls_everywhere(result, conn, exposed, params)
        _policies_present(result, conn, policies)
        _matviews_hidden(result, conn, params)
        _cron_jobs(result, conn, sorted({*expected_cron_jobs(migrations), *(declared_jobs or {})}),
                   declared_jobs or {})
        if production:
            _seeds_absent(result, conn)
    if health_url:
        _health(result, health_url, health_timeout)
    return result


def _rows(conn, query: str, params=None) -> list:
    return [r[0] for r in conn.execute(query, params).fetchall()]


def _migrations_applied(result: Verification, conn, migrations: list[Migration]) -> None:
    applied = read_history(conn)
    missing = [m.filename for m in migrations if m.version not in applied]
    result.add("migrations-applied", f"{len(migrations) - len(missing)}/{len(migrations)} migrations recorded as applied"
               + (f"; missing: {', '.join(missing)}" if missing else ""),
               "migrations are not recorded as applied" if missing else None,
               "Run `supagate migrate` (or `pulumi up`) against this database.", missing)


def _tables_present(result: Verification, conn, tables: list[str], pending: bool = False) -> None:
    present = set(_rows(conn, "SELECT n.nspname || '.' || c.relname FROM pg_class c "
                              "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')"))
    missing = [t for t in tables if t not in present]
    result.add("tables-present", f"{len(tables) - len(missing)}/{len(tables)} tables present"
               + (f"; missing: {', '.join(missing)}" if missing else ""),
               "tables the migrations create are missing" if missing else None,
               "Migrations are pending: apply them first (`supagate migrate --stack <stack>` or `pulumi up`)."
               if pending else "A table the migrations create is gone: restore it from the pre-migration snapshot "
               "or re-run the migration that creates it.", missing)


def _rls_everywhere(result: Verification, conn, exposed: tuple[str, ...], params: dict) -> None:
    total = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%(exposed)s)", params).fetchone()[0]
    off = sorted(_rows(conn, rls_missing.CATALOG_QUERY, params))
    result.add("rls-enabled", f"RLS on {total - len(off)}/{total} tables in {', '.join(exposed)}"
               + (f"; off on: {', '.join(off)}" if off else ""),
               "tables in exposed schemas without row level security" if off else None,
               (f"ALTER TABLE {off[0]} ENABLE ROW LEVEL SECURITY; (someone switched it off outside "
                "the migrations: find out who, then add the ALTER as a migration)") if off else "", off)


def _policies_present(result: Verification, conn, policies: list[tuple[str, str]]) -> None:
    present = {(f"{s}.{t}", p) for s, t, p in conn.execute(
        "SELECT schemaname, tablename, policyname FROM pg_policies").fetchall()}
    missing = [f'{table} "{name}"' for table, name in policies if (table, name) not in present]
    result.add("policies-present", f"{len(policies) - len(missing)}/{len(policies)} policies present"
               + (f"; missing: {', '.join(missing)}" if missing else ""),
               "policies the migrations create are gone" if missing else None,
               "A policy the migrations create was dropped: re-create it in a new migration.", missing)


def _matviews_hidden(result: Verification, conn, params: dict) -> None:
    readable = sorted(_rows(conn, matview_exposed.CATALOG_QUERY, params))
    total = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE c.relkind = 'm' AND n.nspname = ANY(%(exposed)s)", params).fetchone()[0]
    result.add("matviews-hidden", f"{total - len(readable)}/{total} materialized views in exposed schemas hidden "
               "from anon and authenticated" + (f"; readable: {', '.join(readable)}" if readable else ""),
               "materialized views readable by the API roles" if readable else None,
               f"REVOKE ALL ON {readable[0]} FROM anon, authenticated;" if readable else "", readable)


def _cron_jobs(result: Verification, conn, expected: list[str], declared: dict[str, dict]) -> None:
    if not expected:
        result.add("cron-jobs", "no pg_cron jobs expected")
        return
    if not conn.execute("SELECT to_regclass('cron.job') IS NOT NULL").fetchone()[0]:
        result.add("cron-jobs", f"pg_cron is not installed; expected jobs: {', '.join(expected)}",
                   "pg_cron is not installed", "Enable pg_cron (Database > Extensions) and re-run the migration "
                   "that schedules them.", expected)
        return
    live = {name: {"schedule": schedule, "command": command, "active": active} for name, schedule, command, active
            in conn.execute("SELECT jobname, schedule, command, active FROM cron.job").fetchall()}
    missing = [j for j in expected if not live.get(j, {}).get("active")]
    drift = [f"{name}: {key} is {live[name][key]!r}, the stack says {want[key]!r}"
             for name, want in sorted(declared.items()) if name in live and name not in missing
             for key in ("schedule", "command", "active") if live[name][key] != want[key]]
    problems = missing + drift
    result.add("cron-jobs", f"{len(expected) - len(missing)}/{len(expected)} scheduled jobs active"
               + (f"; missing or inactive: {', '.join(missing)}" if missing else "")
               + (f"; changed outside the stack: {'; '.join(drift)}" if drift else ""),
               "scheduled jobs missing, inactive or changed" if problems else None,
               "Run `pulumi up` (it puts the stack's jobs back), or re-schedule a migration's job in a new migration.",
               problems)


def _seeds_absent(result: Verification, conn) -> None:
    """Someone ran `supabase db push --include-seed` against production: the CLI records it."""
    from supagate.ops.seeds import recorded

    seeded = sorted(recorded(conn))
    result.add("seeds-absent", "no seed files recorded" if not seeded else f"seed files recorded: {', '.join(seeded)}",
               "seed data was loaded into production" if seeded else None,
               "Remove the seeded rows, then delete their rows from supabase_migrations.seed_files; never pass "
               "--include-seed against production.", seeded)


def _health(result: Verification, url: str, timeout: float) -> None:
    import httpx

    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        result.add("health-check", f"{url} did not answer: {type(exc).__name__}", "the health check did not answer",
                   "Check the function is deployed and its logs (Edge Functions > health-check).")
        return
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = {}
    body = body if isinstance(body, dict) else {}
    # Fail closed: a 200 without a readable healthy status is not a healthy answer.
    healthy = response.status_code == 200 and body.get("status") in ("ok", "healthy")
    problems = body.get("problems")
    result.add("health-check", f"{url} answered HTTP {response.status_code}"
               + (f": {', '.join(map(str, problems))}" if problems else "")
               + ("" if "status" in body else "; no status in its answer"),
               None if healthy else "the health check reports problems",
               "Read the problems above; the health workflow opens an issue for them.")
