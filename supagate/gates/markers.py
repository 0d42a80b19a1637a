"""Inline markers in migration files: `-- gate:allow <rule> <reason>` exempts what is
below it (reported as allowed, never silent); `-- gate:approve <reason>` approves a
destructive change (with a down script)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from supagate.errors import BadInput
from supagate.gates.registry import RULES, known_rule

_ALLOW = re.compile(r"--\s*gate:allow\b[ \t]*(\S*)[ \t]*(.*)$", re.MULTILINE)
_APPROVE = re.compile(r"--\s*gate:approve\b[ \t]*(.*)$", re.MULTILINE)


class GateInputError(BadInput):
    """A gate marker that cannot be honoured; names the file, line and fix."""


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
        if not known_rule(rule):
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
