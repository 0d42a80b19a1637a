"""Run the app's pgTAP files (supabase/tests/**/*.sql) with psql and read their TAP output.

This is what `supabase test db` does through pg_prove; psql is enough, and reading TAP
here lets the summary name each failing assertion."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from supagate.postgres.connect import libpq_env

_RESULT = re.compile(r"^(not ok|ok) (\d+)(?: - (.*))?$")
_PLAN = re.compile(r"^1\.\.(\d+)$")


@dataclass
class FileResult:
    path: str
    planned: int | None = None
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    diagnostics: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        ran = len(self.passed) + len(self.failed)
        return self.error is None and not self.failed and self.planned == ran


def find_psql() -> str:
    from supagate.postgres.embedded import find_bindir

    try:
        candidate = find_bindir() / "psql"
        if candidate.exists():
            return str(candidate)
    except Exception:
        pass
    found = shutil.which("psql")
    if not found:
        raise FileNotFoundError("failed to run pgTAP: psql not found\nInstall postgresql-client-15.")
    return found


def run_file(url: str, path: Path, psql: str | None = None) -> FileResult:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, **libpq_env(url)}
    proc = subprocess.run(
        [psql or find_psql(), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
        capture_output=True, text=True, env=env, timeout=600)
    result = parse_tap(proc.stdout, str(path))
    if proc.returncode != 0:
        result.error = proc.stderr.strip() or f"psql exited with {proc.returncode}"
    return result


def parse_tap(output: str, path: str) -> FileResult:
    result = FileResult(path=path)
    for raw in output.splitlines():
        line = raw.strip()
        if not line:
            continue
        if (plan := _PLAN.match(line)) is not None:
            result.planned = int(plan.group(1))
        elif (match := _RESULT.match(line)) is not None:
            label = f"{match.group(2)} - {match.group(3) or ''}".rstrip(" -")
            (result.passed if match.group(1) == "ok" else result.failed).append(label)
        elif line.startswith("#"):
            result.diagnostics.append(line)
    return result


def test_files(tests_dir: Path) -> list[Path]:
    return sorted(p for p in Path(tests_dir).rglob("*.sql") if p.is_file())


def run_suite(url: str, tests_dir: Path, skip: tuple[Path, ...] = ()) -> list[FileResult]:
    """Every test file but `skip` (a setup file kept beside the tests)."""
    psql = find_psql()
    skipped = {p.resolve() for p in skip}
    return [run_file(url, path, psql) for path in test_files(tests_dir) if path.resolve() not in skipped]
