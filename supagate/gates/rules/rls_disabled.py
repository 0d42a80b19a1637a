"""rls-disabled: DISABLE ROW LEVEL SECURITY on a table in an exposed schema."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "rls-disabled"


def end_state(catalog):
    for r in catalog.relations.values():
        if r.kind == "table" and r.schema in catalog.exposed and not r.rls and r.rls_where is not None:
            yield Finding(ID, r.qualified, file=r.rls_where.file, line=r.rls_where.line,
                          message=f"{r.rls_where} disables row level security on {r.qualified}, in exposed schema "
                                  f"{r.schema}, so the API serves every row to anyone with the anon key.",
                          fix=f"Remove the DISABLE, or re-enable it in a later migration: "
                              f"ALTER TABLE {r.qualified} ENABLE ROW LEVEL SECURITY; then add policies.")


def dynamic(name: str, finding: Finding) -> Finding:
    """The shadow found no RLS on a table the SQL as written protects: dynamic SQL did it."""
    from dataclasses import replace

    return replace(finding, rule=ID,
                   message=f"Table {name} has row level security in the SQL as written but not in the migrated "
                           "database: dynamic SQL (a DO block or a function) turned it off.",
                   fix=f"Find the EXECUTE that disables it and remove it, or re-enable it after: "
                       f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;")


RULE = Rule(ID, "DISABLE ROW LEVEL SECURITY on a table in an exposed schema",
            policy="supabase-rls-forbid-disable", end_state=end_state)
