"""`supagate verify`: post-deploy verification of a live database, read only."""

from __future__ import annotations

from pathlib import Path

from supagate.cli.common import DB_URL_ENV, EXIT_FAILED, EXIT_OK, db_url, emit_json, err, out, stack_settings


def register(sub) -> None:
    ver = sub.add_parser("verify", help="check a deployed database: tables, RLS, policies, matviews, jobs, health",
                         description="Read only: every migration recorded, tables, RLS and policies present, "
                                     "materialized views hidden, cron jobs active, the health check healthy. Example: "
                                     "SUPABASE_DB_URL=... supagate verify --stack prod")
    ver.add_argument("--db-url", help=f"database URL (or set {DB_URL_ENV})")
    ver.add_argument("--stack", default="prod", help="read exposed schemas, migrations directory and health URL from "
                                                     "this stack's file (default %(default)s)")
    ver.add_argument("--stack-file", type=Path, help="use this file instead of Pulumi.<stack>.yaml")
    ver.add_argument("--migrations", type=Path, help="migrations directory (default: the stack's, supabase/migrations)")
    ver.add_argument("--health-url", help="health-check function URL (default: the stack's monitoring.healthUrl)")
    ver.add_argument("--no-health", action="store_true", help="skip the health-check call")
    ver.add_argument("--format", choices=("text", "json"), default="text")
    ver.set_defaults(func=run)


def run(args) -> int:
    from supagate.delivery.verify import render_lines, verify
    from supagate.gates.catalog.model import DEFAULT_EXPOSED_SCHEMAS
    from supagate.migrations.files import load_migrations

    url = db_url(args)
    settings = stack_settings(args.stack, args.stack_file)
    exposed = tuple(settings.exposed_schemas) if settings else DEFAULT_EXPOSED_SCHEMAS
    directory = args.migrations or Path(settings.migrations.directory if settings else "supabase/migrations")
    health_url = None if args.no_health else (
        args.health_url or (settings.monitoring.health_url if settings else "") or None)
    jobs = None
    if settings:
        from supagate.ops.cron import stack_jobs

        jobs = stack_jobs(settings, settings.alert_rules())
    result = verify(url, load_migrations(directory, warn=err), exposed, health_url, declared_jobs=jobs,
                    production=bool(settings and settings.is_production))
    if args.format == "json":
        emit_json(result.to_json())
    for line in render_lines(result):  # with JSON on stdout, the readable trace goes to stderr
        (err if args.format == "json" else out)(line)
    return EXIT_OK if result.ok else EXIT_FAILED
