"""policy-permissive-write: an INSERT/UPDATE/DELETE/ALL policy for anon or PUBLIC that is `true`."""

from supagate.findings import Finding
from supagate.gates.catalog.model import is_true
from supagate.gates.rule import Rule

ID = "policy-permissive-write"


def end_state(catalog):
    for relation, policy in catalog.policies():
        broad = policy.broad_roles()
        if not (broad and policy.permissive and policy.command in ("insert", "update", "delete", "all")):
            continue
        write_true = (is_true(policy.check) if policy.command == "insert"
                      else is_true(policy.using) or (policy.command != "delete" and is_true(policy.check)))
        if write_true:
            yield Finding(ID, policy.label(relation), file=policy.where.file, line=policy.where.line,
                          message=f"Policy \"{policy.name}\" on {relation.qualified} lets {'/'.join(broad)} "
                                  f"{policy.command.upper()} any row (its condition is true).",
                          fix="Add TO authenticated and a condition on the owner, e.g. "
                              "WITH CHECK ((select auth.uid()) = user_id).")


CATALOG_QUERY = """
    SELECT schemaname || '.' || tablename || ' policy "' || policyname || '"' FROM pg_policies
    WHERE schemaname = ANY(%(exposed)s) AND permissive = 'PERMISSIVE'
      AND roles && ARRAY['public', 'anon']::name[]
      AND cmd IN ('INSERT', 'UPDATE', 'DELETE', 'ALL')
      AND (qual = 'true' OR with_check = 'true')"""


def from_catalog(name: str) -> Finding:
    return Finding(ID, name, source="shadow", message=f"{name} lets anon/PUBLIC write any row in the migrated database.",
                   fix="Add TO authenticated and an owner condition.")


RULE = Rule(ID, "an INSERT/UPDATE/DELETE/ALL policy for anon or PUBLIC that is true",
            policy="supabase-policies-forbid-public-write", end_state=end_state, catalog_query=CATALOG_QUERY,
            from_catalog=from_catalog)
