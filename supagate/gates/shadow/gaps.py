"""Telling a gap of the shadow database from a broken migration.

A statement that fails because the shadow lacks something every hosted Supabase project
has (an extension Debian does not ship, an index method of a placeholder extension, a
placeholder function called at migration time) is skipped and reported as
shadow-unsupported; so is a later statement that needs what a skipped one would have
created. Anything else is the migration's own failure."""

from __future__ import annotations

import re

import pglast

# Extensions available on Supabase (dashboard > Database > Extensions) that the shadow lacks.
SUPABASE_EXTENSIONS = {
    "postgis", "postgis_topology", "postgis_raster", "postgis_sfcgal", "postgis_tiger_geocoder", "address_standardizer",
    "pgrouting", "pg_jsonschema", "pg_hashids", "pgroonga", "pgroonga_database", "pgaudit", "plv8", "plcoffee",
    "plls", "timescaledb", "hypopg", "index_advisor", "pg_repack", "pgmq", "rum", "pg_tle", "plpgsql_check",
    "pg_partman", "h3", "h3_postgis", "pg_analytics", "pg_surgery", "pg_walinspect", "pg_stat_monitor", "orioledb",
    "pg_plan_filter", "pgtap", "pg_cron", "vector", "pg_net", "pgsodium", "pgjwt", "http", "wrappers", "pg_graphql",
    "supabase_vault", "moddatetime", "autoinc", "insert_username",
}
SUPABASE_SCHEMAS = {"auth", "storage", "realtime", "vault", "net", "graphql", "graphql_public", "pgsodium",
                    "pgsodium_masks", "supabase_functions", "cron", "pgmq", "extensions", "_realtime", "pgbouncer"}
# Types of extensions the shadow lacks (PostGIS above all).
EXTENSION_TYPES = {"geometry", "geography", "box2d", "box3d", "raster", "h3index", "pgmq.message_record"}
_PLACEHOLDER = "is a placeholder in the supagate shadow database"
_QUOTED = re.compile(r'"([^"]+)"')


class GapRule:
    """Called with each failing statement; remembers what skipped statements would have made."""

    def __init__(self):
        self.missing: set[str] = set()  # names (schema-less too) that skipped statements would create

    def __call__(self, error, statement) -> str | None:
        reason = self._reason(error)
        if reason is not None:
            self.missing |= _created_names(statement.text)
        return reason

    def _reason(self, error) -> str | None:
        message = error.diag.message_primary or str(error)
        state = error.diag.sqlstate or ""
        names = set(_QUOTED.findall(message))
        if _PLACEHOLDER in message:
            return message.split(" (", 1)[0]
        if state in ("0A000", "58P01") and "extension" in message:
            extension = next(iter(names), "")
            if extension in SUPABASE_EXTENSIONS:
                return f'extension "{extension}" is available on Supabase, not in the shadow'
        if state == "42704" and message.startswith("access method") and names & {"hnsw", "ivfflat"}:
            return f"{message}: pgvector's index methods are not in the shadow (its vector type is a placeholder)"
        if state == "42704" and message.startswith("type") and {n.split(".")[-1] for n in names} & EXTENSION_TYPES:
            return f"{message} (it comes with an extension the shadow lacks)"
        if state in ("3F000", "42P01", "42883", "42704") and any(n.split(".")[0] in SUPABASE_SCHEMAS for n in names):
            return f"{message} (an object of Supabase's own schemas the shadow does not reproduce)"
        if state in ("42P01", "42883", "42704", "3F000") and {n.split(".")[-1] for n in names} & self.missing:
            return f"{message} (it depends on a statement skipped above)"
        return None


def _created_names(sql: str) -> set[str]:
    """The objects a statement creates (tables, views, types, functions, schemas, indexes)."""
    try:
        nodes = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return set()
    names = set()
    for raw in nodes:
        node = raw.stmt
        kind = type(node).__name__
        if kind in ("CreateStmt", "CreateForeignTableStmt"):
            rel = node.relation if kind == "CreateStmt" else node.base.relation
            names.add(rel.relname)
        elif kind == "ViewStmt":
            names.add(node.view.relname)
        elif kind == "CreateTableAsStmt":
            names.add(node.into.rel.relname)
        elif kind == "IndexStmt" and node.idxname:
            names.add(node.idxname)
        elif kind == "CreateFunctionStmt":
            names.add(node.funcname[-1].sval)
        elif kind == "CreateSchemaStmt":
            names.add(node.schemaname)
        elif kind in ("CompositeTypeStmt",):
            names.add(node.typevar.relname)
        elif kind in ("CreateEnumStmt", "CreateDomainStmt", "DefineStmt"):
            names.add((node.typeName if kind != "DefineStmt" else node.defnames)[-1].sval)
    return names
