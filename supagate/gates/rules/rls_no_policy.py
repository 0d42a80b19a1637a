"""rls-no-policy: RLS on, no policy (advisory everywhere: deny-all is safe, usually a mistake)."""

from supagate.findings import ADVISORY, Finding
from supagate.gates.rule import Rule

ID = "rls-no-policy"


def end_state(catalog):
    for r in catalog.relations.values():
        if r.kind == "table" and r.schema in catalog.exposed and r.rls and not r.policies:
            yield Finding(ID, r.qualified, file=r.where.file, line=r.where.line,
                          message=f"Table {r.qualified} has row level security but no policy, so the API can read "
                                  "and write nothing in it.",
                          fix="Add the policies its users need, or, if only the service role uses it, say so with "
                              "`-- gate:allow rls-no-policy <reason>` in the migration.")


CATALOG_QUERY = """
    SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%(exposed)s) AND c.relrowsecurity
      AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)"""


def from_catalog(name: str) -> Finding:
    return Finding(ID, name, source="shadow",
                   message=f"Table {name} has row level security but no policy in the migrated database.",
                   fix="Add the policies its users need, or `-- gate:allow rls-no-policy <reason>`.")


RULE = Rule(ID, "RLS on but no policy (deny-all: safe, usually a mistake)", production=ADVISORY,
            policy="supabase-rls-require-policy", end_state=end_state, catalog_query=CATALOG_QUERY,
            from_catalog=from_catalog)
