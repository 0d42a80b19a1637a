"""`supagate check`: every gate over one migration set, merged into one verdict.

Static analysis says where; the shadow database says what really happens (dynamic SQL,
renames, functions); squawk says what locks; the history rules compare with what a live
database or staging applied. A mandatory finding from any of them blocks."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from typing import Callable

from supagate.findings import ADVISORY, MANDATORY, Finding, blocked, render_by_file
from supagate.gates.catalog import replay
from supagate.gates.catalog.model import DEFAULT_EXPOSED_SCHEMAS
from supagate.gates.markers import Markers
from supagate.gates.registry import PER_STATEMENT_RULES, RULES, enforcement_for
from supagate.gates.rules import destructive_unapproved, rls_disabled
from supagate.migrations.files import Migration


@dataclass
class CheckOptions:
    stack: str = "prod"
    tier: str = "production"  # whose enforcement applies (the stack's settings say)
    exposed: tuple[str, ...] = DEFAULT_EXPOSED_SCHEMAS
    shadow: bool = True
    shadow_db_url: str | None = None  # a database to use as the shadow; default: a throwaway one
    advisors: bool = True
    supabase_cli: str | None = None
    target_db_url: str | None = None  # read its history for migration-edited / out-of-order
    staging_db_url: str | None = None  # read staging's history for not-promoted
    baseline: str = ""  # migrations at or before this version are history: no per-statement rules


@dataclass
class Report:
    stack: str
    findings: list[Finding]
    tier: str = "production"
    statements: int = 0
    probed_tables: int = 0

    @property
    def blocked(self) -> bool:
        return blocked(self.findings)

    def to_json(self) -> dict:
        return {"blocked": self.blocked, "findings": [f.to_json() for f in self.findings]}


def run_gates(migrations: list[Migration], options: CheckOptions,
              progress: Callable[[str], None] = lambda _: None) -> Report:
    """The gates, overlapped where they do not depend on each other: the shadow cluster
    boots and squawk runs while the static analysis parses; the advisors run beside the
    probes (shadow/database.py). Findings come out in the same order as run one by one
    (tests/gates/golden.py holds them to it)."""
    from concurrent.futures import ThreadPoolExecutor

    from supagate.gates.squawk import lock_findings

    with contextlib.ExitStack() as stack:
        shadow_db = None
        if options.shadow:
            from supagate.gates.shadow.database import ShadowDatabase

            shadow_db = stack.enter_context(ShadowDatabase(options.exposed, options.shadow_db_url, progress))
        locks = stack.enter_context(ThreadPoolExecutor(max_workers=1)).submit(lock_findings, migrations)

        started = time.monotonic()
        analysis = replay.analyse(migrations, options.exposed)
        findings = list(analysis.findings)
        progress(f"Static analysis: {analysis.statements} statements in {len(migrations)} files, "
                 f"{time.monotonic() - started:.2f} s")
        findings += locks.result()

        probed = 0
        shadow = None
        if shadow_db is not None:
            started = time.monotonic()
            shadow = shadow_db.check(migrations, options.supabase_cli if options.advisors else None)
            findings += [_locate(f, analysis.catalog) for f in shadow.findings]
            probed = shadow.probed_tables
            progress(f"Shadow database: {shadow.applied} migrations applied, {shadow.probed_tables} tables "
                     f"probed, {shadow.advisor_lints} advisor lints, {time.monotonic() - started:.2f} s")

    if shadow is not None and shadow.complete and not shadow.gaps:
        findings = [f for f in findings if _confirmed(f, shadow.catalog)]
    if shadow is not None:
        findings = _judged_by_the_catalog_diff(findings, shadow)
    applied: set[str] = set()
    if options.target_db_url or options.staging_db_url:
        from supagate.gates.history import database_checksums, history_findings, promotion_findings

        if options.target_db_url:
            target = database_checksums(options.target_db_url, migrations)
            applied = set(target)
            findings += history_findings(migrations, target, "the target database")
        if options.staging_db_url and options.tier == "production":
            findings += promotion_findings(migrations, database_checksums(options.staging_db_url, migrations),
                                           "staging")
    history = {m.path or m.filename for m in migrations
               if m.version in applied or (options.baseline and m.version <= options.baseline)}
    findings = [f for f in findings if not (f.rule in PER_STATEMENT_RULES and f.file in history)]
    return Report(stack=options.stack, tier=options.tier, findings=finalize(findings, options.tier, analysis.markers),
                  statements=analysis.statements, probed_tables=probed)


CONFIRMED_BY = {"rls-disabled": "rls-missing"}  # a table RLS was switched off on has none in the catalog


def _confirmed(finding: Finding, catalog: set[tuple]) -> bool:
    """A static finding of a rule the migrated catalog can answer stands only if the catalog
    says the same (a later DO block may have fixed what a statement broke)."""
    rule = RULES.get(CONFIRMED_BY.get(finding.rule, finding.rule))
    if finding.source != "static" or rule is None or rule.catalog_query is None:
        return True
    return (rule.id, finding.object) in catalog


def _judged_by_the_catalog_diff(findings: list[Finding], shadow) -> list[Finding]:
    """What the shadow saw decides where it can: a static destructive finding in a file the
    shadow ran and observed in full is dropped when the catalog diff shows the loss did not
    happen (`drop table if exists` of nothing, `int` to `bigint`); rows removed and code the
    shadow may not have run in full always stand (destructive_unapproved.evidence). One the
    static analysis also found is reported once, at the static line."""
    static = {(f.file, f.object) for f in findings if f.rule == destructive_unapproved.ID and f.source == "static"}
    kept = []
    for f in findings:
        if f.rule == destructive_unapproved.ID:
            if f.source == "static" and f.file in shadow.observed:
                evidence = destructive_unapproved.evidence(f)
                if evidence == "catalog" and (f.file, f.object) not in shadow.losses:
                    continue
                if evidence == "type" and (f.file, f.object) in shadow.widened:
                    continue
            if f.source == "shadow" and (f.file, f.object) in static:
                continue
        kept.append(f)
    return kept


def finalize(findings: list[Finding], tier: str, markers: dict[str, Markers]) -> list[Finding]:
    """Enforcement per tier, exemptions from the file's markers, duplicates merged."""
    done: dict[tuple, Finding] = {}
    for finding in findings:
        enforcement = enforcement_for(finding, tier)
        file_markers = markers.get(finding.file or "")
        allowed = file_markers.allowed(finding.rule, finding.line) if file_markers else None
        if allowed is not None or finding.advisory_reason is not None:
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


def render_text(report: Report, verbose: bool = False, per_rule: int = 3) -> str:
    """Mandatory findings first, grouped by file with the fix under each; then advisory ones,
    at most `per_rule` of each rule unless verbose; then a per-rule summary and the verdict."""
    mandatory = [f for f in report.findings if f.enforcement == MANDATORY]
    advisory: dict[str, list[Finding]] = {}
    for f in report.findings:
        if f.enforcement != MANDATORY:
            advisory.setdefault(f.rule, []).append(f)
    shown = [f for items in advisory.values() for f in (items if verbose else items[:per_rule])]
    lines = render_by_file(mandatory)
    if shown:
        lines += ["", "Advisory:"] + render_by_file(sorted(shown, key=lambda f: (f.file or "~", f.line or 0, f.rule)))
    counts: dict[str, list[int]] = {}
    for f in report.findings:
        counts.setdefault(f.rule, [0, 0])[f.enforcement != MANDATORY] += 1
    if counts:
        lines += ["", "By rule:"]
        for rule, (m, a) in sorted(counts.items(), key=lambda item: (-item[1][0], item[0])):
            hidden = a - len([f for f in shown if f.rule == rule])
            lines.append(f"  {rule}: {m} mandatory, {a} advisory"
                         + (f" ({hidden} more not shown; --verbose lists them)" if hidden else ""))
    verdict = "BLOCKED" if report.blocked else "PASS"
    lines.append("")
    lines.append(f"{verdict}: {len(mandatory)} mandatory, {len(report.findings) - len(mandatory)} advisory finding(s) "
                 f"for stack {report.stack}, tier {report.tier} ({report.statements} statements, "
                 f"{report.probed_tables} table(s) probed).")
    return "\n".join(lines).lstrip("\n")
