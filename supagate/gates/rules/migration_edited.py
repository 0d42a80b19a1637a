"""migration-edited: an applied migration whose file changed (checksum). Decided by the
one history comparison, supagate/migrations/history.py."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "migration-edited"


def finding(migration, target: str) -> Finding:
    where = migration.path or migration.filename
    return Finding(ID, migration.filename, file=where, line=1, source="history",
                   message=f"{migration.filename} was applied to {target} and the file has changed since.",
                   fix=f"Restore the file as applied (git log -p -- {where}) and put the change in a new migration; "
                       f"if the edit is cosmetic, accept it with `supagate migrate --repair {migration.version}`.")


RULE = Rule(ID, "an applied migration whose file changed")
