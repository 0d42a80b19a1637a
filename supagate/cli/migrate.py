"""`supagate migrate`: apply pending migrations, roll back with stored down scripts, or
accept an edited applied file, with the Supabase CLI's own history table."""

from __future__ import annotations

from pathlib import Path

from supagate.cli.common import DB_URL_ENV, EXIT_OK, db_url, emit_json, err, out, stack_settings
from supagate.migrations.options import Options


def register(sub) -> None:
    mig = sub.add_parser("migrate", help="apply pending migrations (Supabase CLI compatible history)",
                         description="Apply pending migrations, one transaction per file, with the Supabase CLI's own "
                                     "history table. Example: SUPABASE_DB_URL=... supagate migrate --stack prod --dry-run")
    mig.add_argument("--db-url", help=f"database URL (or set {DB_URL_ENV}, which keeps it off the command line)")
    mig.add_argument("--stack", help="take the migrations directory and timeouts from Pulumi.<stack>.yaml")
    mig.add_argument("--stack-file", type=Path, help="use this file instead of Pulumi.<stack>.yaml")
    mig.add_argument("--migrations", type=Path, help="migrations directory (default: the stack's, supabase/migrations)")
    mig.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    mig.add_argument("--include-all", action="store_true",
                     help="apply new migrations older than the newest applied one")
    mig.add_argument("--down-to", metavar="VERSION",
                     help="run stored down scripts, newest first, for every version after VERSION (0: all)")
    mig.add_argument("--repair", metavar="VERSION",
                     help="accept the local file of an applied VERSION as applied (after review)")
    mig.add_argument("--lock-timeout", help=f"per statement wait for a table lock (default: the stack's, "
                                            f"else {Options.lock_timeout})")
    mig.add_argument("--statement-timeout", help=f"per statement run time limit (default: the stack's, "
                                                 f"else {Options.statement_timeout})")
    mig.add_argument("--lock-wait", type=float, default=Options.lock_wait,
                     help="seconds to wait for another run to finish (default %(default)s)")
    mig.add_argument("--format", choices=("text", "json"), default="text")
    mig.set_defaults(func=run)


def run(args) -> int:
    from supagate.migrations import runner
    from supagate.migrations.files import load_migrations

    url = db_url(args)
    settings = stack_settings(args.stack, args.stack_file).migrations if args.stack or args.stack_file else None
    options = Options(
        lock_timeout=args.lock_timeout or (settings.lock_timeout if settings else Options.lock_timeout),
        statement_timeout=args.statement_timeout or (settings.statement_timeout if settings else Options.statement_timeout),
        lock_wait=args.lock_wait, include_all=args.include_all)
    directory = args.migrations or Path(settings.directory if settings else "supabase/migrations")
    as_json = args.format == "json"
    if args.down_to is not None:
        result = runner.down_to(url, args.down_to, options, dry_run=args.dry_run, progress=err)
        if as_json:
            emit_json({"dry_run": args.dry_run, "reverted": result.reverted})
        else:
            verb = "Would revert" if args.dry_run else "Reverted"
            out(f"{verb} {len(result.reverted)} migration(s) down to {args.down_to}.")
        return EXIT_OK
    migrations = load_migrations(directory, warn=err)
    if args.repair is not None:
        runner.repair(url, migrations, args.repair, options, progress=err)
        if as_json:
            emit_json({"repaired": args.repair})
        return EXIT_OK
    result = runner.migrate(url, migrations, options, dry_run=args.dry_run, progress=err)
    if args.dry_run:
        if as_json:
            emit_json({"dry_run": True, "applied": result.skipped, "pending": runner.describe(result.pending)})
        else:
            out(f"{len(result.skipped)} migration(s) already applied; {len(result.pending)} would be applied:")
            for m in result.pending:
                mode = "in one transaction" if m.transactional else "outside a transaction"
                down = ", has down script" if m.down_sql else ""
                out(f"  {m.filename}: {len(m.statements)} statement(s) {mode}{down}")
        return EXIT_OK
    if as_json:
        emit_json({"dry_run": False, "applied": result.applied, "already_applied": result.skipped})
    else:
        out(f"Applied {len(result.applied)} migration(s); {len(result.skipped)} were already applied.")
    return EXIT_OK
