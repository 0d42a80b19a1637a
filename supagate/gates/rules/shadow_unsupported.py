"""shadow-unsupported: the shadow database lacks something a hosted Supabase project has,
so a statement could not run there. A gap of ours, named as such (advisory everywhere);
the statement was skipped and the rest of the set applied."""

from supagate.findings import ADVISORY, Finding
from supagate.gates.rule import Rule

ID = "shadow-unsupported"


def finding(file: str, line: int, text: str, reason: str) -> Finding:
    head = " ".join(text.split())[:80]
    return Finding(ID, head, file=file, line=line, source="shadow",
                   message=f"{file}:{line} could not run in the shadow database: {reason}. This exists on Supabase; "
                           "the shadow does not have it yet, so what depends on it was not checked there.",
                   fix="Nothing to change in the migration. Checks that need the object (probes, catalog rules) "
                       "did not see it; cover it with a pgTAP test in supabase/tests if it matters for access.")


RULE = Rule(ID, "a statement the shadow database cannot run for want of something Supabase has",
            production=ADVISORY)
