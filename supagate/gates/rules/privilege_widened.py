"""privilege-widened: the shadow's catalog shows a migration gave an API role (anon,
authenticated, PUBLIC) a privilege it did not have on an object that already existed, or
widened the default privileges of new objects. Reported so a reviewer sees it, however it
was written (GRANT, EXECUTE in a DO block, a function); advisory, because whether it
exposes anything is what the end-state rules judge (rls-missing, function-definer-exposed,
matview-exposed, the isolation probes)."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "privilege-widened"


def finding(obj: str, what: str, where) -> Finding:
    return Finding(ID, obj, file=where.file, line=where.line, source="shadow",
                   message=f"{where.file}:{where.line} {what} (the shadow database saw it happen when this file ran).",
                   fix="Check that the API roles need this privilege; if not, revoke it in the same migration "
                       "(REVOKE ... FROM anon, authenticated).")


RULE = Rule(ID, "a privilege an API role gains on an existing object", production="advisory")
