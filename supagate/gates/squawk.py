"""Lock-safety lints from squawk (PyPI `squawk-cli`, pinned), mapped into findings.

Style rules are off (they are opinions, not risks), and so are the timeout rules: the
engine sets lock_timeout and statement_timeout on every file. Rules that say what one of
our gate rules says (drops, type changes, non-concurrent indexes) are left to ours, which
also know about approvals. Everything else squawk reports is advisory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from supagate.migrations.files import Migration
from supagate.findings import Finding
from supagate.errors import Failed
from supagate.tools import python_tool

STYLE_RULES = ("prefer-bigint-over-int", "prefer-bigint-over-smallint", "prefer-identity", "prefer-text-field",
               "prefer-timestamptz", "prefer-robust-stmts", "ban-char-field", "require-lock-timeout",
               "require-statement-timeout", "require-timeout-settings")
COVERED_BY_OUR_RULES = ("ban-drop-column", "ban-drop-table", "changing-column-type",
                        "require-concurrent-index-creation")


class SquawkError(Failed):
    pass


def squawk_path() -> str:
    found = python_tool("squawk")
    if not found:
        raise SquawkError("failed to run squawk: it is not installed\n"
                              "Run scripts/setup (squawk-cli is a pinned dependency).")
    return found


def lock_findings(migrations: list[Migration]) -> list[Finding]:
    findings = []
    # Transactional files run inside a transaction, the others do not: squawk must know.
    for in_transaction in (True, False):
        paths = [m.path for m in migrations if m.path and m.transactional == in_transaction]
        if paths:
            findings += _run(paths, in_transaction)
    return findings


def _run(paths: list[str], in_transaction: bool) -> list[Finding]:
    args = [squawk_path(), "--reporter", "json", "--pg-version", "15.0",
            "--exclude", ",".join(STYLE_RULES + COVERED_BY_OUR_RULES),
            "--assume-in-transaction" if in_transaction else "--no-assume-in-transaction", *paths]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    try:
        reports = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        raise SquawkError(f"failed to read squawk's output (exit {done.returncode}): "
                              f"{done.stderr.strip()[:300]}\nCheck squawk-cli is the pinned version.") from None
    return [Finding(rule=f"squawk/{r['rule_name']}", object=Path(r["file"]).name, file=r["file"],
                    line=int(r["line"]) + 1,  # squawk counts lines from 0
                    message=f"{r['file']}:{int(r['line']) + 1} {r['message'].rstrip('.')}.",
                    fix=r.get("help") or "See https://squawkhq.com/docs/rules.", level=r.get("level"),
                    source="squawk")
            for r in reports]
