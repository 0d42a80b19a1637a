"""function-search-path: a SECURITY DEFINER function without a pinned `search_path`."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "function-search-path"
# Objects of the platform itself, not of the migrations under review.
PLATFORM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "auth", "extensions", "cron",
                    "supabase_migrations", "graphql_public", "storage", "realtime", "vault", "pgsodium")


def end_state(catalog):
    for f in catalog.functions.values():
        if f.security_definer and not f.search_path:
            yield Finding(ID, f.name, file=f.where.file, line=f.where.line,
                          message=f"SECURITY DEFINER function {f.name} has no pinned search_path, so a caller's "
                                  "objects can shadow what it uses and run with its owner's rights.",
                          fix=f"Add SET search_path = '' to the function and schema-qualify every name in its body "
                              f"(or ALTER FUNCTION {f.name} SET search_path = '').")


CATALOG_QUERY = """
    SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.prosecdef AND n.nspname <> ALL(%(platform)s) AND n.nspname NOT LIKE 'pg\\_%%'
      AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) s WHERE s LIKE 'search\\_path=%%')"""


def from_catalog(name: str) -> Finding:
    return Finding(ID, name, source="shadow",
                   message=f"SECURITY DEFINER function {name} has no pinned search_path in the migrated database.",
                   fix=f"ALTER FUNCTION {name} SET search_path = ''; and schema-qualify its body.")


RULE = Rule(ID, "a SECURITY DEFINER function without a pinned search_path",
            policy="supabase-functions-require-search-path", end_state=end_state, catalog_query=CATALOG_QUERY,
            from_catalog=from_catalog)
