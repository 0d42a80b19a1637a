"""`supagate local`: the quick start's main job. A throwaway Postgres with Supabase's
roles and schemas, the app's migrations, then its pgTAP suite."""

from __future__ import annotations

import time
from pathlib import Path

from supagate.cli.common import EXIT_FAILED, EXIT_OK, emit_json, err


def register(sub) -> None:
    loc = sub.add_parser("local", help="apply the app to a throwaway local Postgres and run its pgTAP tests")
    loc.add_argument("--project", default=".", help="project root holding supabase/ (default: .)")
    loc.add_argument("--format", choices=("text", "json"), default="text")
    loc.set_defaults(func=run)


def run(args) -> int:
    from supagate.migrations import runner
    from supagate.migrations.files import load_migrations
    from supagate.postgres.embedded import EmbeddedPostgres
    from supagate.postgres.pgtap import run_suite

    root = Path(args.project)
    migrations_dir = root / "supabase" / "migrations"
    tests_dir = root / "supabase" / "tests"
    migrations = load_migrations(migrations_dir, warn=err)
    started = time.monotonic()
    err("Starting a throwaway PostgreSQL 15 shaped like a hosted Supabase project...")
    with EmbeddedPostgres() as pg:
        err(f"  ready on 127.0.0.1:{pg.port} in {time.monotonic() - started:.1f} s")
        result = runner.migrate(pg.url, migrations)
        applied_at = time.monotonic()
        err(f"Running pgTAP tests in {tests_dir}...")
        results = run_suite(pg.url, tests_dir)
        tests_done = time.monotonic()
    failed = [r for r in results if not r.ok]
    total = sum(len(r.passed) + len(r.failed) for r in results)
    summary = {
        "migrations_applied": len(result.applied),
        "test_files": len(results),
        "assertions": total,
        "failed_files": [r.path for r in failed],
        "seconds": round(tests_done - started, 2),
    }
    if args.format == "json":
        emit_json(summary)
    err("")
    err(f"  migrations applied : {len(result.applied)} "
        f"({applied_at - started:.1f} s including start-up)")
    for r in results:
        status = "ok " if r.ok else "FAIL"
        err(f"  {status} {Path(r.path).relative_to(root) if Path(r.path).is_relative_to(root) else r.path}: "
             f"{len(r.passed)}/{r.planned if r.planned is not None else '?'} assertions")
        for label in r.failed:
            err(f"       not ok {label}")
        for line in r.diagnostics[:10] if not r.ok else ():
            err(f"       {line}")
        if r.error:
            err(f"       {r.error}")
    verdict = "PASS" if not failed and results else "FAIL"
    err(f"  {verdict}: {total - sum(len(r.failed) for r in results)}/{total} assertions in "
        f"{len(results)} files, {tests_done - started:.1f} s in all")
    return EXIT_OK if verdict == "PASS" else EXIT_FAILED


