"""matview-exposed: a materialized view in an exposed schema readable by anon/authenticated
(materialized views have no row level security)."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "matview-exposed"


def end_state(catalog):
    for r in catalog.relations.values():
        if r.kind == "matview" and r.schema in catalog.exposed and r.readable_by_api():
            yield Finding(ID, r.qualified, file=r.where.file, line=r.where.line,
                          message=f"Materialized view {r.qualified} in exposed schema {r.schema} is readable by the "
                                  "API roles, and materialized views have no row level security.",
                          fix=f"REVOKE ALL ON {r.qualified} FROM anon, authenticated; and serve it through a "
                              "security_invoker view or function that filters by auth.uid(), or move it to an "
                              "unexposed schema.")


CATALOG_QUERY = """
    SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'm' AND n.nspname = ANY(%(exposed)s)
      AND (has_table_privilege('anon', c.oid, 'SELECT')
           OR has_table_privilege('authenticated', c.oid, 'SELECT'))"""


def from_catalog(name: str) -> Finding:
    return Finding(ID, name, source="shadow",
                   message=f"Materialized view {name} is readable by anon or authenticated in the migrated database.",
                   fix=f"REVOKE ALL ON {name} FROM anon, authenticated.")


RULE = Rule(ID, "a materialized view in an exposed schema readable by anon/authenticated",
            policy="supabase-matviews-forbid-exposed", end_state=end_state, catalog_query=CATALOG_QUERY,
            from_catalog=from_catalog)
