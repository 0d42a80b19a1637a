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
    ver.add_argument("--rate-limit", action="store_true",
                     help="also prove each probed rateLimits entry against the deployed function (signed probe "
                          "requests; RATE_LIMIT_PROBE_SECRET from the environment)")
    ver.add_argument("--functions-url", help="base URL of the functions (default https://<projectRef>.supabase.co/"
                                             "functions/v1)")
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
    if args.rate_limit:
        _probe_rate_limits(result, settings, url, args.functions_url)
    if args.format == "json":
        emit_json(result.to_json())
    for line in render_lines(result):  # with JSON on stdout, the readable trace goes to stderr
        (err if args.format == "json" else out)(line)
    return EXIT_OK if result.ok else EXIT_FAILED


def _probe_rate_limits(result, settings, db_url: str, functions_url: str | None) -> None:
    """One check per probed limit: `rate-limit:<function>`."""
    import os

    from supagate.cli.common import UsageError
    from supagate.delivery.rate_probe import probe

    if settings is None:
        raise UsageError("--rate-limit reads the limits from the stack file: pass --stack")
    secret = os.environ.get("RATE_LIMIT_PROBE_SECRET", "")
    probed = {fn: limit for fn, limit in settings.rate_limits.items() if limit.probe}
    if probed and not secret:
        raise UsageError("--rate-limit needs RATE_LIMIT_PROBE_SECRET in the environment (the functions' secret of "
                         "the same name)")
    base = (functions_url or f"https://{settings.project_ref}.supabase.co/functions/v1").rstrip("/")
    for fn, limit in sorted(probed.items()):
        outcome = probe(f"{base}/{fn}", fn, limit.limit, limit.window_seconds(), secret, db_url=db_url)
        result.add(f"rate-limit:{fn}", f"{fn}: {limit.limit} per {limit.window_seconds()} s holds "
                   f"({outcome.requests} probe requests)" if outcome.ok else "; ".join(outcome.problems),
                   f"the rate limit of {fn} does not hold" if not outcome.ok else None,
                   f"Make {fn} call the shared limiter (supabase/functions/_shared/supagate_rate_limit.ts) before "
                   "anything else, and deploy it.", outcome.problems)
