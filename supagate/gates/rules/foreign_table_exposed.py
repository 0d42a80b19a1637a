"""foreign-table-exposed: a foreign table (wrappers: Stripe, Firebase, S3...) in an exposed
schema readable by anon or authenticated. Foreign tables have no row level security."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "foreign-table-exposed"


def _finding(name: str, file=None, line=None, source="static") -> Finding:
    return Finding(ID, name, file=file, line=line, source=source,
                   message=f"Foreign table {name} is in an exposed schema and readable by the API roles; foreign "
                           "tables have no row level security, so every remote row is served.",
                   fix=f"Move it to a private schema (create schema private; alter foreign table {name} set schema "
                       f"private), or REVOKE ALL ON {name} FROM anon, authenticated; and expose what is needed "
                       "through a security_invoker view or a function that checks the caller.")


def end_state(catalog):
    for r in catalog.relations.values():
        if r.kind == "foreign" and r.schema in catalog.exposed and r.readable_by_api():
            yield _finding(r.qualified, r.where.file, r.where.line)


CATALOG_QUERY = """
    SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'f' AND n.nspname = ANY(%(exposed)s)
      AND (has_table_privilege('anon', c.oid, 'SELECT') OR has_table_privilege('authenticated', c.oid, 'SELECT'))"""


def from_catalog(name: str) -> Finding:
    return _finding(name, source="shadow")


RULE = Rule(ID, "a foreign table in an exposed schema readable by anon/authenticated",
            policy="supabase-foreign-tables-forbid-exposed", end_state=end_state, catalog_query=CATALOG_QUERY,
            from_catalog=from_catalog)
