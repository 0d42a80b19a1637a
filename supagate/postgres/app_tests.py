"""An app's own database tests, as `supabase test db` runs them and a bit more: the
migrations applied, the seed loaded (`supabase/seed.sql` and config.toml's `[db.seed]`
sql_paths, by supagate/ops/seeds.py: never on production), an optional setup file, then
every pgTAP file of `supabase/tests`. The report names each failing assertion and each
file's error; a suite with no test file fails. A database marked production is refused
before anything touches it."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from supagate.errors import BadInput, Failed
from supagate.postgres.connect import libpq_env
from supagate.postgres.pgtap import FileResult, find_psql, run_suite


@dataclass
class AppTestReport:
    migrations_applied: int = 0
    seeded: list[str] = field(default_factory=list)
    setup: str | None = None
    files: list[FileResult] = field(default_factory=list)

    @property
    def assertions(self) -> int:
        return sum(len(f.passed) + len(f.failed) for f in self.files)

    @property
    def passed(self) -> bool:
        return bool(self.files) and all(f.ok for f in self.files)

    def to_json(self) -> dict:
        return {"passed": self.passed, "migrations_applied": self.migrations_applied, "seeded": self.seeded,
                "setup": self.setup, "test_files": len(self.files), "assertions": self.assertions,
                "failed_files": [f.path for f in self.files if not f.ok],
                "files": [{"path": f.path, "ok": f.ok, "planned": f.planned, "passed": len(f.passed),
                           "failed": f.failed, "error": f.error} for f in self.files]}


def run_sql_file(url: str, path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, **libpq_env(url)}
    done = subprocess.run([find_psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
                          capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise Failed(f"failed to load {path}: {done.stderr.strip()[-1500:]}\n"
                     "Fix the file; the tests did not run.")


def run_app_tests(url: str, project: Path, setup: Path | None = None,
                  progress: Callable[[str], None] = lambda _: None, own_database: bool = False) -> AppTestReport:
    """`own_database`: a database supagate started (throwaway, or `supagate db start`'s);
    any other is asked whether it is production before anything touches it."""
    from supagate.migrations import runner
    from supagate.migrations.files import load_migrations
    from supagate.ops import seeds

    report = AppTestReport()
    if not own_database:
        seeds.refuse_production(url)
    result = runner.migrate(url, load_migrations(project / "supabase" / "migrations", warn=progress),
                            progress=lambda _: None)
    report.migrations_applied = len(result.applied)
    files = seeds.load(project, ())
    if files:
        progress(f"Seeding {', '.join(f.path for f in files)}...")
    # The same loader as the Seed resource: one guarded transaction per file, recorded as the CLI does.
    report.seeded = seeds.apply(url, files, own_database=own_database)
    if setup is not None:
        if not setup.is_file():
            raise BadInput(f"{setup}: no such setup file\nPass the path of a SQL file to run before the tests.")
        progress(f"Running the setup file {setup}...")
        run_sql_file(url, setup)
        report.setup = str(setup)
    tests_dir = project / "supabase" / "tests"
    progress(f"Running pgTAP tests in {tests_dir}...")
    report.files = run_suite(url, tests_dir, skip=(setup,) if setup is not None else ())
    return report


def render_lines(report: AppTestReport, root: Path) -> list[str]:
    lines = [f"  migrations applied : {report.migrations_applied}"]
    if report.seeded:
        lines.append(f"  seeded             : {', '.join(report.seeded)}")
    if not report.files:
        lines.append("  no pgTAP file in supabase/tests: nothing was tested")
    for f in report.files:
        shown = Path(f.path).relative_to(root) if Path(f.path).is_relative_to(root) else f.path
        planned = f.planned if f.planned is not None else "?"
        lines.append(f"  {'ok  ' if f.ok else 'FAIL'} {shown}: {len(f.passed)}/{planned} assertions")
        lines += [f"       not ok {label}" for label in f.failed]
        lines += [f"       {line}" for line in (f.diagnostics[:10] if not f.ok else ())]
        if f.error:
            lines.append(f"       {f.error.splitlines()[-1] if f.error else ''}")
    failed = sum(len(f.failed) for f in report.files)
    lines.append(f"  {'PASS' if report.passed else 'FAIL'}: {report.assertions - failed}/{report.assertions} "
                 f"assertions in {len(report.files)} files")
    return lines
