"""`supagate check`: every gate over the migrations (static analysis, squawk, the shadow
database with its probes and Supabase's advisors, history), one verdict."""

from __future__ import annotations

import os
from pathlib import Path

from supagate.cli.common import EXIT_FAILED, EXIT_OK, UsageError, emit_json, err, out, stack_settings

def register(sub) -> None:
    chk = sub.add_parser("check", help="run every gate (static, shadow database, advisors, squawk) on the migrations",
                         description="Static analysis, squawk, a Supabase-shaped shadow database with isolation "
                                     "probes and Supabase's advisors, and optional history checks, merged into one "
                                     "verdict (exit 1 when a mandatory finding blocks). Example: supagate check "
                                     "--stack prod --format json > findings.json")
    chk.add_argument("--stack", default="prod",
                     help="whose tier (enforcement) and exposed schemas apply (default %(default)s)")
    chk.add_argument("--stack-file", type=Path, help="read the stack's settings here instead of Pulumi.<stack>.yaml")
    chk.add_argument("--migrations", type=Path, help="migrations directory (default: the stack's, supabase/migrations)")
    chk.add_argument("--db-url", help="an empty database to use as the shadow (or set SUPAGATE_SHADOW_DB_URL); "
                                      "default: a throwaway local Postgres")
    chk.add_argument("--no-shadow", dest="shadow", action="store_false",
                     help="static analysis and squawk only (no database, no probes, no advisors)")
    chk.add_argument("--no-advisors", dest="advisors", action="store_false", help="skip `supabase db advisors`")
    chk.add_argument("--target-db-url", help="compare with this database's history, read only, for "
                                             "migration-edited/-out-of-order (or set SUPAGATE_TARGET_DB_URL)")
    chk.add_argument("--staging-db-url", help="on prod, require every migration on this staging database "
                                              "(or set SUPAGATE_STAGING_DB_URL)")
    chk.add_argument("--verbose", action="store_true", help="list every advisory finding (default: three per rule)")
    chk.add_argument("--format", choices=("text", "json"), default="text")
    chk.set_defaults(func=run)


def run(args) -> int:
    from supagate.gates.check import CheckOptions, render_text, run_gates
    from supagate.migrations.files import load_migrations
    from supagate.tools import node_tool

    settings = stack_settings(args.stack, args.stack_file)
    exposed = settings.exposed_schemas
    directory = args.migrations or Path(settings.migrations.directory)
    migrations = load_migrations(directory, warn=err)
    supabase_cli = node_tool("supabase")
    if args.shadow and args.advisors and supabase_cli is None:
        raise UsageError("the Supabase CLI is not installed, so its advisors cannot run\n"
                         "Run scripts/setup (npm install of the pinned supabase@3.1.0), or pass --no-advisors.")
    options = CheckOptions(
        stack=args.stack, tier=settings.tier, exposed=tuple(exposed), shadow=args.shadow, advisors=args.advisors,
        shadow_db_url=args.db_url or os.environ.get("SUPAGATE_SHADOW_DB_URL"), supabase_cli=supabase_cli,
        target_db_url=args.target_db_url or os.environ.get("SUPAGATE_TARGET_DB_URL"),
        staging_db_url=args.staging_db_url or os.environ.get("SUPAGATE_STAGING_DB_URL"),
        baseline=settings.migrations.baseline)
    report = run_gates(migrations, options, progress=err)
    if args.format == "json":
        emit_json(report.to_json())
    else:
        out(render_text(report, verbose=args.verbose))
    return EXIT_FAILED if report.blocked else EXIT_OK
