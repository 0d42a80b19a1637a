"""probe-incomplete: an isolation probe that could not run for a reason other than
permissions. Reported, never passed: the table's isolation is unknown."""

from supagate.findings import ADVISORY, Finding
from supagate.gates.rule import Rule

ID = "probe-incomplete"


def finding(table: str, error: str) -> Finding:
    return Finding(ID, table, source="shadow", message=f"Isolation probe of {table} could not run: {error}.",
                   fix="Give the table's required columns defaults, or cover it with a pgTAP test in "
                       "supabase/tests/database.")


RULE = Rule(ID, "an isolation probe could not seed rows for a table", production=ADVISORY)
