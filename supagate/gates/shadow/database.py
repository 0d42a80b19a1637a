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
from supagate.gates.rules import migration_failed, not_analysed, shadow_unsupported
from supagate.gates.shadow.gaps import GapRule
from supagate.gates.rules.function_search_path import PLATFORM_SCHEMAS
from supagate.migrations import runner
from supagate.migrations.files import Migration
from supagate.gates.shadow.advisors import advisor_findings, run_advisors
from supagate.gates.shadow.file_effects import CatalogWatch, runs_code
from supagate.gates.shadow.statement_log import LOG_EVERYTHING
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
    losses: set = field(default_factory=set)  # (file, object) of every loss the catalog diff saw
    widened: set = field(default_factory=set)  # (file, column) whose type changed keeping every value
    observed: set = field(default_factory=set)  # files whose every statement ran and was observed
    probed_tables: int = 0
    advisor_lints: int = 0


class ShadowDatabase:
    """Where the migrations are applied: a throwaway cluster, launched on entry so that it
    boots while the static analysis runs, or the empty database given with --db-url."""

    def __init__(self, exposed: tuple[str, ...], db_url: str | None = None,
                 progress: Callable[[str], None] = lambda _: None) -> None:
        self.exposed = exposed
        self.db_url = db_url
        self.progress = progress
        self._pg = None
        self._url: str | None = None

    def __enter__(self) -> "ShadowDatabase":
        if self.db_url is None:
            from supagate.postgres.embedded import EmbeddedPostgres

            self.progress("Starting the shadow database (a throwaway PostgreSQL 15)...")
            self._pg = EmbeddedPostgres(exposed_schemas=self.exposed).launch()
        return self

    def __exit__(self, *exc) -> None:
        if self._pg is not None:
            self._pg.stop()

    def url(self) -> str:
        """The shadow's URL once it accepts connections."""
        if self._url is None:
            if self._pg is not None:
                self._url = self._pg.ready().url
            else:
                _prepare_given(self.db_url, self.exposed)
                self._url = self.db_url
        return self._url

    def check(self, migrations: list[Migration], supabase_cli: str | None = None) -> ShadowResult:
        return _check(self.url(), migrations, self.exposed, supabase_cli, self.progress)


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
    from concurrent.futures import ThreadPoolExecutor

    result = ShadowResult()
    progress(f"Applying {len(migrations)} migration(s) to the shadow database...")
    watch = CatalogWatch()
    try:
        applied = runner.migrate(_logging_everything(url), migrations, runner.Options(include_all=True, lock_wait=5),
                                 progress=lambda _: None, gaps=GapRule(), observe=watch)
        result.applied = len(applied.applied)
        result.gaps = len(applied.gaps)
        with connect(url) as conn:
            watch.close(conn)
            result.findings += [_gap_finding(conn, g) for g in applied.gaps]
    except runner.MigrationError as exc:
        result.findings.append(migration_failed.finding(exc))
        result.complete = False
        applied = None
    result.findings += watch.findings(result, applied.gaps if applied else ())
    if not result.complete:
        return result  # later checks would describe a half-built schema
    progress("Checking the catalog and probing row level security as anon and authenticated...")
    # The advisors (a Node process reading the catalog) run beside the probes: neither
    # changes what the other reads (every probe rolls back; its helper schema is skipped).
    with ThreadPoolExecutor(max_workers=1) as pool:
        lints = pool.submit(run_advisors, supabase_cli, url) if supabase_cli else None
        with connect(url) as conn:
            found = catalog_findings(conn, exposed)
            result.catalog = {(f.rule, f.object) for f in found}
            result.findings += found
            probe_findings, result.probed_tables = isolation_probes(conn, url, exposed)
            result.findings += probe_findings
        if lints is not None:
            progress("Reading Supabase's advisors (supabase db advisors)...")
            done = lints.result()
            result.advisor_lints = len(done)
            result.findings += advisor_findings(done, result.findings)
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


def _gap_finding(conn, gap) -> Finding:
    """A skipped statement that runs code of the app's own is not analysed (it blocks); one
    that only creates or calls what Supabase provides is a gap of ours (advisory)."""
    if runs_code(conn, gap.text):
        return not_analysed.skipped(gap.file, gap.line, gap.text, gap.reason)
    return shadow_unsupported.finding(gap.file, gap.line, gap.text, gap.reason)


def _logging_everything(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    theirs = conninfo_to_dict(url).get("options") or ""
    return make_conninfo(url, options=f"{theirs} {LOG_EVERYTHING}".strip())
