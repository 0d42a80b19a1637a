"""`supagate check`: every gate over one migration set, merged into one verdict.

Static analysis says where; the shadow database says what really happens (dynamic SQL,
renames, functions); squawk says what locks; the history rules compare with what a live
database or staging applied. A mandatory finding from any of them blocks."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

from supagate.findings import ADVISORY, Finding, blocked, render_by_file
from supagate.gates.catalog import replay
from supagate.gates.markers import Markers
from supagate.gates.registry import enforcement_for, tier_of
from supagate.gates.rules import rls_disabled
from supagate.migrations.files import Migration


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


def run_gates(migrations: list[Migration], options: CheckOptions,
              progress: Callable[[str], None] = lambda _: None) -> Report:
    from supagate.gates.squawk import lock_findings

    started = time.monotonic()
    analysis = replay.analyse(migrations, options.exposed)
    findings = list(analysis.findings)
    progress(f"Static analysis: {analysis.statements} statements in {len(migrations)} files, "
             f"{time.monotonic() - started:.2f} s")
    findings += lock_findings(migrations)

    probed = 0
    if options.shadow:
        from supagate.gates.shadow.database import run_shadow

        started = time.monotonic()
        shadow = run_shadow(migrations, options.exposed, options.shadow_db_url,
                            options.supabase_cli if options.advisors else None, progress)
        findings += [_locate(f, analysis.catalog) for f in shadow.findings]
        probed = shadow.probed_tables
        progress(f"Shadow database: {shadow.applied} migrations applied, {shadow.probed_tables} tables "
                 f"probed, {shadow.advisor_lints} advisor lints, {time.monotonic() - started:.2f} s")

    if options.target_db_url or options.staging_db_url:
        from supagate.gates.history import database_checksums, history_findings, promotion_findings

        if options.target_db_url:
            findings += history_findings(migrations, database_checksums(options.target_db_url, migrations),
                                         "the target database")
        if options.staging_db_url and options.stack == "prod":
            findings += promotion_findings(migrations, database_checksums(options.staging_db_url, migrations),
                                           "staging")
    return Report(stack=options.stack, findings=finalize(findings, tier_of(options.stack), analysis.markers),
                  statements=analysis.statements, probed_tables=probed)


def finalize(findings: list[Finding], tier: str, markers: dict[str, Markers]) -> list[Finding]:
    """Enforcement per tier, exemptions from the file's markers, duplicates merged."""
    done: dict[tuple, Finding] = {}
    for finding in findings:
        enforcement = enforcement_for(finding, tier)
        file_markers = markers.get(finding.file or "")
        allowed = file_markers.allowed(finding.rule, finding.line) if file_markers else None
        if allowed is not None:
            enforcement = ADVISORY
        finding = replace(finding, enforcement=enforcement, allowed=allowed)
        key = (finding.rule, finding.object, finding.file, finding.line)
        loose = (finding.rule, finding.object)
        # The same problem seen by static analysis and by the shadow database is one
        # finding; keep the one that says where (static carries file and line).
        previous = done.get(key) or done.get(loose + (None, None))
        if previous is not None:
            if previous.file is None and finding.file is not None:
                del done[(previous.rule, previous.object, None, None)]
            else:
                continue
        if finding.file is None:
            located = next((f for k, f in done.items() if k[:2] == loose), None)
            if located is not None:
                continue
        done[key] = finding
    return sorted(done.values(), key=lambda f: (f.file or "~", f.line or 0, f.rule, f.object))


def _locate(finding: Finding, catalog) -> Finding:
    """Point a shadow finding at the statement that created its object, when static
    analysis knows it, so exemptions and readers find the file."""
    table = finding.object.split(" ", 1)[0]
    if finding.rule == "rls-missing" and table in catalog.relations and catalog.relations[table].rls:
        finding = rls_disabled.dynamic(table, finding)
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


def render_text(report: Report) -> str:
    """Findings grouped by file, the fix under each, then a one-line verdict."""
    lines = render_by_file(report.findings)
    mandatory = sum(f.enforcement == "mandatory" for f in report.findings)
    advisory = len(report.findings) - mandatory
    verdict = "BLOCKED" if report.blocked else "PASS"
    lines.append("")
    lines.append(f"{verdict}: {mandatory} mandatory, {advisory} advisory finding(s) for stack "
                 f"{report.stack} ({report.statements} statements, {report.probed_tables} table(s) probed).")
    return "\n".join(lines).lstrip("\n")
