"""What the check found on every gate case and realistic app, kept in golden_findings.json.

Performance work (issue 16: a cluster copied from a template, the shadow booting during
static analysis, probes over several connections, advisors beside the probes) must not
change a single finding, its order or its wording. The file was written by the sequential
pipeline (commit 31a342f); the tests compare every run with it.

Regenerate only when a finding is meant to change, and review the diff:
    SUPAGATE_UPDATE_GOLDEN=1 uv run pytest tests/gates/test_gate_cases.py tests/gates/test_real_apps.py
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden_findings.json"
_TEMP_FOLDER = re.compile(r"(?:/[^\s/:]+)+/(?=[^\s/:]+\.sql)")  # a message's folder of a .sql file


def summary(findings) -> list[list]:
    """The findings as plain data; files by name (the cases run in temporary folders)."""
    return [[f.rule, f.enforcement, _TEMP_FOLDER.sub("", f.object or ""), Path(f.file).name if f.file else None, f.line, f.allowed,
             _TEMP_FOLDER.sub("", f.message)] for f in findings]


def assert_unchanged(key: str, findings) -> None:
    found = summary(findings)
    stored = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("SUPAGATE_UPDATE_GOLDEN"):
        stored[key] = found
        GOLDEN.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        return
    assert key in stored, f"{key}: no golden findings (SUPAGATE_UPDATE_GOLDEN=1 writes them)"
    assert found == stored[key], f"{key}: the findings changed\nnow:    {found}\nbefore: {stored[key]}"
