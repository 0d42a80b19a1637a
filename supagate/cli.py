"""`supagate`: the command-line front door to the same engine the Pulumi program uses.

Exit codes: 0 ok, 1 blocked or failed, 2 bad usage or bad input. With `--format json`
one JSON document goes to stdout; progress and human text go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import engine
import psycopg

from .db import DatabaseError, redact
from .embedded import EmbeddedPostgresError
from .lock_safety import LockSafetyError
from .migrations import MigrationFileError, load_migrations
from .plan import PlanError, PlanInputError
from .policy_host import PackConfigError, PolicyPackError
from .rules import GateInputError
from .settings import SettingsError
from .shadow import ShadowError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DB_URL_ENV = "SUPABASE_DB_URL"


class UsageError(Exception):
    pass


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _emit_json(document: dict) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def _db_url(args) -> str:
    url = args.db_url or os.environ.get(DB_URL_ENV, "")
    if not url:
        raise UsageError(f"no database URL: pass --db-url URL or set {DB_URL_ENV} "
                         "(the variable keeps the password off the command line)")
    return url


def _options(args) -> engine.Options:
    return engine.Options(lock_timeout=args.lock_timeout, statement_timeout=args.statement_timeout,
                          lock_wait=args.lock_wait, include_all=args.include_all)


def cmd_migrate(args) -> int:
    url = _db_url(args)
    options = _options(args)
    as_json = args.format == "json"
    if args.down_to is not None:
        result = engine.down_to(url, args.down_to, options, dry_run=args.dry_run)
        if as_json:
            _emit_json({"dry_run": args.dry_run, "reverted": result.reverted})
        else:
            verb = "Would revert" if args.dry_run else "Reverted"
            _err(f"{verb} {len(result.reverted)} migration(s) down to {args.down_to}.")
        return EXIT_OK
    migrations = load_migrations(args.migrations, warn=_err)
    if args.repair is not None:
        engine.repair(url, migrations, args.repair, options)
        if as_json:
            _emit_json({"repaired": args.repair})
        return EXIT_OK
    result = engine.migrate(url, migrations, options, dry_run=args.dry_run)
    if args.dry_run:
        if as_json:
            _emit_json({"dry_run": True, "applied": result.skipped,
                        "pending": engine.describe(result.pending)})
        else:
            _err(f"{len(result.skipped)} migration(s) already applied; "
                 f"{len(result.pending)} would be applied:")
            for m in result.pending:
                mode = "in one transaction" if m.transactional else "outside a transaction"
                down = ", has down script" if m.down_sql else ""
                _err(f"  {m.filename}: {len(m.statements)} statement(s) {mode}{down}")
        return EXIT_OK
    if as_json:
        _emit_json({"dry_run": False, "applied": result.applied, "already_applied": result.skipped})
    else:
        _err(f"Applied {len(result.applied)} migration(s); {len(result.skipped)} were already applied.")
    return EXIT_OK


def cmd_local(args) -> int:
    """The quick start's main job: a throwaway Postgres, the app's migrations, its pgTAP suite."""
    from .embedded import EmbeddedPostgres
    from .pgtap import run_suite

    root = Path(args.project)
    migrations_dir = root / "supabase" / "migrations"
    tests_dir = root / "supabase" / "tests"
    migrations = load_migrations(migrations_dir, warn=_err)
    started = time.monotonic()
    _err("Starting a throwaway PostgreSQL 15 with Supabase's roles and auth schema...")
    with EmbeddedPostgres() as pg:
        _err(f"  ready on 127.0.0.1:{pg.port} in {time.monotonic() - started:.1f} s")
        result = engine.migrate(pg.url, migrations)
        applied_at = time.monotonic()
        _err(f"Running pgTAP tests in {tests_dir}...")
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
        _emit_json(summary)
    _err("")
    _err(f"  migrations applied : {len(result.applied)} "
         f"({applied_at - started:.1f} s including start-up)")
    for r in results:
        status = "ok " if r.ok else "FAIL"
        _err(f"  {status} {Path(r.path).relative_to(root) if Path(r.path).is_relative_to(root) else r.path}: "
             f"{len(r.passed)}/{r.planned if r.planned is not None else '?'} assertions")
        for label in r.failed:
            _err(f"       not ok {label}")
        for line in r.diagnostics[:10] if not r.ok else ():
            _err(f"       {line}")
        if r.error:
            _err(f"       {r.error}")
    verdict = "PASS" if not failed and results else "FAIL"
    _err(f"  {verdict}: {total - sum(len(r.failed) for r in results)}/{total} assertions in "
         f"{len(results)} files, {tests_done - started:.1f} s in all")
    return EXIT_OK if verdict == "PASS" else EXIT_FAILED


def _stack_settings(stack: str, stack_file: Path | None):
    from .settings import settings_from_stack_file

    path = stack_file or Path(f"Pulumi.{stack}.yaml")
    if stack_file is not None and not path.exists():
        raise UsageError(f"{path}: no such stack file\nPass the path of a Pulumi.<stack>.yaml.")
    return settings_from_stack_file(stack, path) if path.exists() else None


def cmd_check(args) -> int:
    from .gate import CheckOptions, check, render_text
    from .tools import node_tool

    settings = _stack_settings(args.stack, args.stack_file)
    exposed = settings.exposed_schemas if settings else CheckOptions.exposed
    directory = args.migrations or Path(settings.migrations.directory if settings else "supabase/migrations")
    migrations = load_migrations(directory, warn=_err)
    supabase_cli = node_tool("supabase")
    if args.shadow and args.advisors and supabase_cli is None:
        raise UsageError("the Supabase CLI is not installed, so its advisors cannot run\n"
                         "Run scripts/setup (npm install of the pinned supabase@3.1.0), or pass --no-advisors.")
    options = CheckOptions(
        stack=args.stack, exposed=tuple(exposed), shadow=args.shadow, advisors=args.advisors,
        shadow_db_url=args.db_url or os.environ.get("SUPAGATE_SHADOW_DB_URL"), supabase_cli=supabase_cli,
        target_db_url=args.target_db_url or os.environ.get("SUPAGATE_TARGET_DB_URL"),
        staging_db_url=args.staging_db_url or os.environ.get("SUPAGATE_STAGING_DB_URL"))
    report = check(migrations, options, progress=_err)
    if args.format == "json":
        _emit_json(report.to_json())
    else:
        _err(render_text(report))
    return EXIT_FAILED if report.blocked else EXIT_OK


def cmd_verify(args) -> int:
    from .verify import verify

    url = _db_url(args)
    settings = _stack_settings(args.stack, args.stack_file) if args.stack else None
    exposed = tuple(settings.exposed_schemas) if settings else ("public", "graphql_public")
    directory = args.migrations or Path(settings.migrations.directory if settings else "supabase/migrations")
    health_url = None if args.no_health else (
        args.health_url or (settings.monitoring.health_url if settings else "") or None)
    result = verify(url, load_migrations(directory, warn=_err), exposed, health_url)
    if args.format == "json":
        _emit_json(result.to_json())
    for check in result.checks:
        _err(f"  {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        if not check.ok and check.fix:
            _err(f"       fix: {check.fix}")
    _err(f"{'VERIFIED' if result.ok else 'FAILED'}: {sum(c.ok for c in result.checks)}/{len(result.checks)} checks passed.")
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_workflows(args) -> int:
    from .settings import settings_from_stack_file
    from .workflows import rendered, write

    files = rendered(settings_from_stack_file("staging", Path("Pulumi.staging.yaml")),
                     settings_from_stack_file("prod", Path("Pulumi.prod.yaml")))
    target = Path(".github") / "workflows"
    if args.write:
        changed = write(target, files)
        _err(f"wrote {', '.join(changed)}" if changed else "workflows are up to date")
        return EXIT_OK
    stale = [n for n, text in files.items() if not (target / n).exists() or (target / n).read_text() != text]
    if stale:
        _err(f"{', '.join(stale)} in {target} differ from what the stack settings generate\n"
             "Run `uv run supagate workflows --write` and commit the result.")
        return EXIT_FAILED
    _err(f"{len(files)} workflows in {target} match the stack settings")
    return EXIT_OK


def cmd_plan(args) -> int:
    from .plan import plan, render_text

    result = plan(Path(args.project), args.stack, args.stack_file, args.policy_pack_config,
                  args.staging_outputs, progress=_err)
    if args.format == "json":
        _emit_json(result.to_json())
    _err(render_text(result))
    return EXIT_FAILED if result.blocked else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supagate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

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
    mig.add_argument("--lock-timeout", default=engine.Options.lock_timeout,
                     help="per statement wait for a table lock (default %(default)s)")
    mig.add_argument("--statement-timeout", default=engine.Options.statement_timeout,
                     help="per statement run time limit (default %(default)s)")
    mig.add_argument("--lock-wait", type=float, default=engine.Options.lock_wait,
                     help="seconds to wait for another run to finish (default %(default)s)")
    mig.add_argument("--format", choices=("text", "json"), default="text")
    mig.set_defaults(func=cmd_migrate)

    chk = sub.add_parser("check", help="run every gate (static, shadow database, advisors, squawk) on the migrations")
    chk.add_argument("--stack", default="prod",
                     help="whose enforcement and exposed schemas apply (default %(default)s, the strictest)")
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
    chk.add_argument("--format", choices=("text", "json"), default="text")
    chk.set_defaults(func=cmd_check)

    pln = sub.add_parser("plan", help="evaluate the program offline and run the policy pack over it")
    pln.add_argument("--stack", required=True, help="the stack whose settings and pack config apply")
    pln.add_argument("--stack-file", type=Path, help="use this file instead of Pulumi.<stack>.yaml")
    pln.add_argument("--policy-pack-config", type=Path,
                     help="enforcement levels (default policies/config/<stack>.json)")
    pln.add_argument("--staging-outputs", type=Path,
                     help="staging's outputs (`pulumi stack output --json --stack staging`) for the promotion check")
    pln.add_argument("--project", default=".", help="project root (default: .)")
    pln.add_argument("--format", choices=("text", "json"), default="text")
    pln.set_defaults(func=cmd_plan)

    ver = sub.add_parser("verify", help="check a deployed database: tables, RLS, policies, matviews, jobs, health")
    ver.add_argument("--db-url", help=f"database URL (or set {DB_URL_ENV})")
    ver.add_argument("--stack", help="read exposed schemas, migrations directory and health URL from this stack")
    ver.add_argument("--stack-file", type=Path, help="use this file instead of Pulumi.<stack>.yaml")
    ver.add_argument("--migrations", type=Path, help="migrations directory (default: the stack's, supabase/migrations)")
    ver.add_argument("--health-url", help="health-check function URL (default: the stack's monitoring.healthUrl)")
    ver.add_argument("--no-health", action="store_true", help="skip the health-check call")
    ver.add_argument("--format", choices=("text", "json"), default="text")
    ver.set_defaults(func=cmd_verify)

    wfl = sub.add_parser("workflows", help="generate the GitHub workflows from the stack settings (or check them)")
    wfl.add_argument("--write", action="store_true", help="write .github/workflows/ (default: only check)")
    wfl.set_defaults(func=cmd_workflows)

    loc = sub.add_parser("local", help="apply the app to a throwaway local Postgres and run its pgTAP tests")
    loc.add_argument("--project", default=".", help="project root holding supabase/ (default: .)")
    loc.add_argument("--format", choices=("text", "json"), default="text")
    loc.set_defaults(func=cmd_local)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    try:
        return args.func(args)
    except (UsageError, MigrationFileError, GateInputError, SettingsError, PlanInputError, PackConfigError) as exc:
        _err(f"supagate: {exc}")
        return EXIT_USAGE
    except (engine.MigrationError, DatabaseError, ShadowError, LockSafetyError, PlanError,
            PolicyPackError, EmbeddedPostgresError) as exc:
        _err(f"supagate: {exc}")
        return EXIT_FAILED
    except psycopg.Error as exc:  # lost connection, missing privilege, ...
        url = getattr(args, "db_url", None) or os.environ.get(DB_URL_ENV)
        _err(f"supagate: failed to {args.command}: {redact(str(exc).strip(), url)}\n"
             "Check the database is reachable and the user may create schemas and tables.")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _err("supagate: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
