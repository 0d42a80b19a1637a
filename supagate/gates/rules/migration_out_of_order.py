"""migration-out-of-order: a new migration older than the newest applied one. Decided by
the one history comparison, supagate/migrations/history.py."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "migration-out-of-order"


def finding(migration, target: str, newest: str) -> Finding:
    where = migration.path or migration.filename
    return Finding(ID, migration.filename, file=where, line=1, source="history",
                   message=f"{migration.filename} is new to {target} but older than its newest applied migration "
                           f"({newest}).",
                   fix="Rename it with a current timestamp (supabase migration new <name>, then move the SQL), "
                       "or apply it deliberately with `supagate migrate --include-all`.")


RULE = Rule(ID, "a new migration older than the newest applied one")
