"""view-auth-users: a view in an exposed schema that reads `auth.users`."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "view-auth-users"


def end_state(catalog):
    for r in catalog.relations.values():
        if r.kind in ("view", "matview") and r.schema in catalog.exposed and r.reads_auth_users:
            kind = "Materialized view" if r.kind == "matview" else "View"
            yield Finding(ID, r.qualified, file=r.where.file, line=r.where.line,
                          message=f"{kind} {r.qualified} in exposed schema {r.schema} reads auth.users, exposing "
                                  "users' emails and metadata.",
                          fix="Read a public profiles table kept in sync by a trigger instead, or move the view to "
                              "an unexposed schema.")


CATALOG_QUERY = """
    SELECT DISTINCT n.nspname || '.' || c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_rewrite r ON r.ev_class = c.oid
    JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass
    WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY(%(exposed)s)
      AND d.refobjid = 'auth.users'::regclass"""


def from_catalog(name: str) -> Finding:
    return Finding(ID, name, source="shadow",
                   message=f"View {name} in an exposed schema depends on auth.users in the migrated database.",
                   fix="Read a public profiles table instead, or move the view out of the exposed schemas.")


RULE = Rule(ID, "a view in an exposed schema that reads auth.users", policy="supabase-views-forbid-auth-users",
            end_state=end_state, catalog_query=CATALOG_QUERY, from_catalog=from_catalog)
