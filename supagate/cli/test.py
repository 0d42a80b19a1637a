"""`supagate test`: the app's own database tests (migrations, seed, setup file, pgTAP) on
the local database from `supagate db start`, a database given by URL, or a throwaway one."""

from __future__ import annotations

import os
from pathlib import Path

from supagate.cli.common import DB_URL_ENV, EXIT_FAILED, EXIT_OK, emit_json, err, out


def register(sub) -> None:
    tst = sub.add_parser("test", help="apply the migrations, seed, and run the app's pgTAP tests",
                         description="Apply supabase/migrations, load the seed (supabase/seed.sql or config.toml's "
                                     "[db.seed] sql_paths), run --setup, then every pgTAP file of supabase/tests. "
                                     "Example: supagate test --setup supabase/tests/setup.sql")
    tst.add_argument("--db-url", help=f"test on this database (or {DB_URL_ENV}); default: the one `supagate db "
                                      "start` runs, else a throwaway one")
    tst.add_argument("--setup", type=Path, help="a SQL file to run after the seed, before the tests")
    tst.add_argument("--project", default=".", help="project root holding supabase/ (default: .)")
    tst.add_argument("--format", choices=("text", "json"), default="text")
    tst.set_defaults(func=run)


def run(args) -> int:
    from supagate.postgres import local_db
    from supagate.postgres.app_tests import render_lines, run_app_tests

    root = Path(args.project)
    url = args.db_url or os.environ.get(DB_URL_ENV)
    if url is not None:  # a database of the user's: asked whether it is production first
        report = run_app_tests(url, root, args.setup, progress=err)
    elif (running := local_db.status(root)) is not None:
        err(f"Using the local database from `supagate db start` ({running['url']}).")
        # Ours only if it is on this machine: .supagate/db.json is a file anyone can commit.
        report = run_app_tests(running["url"], root, args.setup, progress=err, own_database=_loopback(running["url"]))
    else:
        from supagate.postgres.embedded import EmbeddedPostgres

        err("Starting a throwaway PostgreSQL 15 shaped like a hosted Supabase project...")
        with EmbeddedPostgres() as pg:
            report = run_app_tests(pg.url, root, args.setup, progress=err, own_database=True)
    if args.format == "json":
        emit_json(report.to_json())
    for line in render_lines(report, root):  # with JSON on stdout, the readable trace goes to stderr
        (err if args.format == "json" else out)(line)
    return EXIT_OK if report.passed else EXIT_FAILED


def _loopback(url: str) -> bool:
    from psycopg.conninfo import conninfo_to_dict

    host = str(conninfo_to_dict(url).get("host") or "")
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("/")
