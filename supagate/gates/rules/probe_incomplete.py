"""probe-incomplete: an isolation probe that could not run for a reason other than a
permission or a policy (fail closed): the table's isolation is unknown, so it is reported,
never passed. Mandatory on production."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "probe-incomplete"


def finding(table: str, verb: str, error: str) -> Finding:
    return Finding(ID, f"{table} {verb}", source="shadow",
                   message=f"The isolation probe could not {verb} on {table} ({error}), so whether other users' "
                           "rows are reachable there is unknown.",
                   fix="Give the table's required columns defaults the probe can rely on, fix what the error names "
                       "(a trigger or constraint that rejects the probe's rows), or cover the table with a pgTAP "
                       "test and `-- gate:allow probe-incomplete <which test>`.")


RULE = Rule(ID, "an isolation probe that failed for a reason other than permissions")
