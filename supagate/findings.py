"""The one result shape: a Finding names a rule, how strictly it is enforced, the object,
where it comes from (file and line when known), what is wrong and the exact fix.

`supagate check`, `verify`, the pre-deploy checks, the pack's checks and the pack host
all report Findings; each command renders them to its own JSON contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

MANDATORY, ADVISORY = "mandatory", "advisory"


@dataclass(frozen=True)
class Finding:
    rule: str
    object: str
    message: str
    fix: str = ""
    file: str | None = None
    line: int | None = None
    # For other tools' findings: the level their tool gave (ERROR/WARN/INFO).
    level: str | None = None
    enforcement: str = ADVISORY
    allowed: str | None = None  # the reason of a `-- gate:allow` that covers it
    advisory_reason: str | None = None  # why the rule itself makes this one advisory
    source: str = "static"  # static, shadow, advisor, squawk, history, verify, preflight, pack

    def to_json(self) -> dict:
        document = {"rule": self.rule, "enforcement": self.enforcement, "object": self.object,
                    "file": self.file, "line": self.line, "message": self.message, "fix": self.fix}
        if self.allowed is not None:
            document["allowed"] = self.allowed
        document["source"] = self.source
        return document

    def sentence(self) -> str:
        """The message and its fix as one line (what a policy violation carries)."""
        return f"{self.message} Fix: {self.fix}" if self.fix else self.message


def blocked(findings: Iterable[Finding]) -> bool:
    return any(f.enforcement == MANDATORY for f in findings)


def render_by_file(findings: list[Finding]) -> list[str]:
    """Findings grouped by file (in the order given), the fix under each."""
    lines: list[str] = []
    current = object()
    for f in findings:
        if f.file != current:
            current = f.file
            lines.append("")
            lines.append(f.file or "(the migrated database; no single statement)")
        label = "MANDATORY" if f.enforcement == MANDATORY else "advisory "
        at = f" line {f.line}" if f.line else ""
        lines.append(f"  {label} {f.rule}: {f.object}{at}")
        lines.append(f"    {f.message}")
        lines.append(f"    fix: {f.fix}")
        if f.allowed:
            lines.append(f"    allowed by gate:allow: {f.allowed}")
    return lines
