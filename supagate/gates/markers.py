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


def _in_line_comments(sql: str) -> list[tuple[int, int]]:
    """The character spans of the `--` comments PostgreSQL's own lexer finds: a marker inside
    a string literal or a /* */ comment is text a reviewer does not read as a marker (a red
    team approved a DELETE with `'\n-- gate:approve ...'` in its WHERE). Text the lexer
    cannot read has no comments: its markers count for nothing."""
    import pglast

    try:
        tokens = pglast.parser.scan(sql)
    except pglast.parser.ParseError:
        return []
    return [(t.start, t.end + 1) for t in tokens if t.name == "SQL_COMMENT"]  # pglast counts characters


def _commented(matches, comments: list[tuple[int, int]]):
    return [m for m in matches if any(start <= m.start() and m.end() <= end for start, end in comments)]


def read_markers(sql: str, where: str) -> Markers:
    markers = Markers()
    if "gate:" not in sql:
        return markers
    comments = _in_line_comments(sql)
    for match in _commented(_ALLOW.finditer(sql), comments):
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
    for match in _commented(_APPROVE.finditer(sql), comments):
        line = sql.count("\n", 0, match.start()) + 1
        reason = match.group(1).strip()
        if not reason:
            raise GateInputError(f"{where}:{line}: `gate:approve` has no reason\n"
                                 "Say who approved what, e.g. `-- gate:approve drop legacy_steps, "
                                 "backed up in #412 (reviewed by @ana)`.")
        markers.approve = markers.approve or (line, reason)
    return markers
