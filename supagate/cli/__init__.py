"""`supagate`: the command-line front door to the same code the Pulumi program uses.

One module per command (as the Supabase CLI has one per command), each registering its
parser; a command imports what it needs only when it runs, so start-up stays cheap.
Exit codes: 0 ok, 1 blocked or failed, 2 bad usage or bad input. Reports go to stdout
(one JSON document with `--format json`), progress and errors to stderr. No colour.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from supagate import __version__
from supagate.cli.common import DB_URL_ENV, EXIT_FAILED, EXIT_USAGE, err
from supagate.errors import BadInput, Failed

# In the order `supagate --help` lists them; each is the module supagate/cli/<name>.py.
COMMANDS = ("init", "migrate", "check", "plan", "verify", "test", "db", "workflows", "local", "alerts", "ops",
            "flags")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the arguments, only the named command's module is loaded and its
    options built (all twelve cost more than a migration of a few files), else every
    command's, for help."""
    parser = argparse.ArgumentParser(prog="supagate", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"supagate {__version__}")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr; reports and errors only")
    sub = parser.add_subparsers(dest="command", required=True)
    named = next((a for a in argv or () if not a.startswith("-")), None)
    for name in [named] if named in COMMANDS else COMMANDS:
        importlib.import_module(f"supagate.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    from supagate.cli import common

    common.QUIET = args.quiet
    try:
        return args.func(args)
    except BadInput as exc:
        err(f"supagate: {exc}")
        return EXIT_USAGE
    except Failed as exc:
        err(f"supagate: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        err("supagate: interrupted")
        return 130
    except Exception as exc:
        # A database error no step explained (psycopg is loaded only by commands that use it).
        psycopg = sys.modules.get("psycopg")
        if psycopg is None or not isinstance(exc, psycopg.Error):
            raise
        from supagate.secrets import redact

        url = getattr(args, "db_url", None) or os.environ.get(DB_URL_ENV)
        err(f"supagate: failed to {args.command}: {redact(str(exc).strip(), url)}\n"
            "Check the database is reachable and the user may create schemas and tables.")
        return EXIT_FAILED


def entry() -> None:
    """The console script (and `python -m supagate.cli`): main(), then out without tearing
    the interpreter down, which takes ~40 ms once psycopg is loaded (a migration of 50 files
    takes 65 ms). Exit handlers still run (a throwaway cluster is stopped) and output is
    flushed; the OS closes the rest. An uncaught exception exits the usual way."""
    code = main()
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to say
            pass
    os._exit(int(code or 0))


if __name__ == "__main__":
    entry()
