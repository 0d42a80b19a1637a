"""`supagate migrate`: apply pending migrations, roll back with stored down scripts, or
accept an edited applied file, with the Supabase CLI's own history table."""

from __future__ import annotations

from pathlib import Path

from supagate.cli.common import DB_URL_ENV, EXIT_OK, db_url, emit_json, err
from supagate.migrations.options import Options


def register(sub) -> None:
    mig = sub.add_parser("migrate", help="apply pending migrations (Supabase CLI compatible history)")
    mig.add_argument("--db-url", help=f"database URL (or set {DB_URL_ENV}, which keeps it off the command line)")
    mig.add_argument("--migrations", default="supabase/migrations", type=Path, help="migrations directory")
    mig.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    mig.add_argument("--include-all", action="store_true",
                     help="apply new migrations older than the newest applied one")
    mig.add_argument("--down-to", metavar="VERSION",
                     help="run stored down scripts, newest first, for every version after VERSION (0: all)")
    mig.add_argument("--repair", metavar="VERSION",
                     help="accept the local file of an applied VERSION as applied (after review)")
    mig.add_argument("--lock-timeout", default=Options.lock_timeout,
                     help="per statement wait for a table lock (default %(default)s)")
    mig.add_argument("--statement-timeout", default=Options.statement_timeout,
                     help="per statement run time limit (default %(default)s)")
    mig.add_argument("--lock-wait", type=float, default=Options.lock_wait,
                     help="seconds to wait for another run to finish (default %(default)s)")
    mig.add_argument("--format", choices=("text", "json"), default="text")
    mig.set_defaults(func=run)


def run(args) -> int:
    from supagate.migrations import runner
    from supagate.migrations.files import load_migrations

    url = db_url(args)
    options = Options(lock_timeout=args.lock_timeout, statement_timeout=args.statement_timeout,
                      lock_wait=args.lock_wait, include_all=args.include_all)
    as_json = args.format == "json"
    if args.down_to is not None:
        result = runner.down_to(url, args.down_to, options, dry_run=args.dry_run)
        if as_json:
            emit_json({"dry_run": args.dry_run, "reverted": result.reverted})
        else:
            verb = "Would revert" if args.dry_run else "Reverted"
            err(f"{verb} {len(result.reverted)} migration(s) down to {args.down_to}.")
        return EXIT_OK
    migrations = load_migrations(args.migrations, warn=err)
    if args.repair is not None:
        runner.repair(url, migrations, args.repair, options)
        if as_json:
            emit_json({"repaired": args.repair})
        return EXIT_OK
    result = runner.migrate(url, migrations, options, dry_run=args.dry_run)
    if args.dry_run:
        if as_json:
            emit_json({"dry_run": True, "applied": result.skipped, "pending": runner.describe(result.pending)})
        else:
            err(f"{len(result.skipped)} migration(s) already applied; {len(result.pending)} would be applied:")
            for m in result.pending:
                mode = "in one transaction" if m.transactional else "outside a transaction"
                down = ", has down script" if m.down_sql else ""
                err(f"  {m.filename}: {len(m.statements)} statement(s) {mode}{down}")
        return EXIT_OK
    if as_json:
        emit_json({"dry_run": False, "applied": result.applied, "already_applied": result.skipped})
    else:
        err(f"Applied {len(result.applied)} migration(s); {len(result.skipped)} were already applied.")
    return EXIT_OK
