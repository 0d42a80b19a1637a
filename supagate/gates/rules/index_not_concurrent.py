"""index-not-concurrent: CREATE INDEX without CONCURRENTLY on a table an earlier migration
created (it blocks writes while it builds). Found while replaying statements."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "index-not-concurrent"


def finding(index: str, table: str, where, created_in: str) -> Finding:
    return Finding(ID, index or table, file=where.file, line=where.line,
                   message=f"{where.file}:{where.line} builds index {index} on {table} without CONCURRENTLY, "
                           f"blocking writes to a table created by {created_in}.".replace("  ", " "),
                   fix="Use CREATE INDEX CONCURRENTLY in a migration file of its own (it cannot run in a "
                       "transaction; supagate runs such a file outside one).")


RULE = Rule(ID, "CREATE INDEX without CONCURRENTLY on a table of an earlier migration",
            policy="supabase-indexes-require-concurrently")
