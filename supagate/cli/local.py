"""`supagate local`: the quick start's main job. A throwaway Postgres with Supabase's
roles and schemas, the app's migrations, then its pgTAP suite."""

from __future__ import annotations

import time
from pathlib import Path

from supagate.cli.common import EXIT_FAILED, EXIT_OK, emit_json, err, out


def register(sub) -> None:
    loc = sub.add_parser("local", help="apply the app to a throwaway local Postgres and run its pgTAP tests",
                         description="The one-shot of `supagate test` on a throwaway Supabase-shaped database. "
                                     "Example: supagate local --format json")
    loc.add_argument("--project", default=".", help="project root holding supabase/ (default: .)")
    loc.add_argument("--format", choices=("text", "json"), default="text")
    loc.set_defaults(func=run)


def run(args) -> int:
    """The one-shot of `supagate test` on a throwaway database."""
    from supagate.postgres.app_tests import render_lines, run_app_tests
    from supagate.postgres.embedded import EmbeddedPostgres

    root = Path(args.project)
    started = time.monotonic()
    err("Starting a throwaway PostgreSQL 15 shaped like a hosted Supabase project...")
    with EmbeddedPostgres() as pg:
        err(f"  ready on 127.0.0.1:{pg.port} in {time.monotonic() - started:.1f} s")
        report = run_app_tests(pg.url, root, progress=err, own_database=True)
    if args.format == "json":
        emit_json({**report.to_json(), "seconds": round(time.monotonic() - started, 2)})
    err("")
    for line in render_lines(report, root):  # with JSON on stdout, the readable trace goes to stderr
        (err if args.format == "json" else out)(line)
    err(f"  {time.monotonic() - started:.1f} s in all")
    return EXIT_OK if report.passed else EXIT_FAILED
