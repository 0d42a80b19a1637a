"""rls-isolation-leak: in the shadow database, a user reaches another user's rows, or anon
sees personal rows (gates/shadow/probes.py runs the probes)."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "rls-isolation-leak"


def finding(table: str, verb: str, role: str, detail: str, owner: str | None) -> Finding:
    return Finding(ID, f"{table} {verb} as {role}", source="shadow",
                   message=f"In the shadow database, {role} {detail} in {table}.",
                   fix=f"Tighten the {verb} policies of {table}: TO authenticated with "
                       f"USING/WITH CHECK ((select auth.uid()) = {owner or 'user_id'}).")


RULE = Rule(ID, "a user reaches another user's rows, or anon sees personal rows")
