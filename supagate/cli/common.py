"""What every command shares: where output goes, the database URL, the stack's settings."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from supagate.errors import BadInput

DB_URL_ENV = "SUPABASE_DB_URL"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(BadInput):
    pass


QUIET = False  # --quiet: no progress, only the report and errors


def err(message: str) -> None:
    """Progress and errors, on stderr (as the Supabase CLI and Pulumi do)."""
    if not QUIET or message.startswith("supagate:"):
        print(message, file=sys.stderr, flush=True)


def out(message: str) -> None:
    """The report itself, on stdout, so `supagate check | less` and `> report.txt` get it."""
    print(message, flush=True)


def emit_json(document: dict) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def db_url(args) -> str:
    url = args.db_url or os.environ.get(DB_URL_ENV, "")
    if not url:
        raise UsageError(f"no database URL: pass --db-url URL or set {DB_URL_ENV} "
                         "(the variable keeps the password off the command line)")
    return url


def stack_settings(stack: str, stack_file: Path | None):
    """The stack's settings from Pulumi.<stack>.yaml (or --stack-file). A stack with no file
    is an error, never a default: a typo must not turn the gates off."""
    from supagate.config.loading import missing_stack_file, settings_from_stack_file

    path = stack_file or Path(f"Pulumi.{stack}.yaml")
    if not path.exists():
        raise UsageError(missing_stack_file(path, stack))
    return settings_from_stack_file(stack, path, functions_dir=Path("supabase/functions"))
