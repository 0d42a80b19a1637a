"""policy-public-read-personal: a SELECT policy that is `true` for anon/PUBLIC on a table
holding personal data (an owner column, a foreign key to auth.users, contact fields)."""

from supagate.findings import Finding
from supagate.gates.catalog.model import is_true
from supagate.gates.rule import Rule

ID = "policy-public-read-personal"


def end_state(catalog):
    for relation, policy in catalog.policies():
        broad = policy.broad_roles()
        if (broad and policy.permissive and policy.command in ("select", "all") and is_true(policy.using)
                and relation.personal):
            yield Finding(ID, policy.label(relation), file=policy.where.file, line=policy.where.line,
                          message=f"Policy \"{policy.name}\" lets {'/'.join(broad)} read every row of "
                                  f"{relation.qualified}, which holds personal data.",
                          fix="Restrict it: TO authenticated USING ((select auth.uid()) = user_id); "
                              "publish non-personal columns through a security_invoker view if they must be public.")


RULE = Rule(ID, "a SELECT policy that is true for anon/PUBLIC on personal data",
            policy="supabase-policies-forbid-public-read-personal", end_state=end_state)
