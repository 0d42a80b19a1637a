"""view-security-definer: a view in an exposed schema without `security_invoker = true`."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "view-security-definer"


def end_state(catalog):
    for r in catalog.relations.values():
        if r.kind == "view" and r.schema in catalog.exposed and not r.security_invoker:
            yield Finding(ID, r.qualified, file=r.where.file, line=r.where.line,
                          message=f"View {r.qualified} in exposed schema {r.schema} runs with its owner's rights, "
                                  "bypassing the row level security of the tables it reads.",
                          fix=f"Create it WITH (security_invoker = true), or ALTER VIEW {r.qualified} "
                              "SET (security_invoker = true).")


CATALOG_QUERY = """
    SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'v' AND n.nspname = ANY(%(exposed)s)
      AND NOT coalesce(c.reloptions && ARRAY['security_invoker=true', 'security_invoker=on',
                                             'security_invoker=1'], false)"""


def from_catalog(name: str) -> Finding:
    return Finding(ID, name, source="shadow", message=f"View {name} runs with its owner's rights in the migrated database.",
                   fix=f"ALTER VIEW {name} SET (security_invoker = true).")


RULE = Rule(ID, "a view in an exposed schema without security_invoker = true",
            policy="supabase-views-require-security-invoker", end_state=end_state, catalog_query=CATALOG_QUERY,
            from_catalog=from_catalog)
