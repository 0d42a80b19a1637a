"""`supagate db start|stop|status`: a local Supabase-shaped PostgreSQL that stays up, found
again by later commands (`supagate test`) through .supagate/db.json."""

from __future__ import annotations

from pathlib import Path

from supagate.cli.common import EXIT_FAILED, EXIT_OK, emit_json, err


def register(sub) -> None:
    db = sub.add_parser("db", help="start, stop or show a local Supabase-shaped database that stays up",
                        description="A local PostgreSQL 15 with Supabase's roles, auth, storage, Vault and "
                                    "placeholder extensions. Example: supagate db start && eval \"$(supagate db "
                                    "status --export)\"")
    db.add_argument("action", choices=("start", "stop", "status"))
    db.add_argument("--export", action="store_true", help="print only the export line for the URL")
    db.add_argument("--project", default=".", help="project root (default: .)")
    db.add_argument("--format", choices=("text", "json"), default="text")
    db.set_defaults(func=run)


def run(args) -> int:
    from supagate.postgres import local_db

    root = Path(args.project)
    if args.action == "stop":
        stopped = local_db.stop(root)
        err("stopped the local database" if stopped else "no local database was running")
        return EXIT_OK
    state = local_db.start(root) if args.action == "start" else local_db.status(root)
    if state is None:
        err("no local database is running; start one with `supagate db start`")
        return EXIT_FAILED
    export = f"export SUPABASE_DB_URL='{state['url']}'"
    if args.format == "json":
        emit_json({"url": state["url"], "port": state["port"], "pid": state["pid"]})
    elif args.export:
        print(export)
    else:
        verb = "is already running" if state.get("already_running") or args.action == "status" else "started"
        print(f"local database {verb}: {state['url']}")
        print(export)
    return EXIT_OK
