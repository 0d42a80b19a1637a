"""rls-missing: a table in an exposed schema ends the migration set without RLS."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "rls-missing"


def end_state(catalog):
    for r in catalog.relations.values():
        if r.kind == "table" and r.schema in catalog.exposed and not r.rls and r.rls_where is None:
            yield Finding(ID, r.qualified, file=r.where.file, line=r.where.line,
                          message=f"Table {r.qualified}, created at {r.where}, is in exposed schema {r.schema} "
                                  "and ends the migrations without row level security.",
                          fix=f"Add ALTER TABLE {r.qualified} ENABLE ROW LEVEL SECURITY; and a policy per operation "
                              "(e.g. USING ((select auth.uid()) = user_id)), or move it to a schema the API does "
                              "not expose.")


CATALOG_QUERY = """
    SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%(exposed)s) AND NOT c.relrowsecurity"""


def from_catalog(name: str) -> Finding:
    return Finding(ID, name, source="shadow",
                   message=f"Table {name} in an exposed schema has no row level security in the migrated database.",
                   fix=f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY; and add policies (look for a DO block, "
                       "a rename or a function that created or replaced it).")


RULE = Rule(ID, "a table in an exposed schema ends the migration set without RLS",
            policy="supabase-rls-require-enabled", end_state=end_state, catalog_query=CATALOG_QUERY,
            from_catalog=from_catalog)
