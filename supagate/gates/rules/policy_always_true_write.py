"""policy-always-true-write: an UPDATE, DELETE or ALL policy `using (true)` for anon or
authenticated on any table in an exposed schema, owner column or not: any signed-in user
may change or delete every row."""

from supagate.findings import Finding
from supagate.gates.catalog.model import is_true
from supagate.gates.rule import Rule

ID = "policy-always-true-write"


def _finding(name: str, command: str, roles, file=None, line=None, source="static") -> Finding:
    return Finding(ID, name, file=file, line=line, source=source,
                   message=f"{name} lets {'/'.join(roles)} {command.upper()} every row (USING (true)): any "
                           f"{'caller' if 'anon' in roles or 'public' in roles else 'signed-in user'} may change or "
                           "delete rows that are not theirs.",
                   fix="Give the USING clause a condition on who may touch the row (an owner, a membership), or "
                       "`-- gate:allow policy-always-true-write <why every user may>` where that is really meant.")


def end_state(catalog):
    for relation, policy in catalog.policies():
        roles = [r for r in policy.roles if r in ("anon", "authenticated", "public")]
        if (roles and policy.permissive and relation.schema in catalog.exposed
                and policy.command in ("update", "delete", "all") and is_true(policy.using)):
            yield _finding(policy.label(relation), policy.command, roles, policy.where.file, policy.where.line)


CATALOG_QUERY = """
    SELECT schemaname || '.' || tablename || ' policy "' || policyname || '"', lower(cmd),
           ARRAY(SELECT r FROM unnest(roles::text[]) r WHERE r IN ('anon', 'authenticated', 'public'))
    FROM pg_policies
    WHERE schemaname = ANY(%(exposed)s) AND permissive = 'PERMISSIVE' AND cmd IN ('UPDATE', 'DELETE', 'ALL')
      AND roles && ARRAY['public', 'anon', 'authenticated']::name[] AND qual = 'true'"""


def from_catalog(name: str, command: str, roles) -> Finding:
    return _finding(name, command, roles, source="shadow")


RULE = Rule(ID, "an UPDATE/DELETE/ALL policy using (true) for anon/authenticated on an exposed table",
            policy="supabase-policies-forbid-always-true-write", end_state=end_state, catalog_query=CATALOG_QUERY,
            from_catalog=from_catalog)
