"""migration-failed: a migration that fails to apply to a fresh (shadow) database. Blocks on
every tier: the files after it were not analysed at all."""

from supagate.findings import MANDATORY, Finding
from supagate.gates.rule import Rule

ID = "migration-failed"


def finding(error) -> Finding:
    """From the runner's MigrationError, which knows the failing file and line."""
    first_line = str(error).splitlines()[0]
    return Finding(ID, error.file or "migrations", file=error.file, line=error.line, source="shadow",
                   message=f"{first_line} (in a fresh database).",
                   fix="Fix the statement so the whole set applies from scratch; `supagate migrate --db-url` on a "
                       "local database shows the full error.")


RULE = Rule(ID, "a migration that fails to apply to a fresh database", staging=MANDATORY, development=MANDATORY)
