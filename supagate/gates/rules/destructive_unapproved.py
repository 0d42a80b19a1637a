"""destructive-unapproved: DROP TABLE/COLUMN/SCHEMA, TRUNCATE, DELETE without WHERE, a type
change or a rename of a table with RLS, without `-- gate:approve <reason>` and a down
script. Found while replaying statements (gates/catalog/replay.py)."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "destructive-unapproved"


def finding(obj: str, what: str, where, filename: str, approved: bool, has_down: bool) -> Finding | None:
    """`what` the statement at `where` does to `obj`; None when it is approved and reversible."""
    missing = [m for m, ok in (("an approval marker", approved), ("a down script", has_down)) if not ok]
    if not missing:
        return None
    stem = filename[: -len(".sql")]
    return Finding(ID, obj, file=where.file, line=where.line,
                   message=f"{where.file}:{where.line} {what} without {' and '.join(missing)}.",
                   fix="Review the data loss, then add `-- gate:approve <who approved, why>` to the file and a down "
                       f"script at supabase/migrations/down/{stem}.down.sql (or make the change additive: add the "
                       "new column or table and keep the old one).")


RULE = Rule(ID, "a destructive statement without `-- gate:approve` and a down script",
            policy="supabase-migrations-require-approval")
