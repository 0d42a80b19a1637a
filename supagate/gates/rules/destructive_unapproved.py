"""destructive-unapproved: a loss without `-- gate:approve <reason>` and a down script: a
table, column or schema dropped, rows removed by TRUNCATE or DELETE without WHERE, a type
change that can lose data, a table with RLS renamed, a restrictive policy or a trigger
removed. The shadow database's catalog decides what was lost, however the SQL was written
(gates/shadow/catalog_diff.py); static analysis (gates/catalog/replay.py) adds the line."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "destructive-unapproved"


def finding(obj: str, what: str, where, filename: str, approved: bool, has_down: bool,
            source: str = "static") -> Finding | None:
    """`what` the statement at `where` does to `obj`; None when it is approved and reversible."""
    missing = [m for m, ok in (("an approval marker", approved), ("a down script", has_down)) if not ok]
    if not missing:
        return None
    stem = filename[: -len(".sql")]
    seen = " (the shadow database saw it happen when this file ran)" if source == "shadow" else ""
    return Finding(ID, obj, file=where.file, line=where.line, source=source,
                   message=f"{where.file}:{where.line} {what} without {' and '.join(missing)}{seen}.",
                   fix="Review the data loss, then add `-- gate:approve <who approved, why>` to the file and a down "
                       f"script at supabase/migrations/down/{stem}.down.sql (or make the change additive: add the "
                       "new column or table and keep the old one).")


RULE = Rule(ID, "a destructive statement without `-- gate:approve` and a down script",
            policy="supabase-migrations-require-approval")


def evidence(finding: Finding) -> str:
    """What can confirm a static finding of this rule in the shadow: "catalog" (a drop, a
    rename: the catalog diff sees it or it did not happen), "type" (a type change: dropped
    only when the shadow saw it keep every value), or "kept" (rows removed, or code the
    shadow may not have run all of: an empty shadow table or an untaken branch proves
    nothing)."""
    if CODE_MARK in finding.message or " truncates " in finding.message or "deletes every row" in finding.message:
        return "kept"
    if "changes the type of" in finding.message:
        return "type"
    return "catalog"


CODE_MARK = "inside code the migration runs"
