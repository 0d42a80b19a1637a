"""`supagate check`: every gate over one migration set, merged into one verdict.

Static analysis says where; the shadow database says what really happens (dynamic SQL,
renames, functions); squawk says what locks; the history rules compare with what a live
database or staging applied. A mandatory finding from any of them blocks."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from . import static_analysis
from .engine import read_history
from .history_rules import applied_checksums, history_findings, promotion_findings
from .lock_safety import lock_findings
from .migrations import Migration
from .rules import Finding, blocked, finalize
from .shadow import run_shadow


@dataclass
class CheckOptions:
    stack: str = "prod"
    exposed: tuple[str, ...] = ("public", "graphql_public")
    shadow: bool = True
    shadow_db_url: str | None = None  # a database to use as the shadow; default: a throwaway one
    advisors: bool = True
    supabase_cli: str | None = None
    target_db_url: str | None = None  # read its history for migration-edited / out-of-order
    staging_db_url: str | None = None  # read staging's history for not-promoted


@dataclass
class Report:
    stack: str
    findings: list[Finding]
    statements: int = 0
    probed_tables: int = 0

    @property
    def blocked(self) -> bool:
        return blocked(self.findings)

    def to_json(self) -> dict:
        return {"blocked": self.blocked, "findings": [f.to_json() for f in self.findings]}


def check(migrations: list[Migration], options: CheckOptions,
          progress: Callable[[str], None] = lambda _: None) -> Report:
    timings: dict[str, float] = {}
    started = time.monotonic()
    analysis = static_analysis.analyse(migrations, options.exposed)
    findings = list(analysis.findings)
    timings["static"] = time.monotonic() - started
    progress(f"Static analysis: {analysis.statements} statements in {len(migrations)} files, "
             f"{timings['static']:.2f} s")

    started = time.monotonic()
    findings += lock_findings(migrations)
    timings["squawk"] = time.monotonic() - started

    probed = 0
    if options.shadow:
        started = time.monotonic()
        shadow = run_shadow(migrations, options.exposed, options.shadow_db_url,
                            options.supabase_cli if options.advisors else None, progress)
        findings += [_locate(f, analysis.catalog) for f in shadow.findings]
        probed = shadow.probed_tables
        timings["shadow"] = time.monotonic() - started
        progress(f"Shadow database: {shadow.applied} migrations applied, {shadow.probed_tables} tables "
                 f"probed, {shadow.advisor_lints} advisor lints, {timings['shadow']:.2f} s")

    if options.target_db_url:
        findings += history_findings(migrations, _checksums(options.target_db_url, migrations), "the target database")
    if options.staging_db_url and options.stack == "prod":
        findings += promotion_findings(migrations, _checksums(options.staging_db_url, migrations), "staging")
    return Report(stack=options.stack, findings=finalize(findings, options.stack, analysis.markers),
                  statements=analysis.statements, probed_tables=probed)


def _checksums(url: str, migrations: list[Migration]) -> dict[str, str]:
    from .db import connect

    with connect(url) as conn:  # read only: nothing is written to a database we only compare with
        return applied_checksums(read_history(conn), migrations)


def _locate(finding: Finding, catalog: static_analysis.Catalog) -> Finding:
    """Point a shadow finding at the statement that created its object, when static
    analysis knows it, so exemptions and readers find the file."""
    table = finding.object.split(" ", 1)[0]
    if finding.rule == "rls-missing" and table in catalog.relations and catalog.relations[table].rls:
        finding = replace(
            finding, rule="rls-disabled",
            message=f"Table {table} has row level security in the SQL as written but not in the migrated "
                    "database: dynamic SQL (a DO block or a function) turned it off.",
            fix=f"Find the EXECUTE that disables it and remove it, or re-enable it after: "
                f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;")
    if finding.file is not None:
        return finding
    where = None
    if " policy " in finding.object and table in catalog.relations:
        policy = catalog.relations[table].policies.get(finding.object.split('"')[1])
        where = policy.where if policy else None
    elif table in catalog.relations:
        where = catalog.relations[table].where
    elif table in catalog.functions:
        where = catalog.functions[table].where
    return replace(finding, file=where.file, line=where.line) if where else finding


def render_text(report: Report, root: Path | None = None) -> str:
    """Findings grouped by file, the fix under each, then a one-line verdict."""
    lines: list[str] = []
    current = object()
    for f in report.findings:
        if f.file != current:
            current = f.file
            lines.append("")
            lines.append(f.file or "(the migrated database; no single statement)")
        label = "MANDATORY" if f.enforcement == "mandatory" else "advisory "
        at = f" line {f.line}" if f.line else ""
        lines.append(f"  {label} {f.rule}: {f.object}{at}")
        lines.append(f"    {f.message}")
        lines.append(f"    fix: {f.fix}")
        if f.allowed:
            lines.append(f"    allowed by gate:allow: {f.allowed}")
    mandatory = sum(f.enforcement == "mandatory" for f in report.findings)
    advisory = len(report.findings) - mandatory
    verdict = "BLOCKED" if report.blocked else "PASS"
    lines.append("")
    lines.append(f"{verdict}: {mandatory} mandatory, {advisory} advisory finding(s) for stack "
                 f"{report.stack} ({report.statements} statements, {report.probed_tables} table(s) probed).")
    return "\n".join(lines).lstrip("\n")
