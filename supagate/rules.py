"""Gate rules and findings: what "unsafe" means, how strictly each stack enforces it, and
how an inline exemption is honoured (reported, never silent).

Every analyser (static, shadow database, Supabase's advisors, squawk, history) produces
`Finding`s; `finalize` applies the stack's enforcement and the files' exemptions, merges
duplicates and sorts them by file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

MANDATORY, ADVISORY = "mandatory", "advisory"


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    prod: str = MANDATORY
    staging: str = ADVISORY


RULES: dict[str, Rule] = {r.id: r for r in (
    Rule("rls-missing", "a table in an exposed schema ends the migration set without RLS"),
    Rule("rls-disabled", "DISABLE ROW LEVEL SECURITY on a table in an exposed schema"),
    Rule("rls-no-policy", "RLS on but no policy (deny-all: safe, usually a mistake)", prod=ADVISORY),
    Rule("policy-permissive-write", "an INSERT/UPDATE/DELETE/ALL policy for anon or PUBLIC that is true"),
    Rule("policy-public-read-personal", "a SELECT policy that is true for anon/PUBLIC on personal data"),
    Rule("policy-user-metadata", "a policy that trusts user_metadata, which users can edit"),
    Rule("view-security-definer", "a view in an exposed schema without security_invoker = true"),
    Rule("view-auth-users", "a view in an exposed schema that reads auth.users"),
    Rule("matview-exposed", "a materialized view in an exposed schema readable by anon/authenticated"),
    Rule("function-search-path", "a SECURITY DEFINER function without a pinned search_path"),
    Rule("destructive-unapproved", "a destructive statement without `-- gate:approve` and a down script"),
    Rule("index-not-concurrent", "CREATE INDEX without CONCURRENTLY on a table of an earlier migration"),
    Rule("migration-edited", "an applied migration whose file changed"),
    Rule("migration-out-of-order", "a new migration older than the newest applied one"),
    Rule("not-promoted", "a prod migration that staging has not applied with the same checksum"),
    # Produced by the shadow database.
    Rule("migration-failed", "a migration that fails to apply to a fresh database"),
    Rule("rls-isolation-leak", "a user reaches another user's rows, or anon sees personal rows"),
    Rule("probe-incomplete", "an isolation probe could not seed rows for a table", prod=ADVISORY),
)}
# Rules from other tools are namespaced: `advisor/<lint name>`, `squawk/<rule name>`.
EXTERNAL_PREFIXES = ("advisor/", "squawk/")

_ALLOW = re.compile(r"--\s*gate:allow\b[ \t]*(\S*)[ \t]*(.*)$", re.MULTILINE)
_APPROVE = re.compile(r"--\s*gate:approve\b[ \t]*(.*)$", re.MULTILINE)


class GateInputError(ValueError):
    """A gate marker that cannot be honoured; names the file, line and fix."""


@dataclass(frozen=True)
class Finding:
    rule: str
    object: str
    message: str
    fix: str
    file: str | None = None
    line: int | None = None
    # For external tools' findings: the level their tool gave (ERROR/WARN/INFO).
    level: str | None = None
    # Filled by finalize().
    enforcement: str = ADVISORY
    allowed: str | None = None  # the reason of a `-- gate:allow` that covers it
    source: str = "static"  # static, shadow, advisor, squawk, history

    def to_json(self) -> dict:
        document = {"rule": self.rule, "enforcement": self.enforcement, "object": self.object,
                    "file": self.file, "line": self.line, "message": self.message, "fix": self.fix}
        if self.allowed is not None:
            document["allowed"] = self.allowed
        document["source"] = self.source
        return document


@dataclass
class Markers:
    """The `-- gate:allow` and `-- gate:approve` comments of one migration file."""
    allow: list[tuple[int, str, str]] = field(default_factory=list)  # (line, rule, reason)
    approve: tuple[int, str] | None = None

    def allowed(self, rule: str, line: int | None) -> str | None:
        """The reason of the nearest `gate:allow <rule>` at or above `line`: a comment above a
        statement covers it, one in the file's header covers the whole file."""
        reasons = [(at, reason) for at, r, reason in self.allow if r == rule and at <= (line or 0)]
        return max(reasons)[1] if reasons else None


def read_markers(sql: str, where: str) -> Markers:
    markers = Markers()
    for match in _ALLOW.finditer(sql):
        line = sql.count("\n", 0, match.start()) + 1
        rule, reason = match.group(1), match.group(2).strip()
        if rule not in RULES and not rule.startswith(EXTERNAL_PREFIXES):
            raise GateInputError(
                f"{where}:{line}: `gate:allow {rule}` names no gate rule\n"
                f"Use one of: {', '.join(RULES)} (or advisor/<lint>, squawk/<rule>).")
        if not reason:
            raise GateInputError(f"{where}:{line}: `gate:allow {rule}` has no reason\n"
                                 f"Say why, e.g. `-- gate:allow {rule} read by the service role only`.")
        markers.allow.append((line, rule, reason))
    for match in _APPROVE.finditer(sql):
        line = sql.count("\n", 0, match.start()) + 1
        reason = match.group(1).strip()
        if not reason:
            raise GateInputError(f"{where}:{line}: `gate:approve` has no reason\n"
                                 "Say who approved what, e.g. `-- gate:approve drop legacy_steps, "
                                 "backed up in #412 (reviewed by @ana)`.")
        markers.approve = markers.approve or (line, reason)
    return markers


def enforcement_for(finding: Finding, stack: str) -> str:
    rule = RULES.get(finding.rule)
    if rule is not None:
        return rule.prod if stack == "prod" else rule.staging
    if finding.rule.startswith("advisor/") and stack == "prod" and finding.level == "ERROR":
        return MANDATORY
    return ADVISORY


def finalize(findings: list[Finding], stack: str, markers: dict[str, Markers]) -> list[Finding]:
    """Enforcement per stack, exemptions from the file's markers, duplicates merged."""
    done: dict[tuple, Finding] = {}
    for finding in findings:
        enforcement = enforcement_for(finding, stack)
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


def blocked(findings: list[Finding]) -> bool:
    return any(f.enforcement == MANDATORY for f in findings)
