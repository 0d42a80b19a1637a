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

The probes live in probes.py, the advisors in advisors.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import psycopg

from supagate.errors import Failed
from supagate.findings import Finding
from supagate.gates.registry import RULES
from supagate.gates.rules import migration_failed, shadow_unsupported
from supagate.gates.shadow.gaps import GapRule
from supagate.gates.rules.function_search_path import PLATFORM_SCHEMAS
from supagate.migrations import runner
from supagate.migrations.files import Migration
from supagate.gates.shadow.advisors import advisor_findings, run_advisors
from supagate.gates.shadow.probes import isolation_probes
from supagate.postgres.connect import connect


class ShadowError(Failed):
    """The shadow database could not be used (not a migration's fault)."""


@dataclass
class ShadowResult:
    findings: list[Finding] = field(default_factory=list)
    applied: int = 0
    gaps: int = 0  # statements skipped as shadow-unsupported
    complete: bool = True  # every migration applied: the catalog can overrule static analysis
    catalog: set = field(default_factory=set)  # (rule, object) the catalog queries found
    probed_tables: int = 0
    advisor_lints: int = 0


def run_shadow(migrations: list[Migration], exposed: tuple[str, ...], db_url: str | None = None,
               supabase_cli: str | None = None, progress: Callable[[str], None] = lambda _: None) -> ShadowResult:
    if db_url is None:
        from supagate.postgres.embedded import EmbeddedPostgres

        progress("Starting the shadow database (a throwaway PostgreSQL 15)...")
        with EmbeddedPostgres(exposed_schemas=exposed) as pg:
            return _check(pg.url, migrations, exposed, supabase_cli, progress)
    _prepare_given(db_url, exposed)
    return _check(db_url, migrations, exposed, supabase_cli, progress)


def _prepare_given(url: str, exposed: tuple[str, ...]) -> None:
    from supagate.postgres.embedded import prepare_supabase_database

    with connect(url) as conn:
        applied = conn.execute(
            "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL").fetchone()[0]
        if applied and conn.execute("SELECT count(*) FROM supabase_migrations.schema_migrations").fetchone()[0]:
            raise ShadowError("the shadow database given with --db-url already has migrations applied\n"
                              "Pass an empty database (it is changed), or leave out --db-url to use a "
                              "throwaway one.")
        has_auth = conn.execute("SELECT to_regclass('auth.users') IS NOT NULL").fetchone()[0]
    if not has_auth:
        prepare_supabase_database(url, exposed)


def _check(url: str, migrations: list[Migration], exposed: tuple[str, ...], supabase_cli: str | None,
           progress) -> ShadowResult:
    result = ShadowResult()
    progress(f"Applying {len(migrations)} migration(s) to the shadow database...")
    try:
        applied = runner.migrate(url, migrations, runner.Options(include_all=True, lock_wait=5),
                                 progress=lambda _: None, gaps=GapRule())
        result.applied = len(applied.applied)
        result.gaps = len(applied.gaps)
        result.findings += [shadow_unsupported.finding(g.file, g.line, g.text, g.reason) for g in applied.gaps]
    except runner.MigrationError as exc:
        result.findings.append(migration_failed.finding(exc))
        result.complete = False
        return result  # later checks would describe a half-built schema
    progress("Checking the catalog and probing row level security as anon and authenticated...")
    with connect(url) as conn:
        found = catalog_findings(conn, exposed)
        result.catalog = {(f.rule, f.object) for f in found}
        result.findings += found
        probe_findings, result.probed_tables = isolation_probes(conn, url, exposed)
        result.findings += probe_findings
    if supabase_cli:
        progress("Running Supabase's advisors (supabase db advisors)...")
        lints = run_advisors(supabase_cli, url)
        result.advisor_lints = len(lints)
        result.findings += advisor_findings(lints, result.findings)
    return result


def catalog_findings(conn: psycopg.Connection, exposed: tuple[str, ...]) -> list[Finding]:
    """Each rule's pg_catalog question, asked of the migrated database."""
    params = {"exposed": list(exposed), "platform": list(PLATFORM_SCHEMAS)}
    found = []
    for rule in RULES.values():
        if rule.catalog_query is not None:
            found += [f for row in conn.execute(rule.catalog_query, params).fetchall()
                      if (f := rule.from_catalog(*row)) is not None]
    return found
