"""The statements the shadow's server executed while a migration ran, nested ones included
(pg_stat_statements with `track = all`: what a DO block, EXECUTE, a called function or
procedure or a trigger ran), and the rows they removed. Catalogs do not show rows removed,
and the shadow's tables are empty, so what was run decides."""

from __future__ import annotations

import re

import pglast

from supagate.gates.catalog.nodes import reads_a_column, walk
from supagate.gates.shadow.catalog_diff import OWN_SCHEMAS, Change, Snapshot

# For the shadow's migration session (as a startup option, so a migration's RESET ALL
# returns to it): nested statements are logged too.
LOG_EVERYTHING = "-c pg_stat_statements.track=all"


def read_log(conn, schema: str) -> list[str]:
    """The statements the server executed since the last reset (nested ones too)."""
    rows = conn.execute(f'SELECT query FROM "{schema}".pg_stat_statements '
                        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())").fetchall()
    return [r[0] for r in rows]


def reset_log(conn, schema: str) -> tuple:
    """Empty the log; returns its (stats_reset, dealloc) right after, to compare with later."""
    conn.execute(f'SELECT "{schema}".pg_stat_statements_reset()')
    return tuple(conn.execute(f'SELECT stats_reset::text, dealloc FROM "{schema}".pg_stat_statements_info').fetchone())

_SETS_THE_LOG = re.compile(r"^\s*(set\s+(local\s+|session\s+)?|reset\s+)pg_stat_statements\.", re.IGNORECASE)


def log_problem(queries: list[str]) -> str | None:
    """Why the log of a file cannot be trusted, from what it holds: a statement that
    changed what the log records (SET pg_stat_statements.*, run through EXECUTE)."""
    for query in queries:
        if _SETS_THE_LOG.search(query):
            return "a statement changed what pg_stat_statements records"
    return None


def data_losses(queries: list[str], before: Snapshot, after: Snapshot) -> list[Change]:
    """Rows removed or rewritten by what the server ran (nested statements, data-modifying
    CTEs and new pg_cron jobs' commands too): TRUNCATE (any with CASCADE), DELETE or MERGE
    ... DELETE without a condition on the rows (no WHERE, or one that reads no column),
    `ALTER COLUMN ... TYPE ... USING`, on a table that existed before the file, or on one
    the file neither created nor found (a table renamed for the occasion)."""
    existed = {f"{r[0]}.{r[1]}" for r in before.relations.values() if r[2] in ("r", "p")}
    bare = {}
    for key in existed:
        bare.setdefault(key.split(".", 1)[1], key)
    parsed = []
    unreadable: list[str] = []
    created: set[str] = set()
    jobs = [command for job, command in after.jobs.items() if before.jobs.get(job) != command]
    for query, scheduled in [(q, False) for q in queries] + [(c, True) for c in jobs]:
        if not re.search(r"\b(delete|truncate|merge|using|create)\b", query, re.IGNORECASE):
            continue
        try:
            nodes = pglast.parse_sql(query)
        except pglast.parser.ParseError:
            # pglast reads PostgreSQL 17's grammar: what the shadow ran but it cannot read
            # (a word reserved since, `as system_user`) may be the very DELETE.
            unreadable.append(query)
            continue
        for node in walk(nodes):
            if type(node).__name__ in ("CreateStmt", "CreateTableAsStmt"):
                rel = node.relation if type(node).__name__ == "CreateStmt" else node.into.rel
                created.add(rel.relname)
        parsed.append((nodes, scheduled))
    found: dict[str, Change] = {}
    for nodes, scheduled in parsed:
        for node, verb, always in _row_losses(nodes):
            if node.schemaname in OWN_SCHEMAS:
                continue  # the shadow's own bookkeeping (its event log)
            key = f"{node.schemaname}.{node.relname}" if node.schemaname else bare.get(node.relname)
            unknown = key not in existed and node.relname not in created  # renamed for the occasion
            if always or key in existed or unknown:
                key = key or node.relname
                what = f"{'schedules a pg_cron job that ' if scheduled else ''}{verb} {key}"
                found.setdefault(key, Change(key, what, "loss", (node.relname,)))
    for query in unreadable:
        if re.search(r"\b(delete|truncate|merge)\b", query, re.IGNORECASE):
            head = " ".join(query.split())[:60]
            found.setdefault(head, Change(head, f"ran a statement the gate cannot read ({head}...), which may "
                                          "remove rows", "loss", ()))
    return list(found.values())


def _row_losses(nodes):
    """(range var, what it does, whether it is a loss whatever the table) per statement."""
    for node in walk(nodes):
        kind = type(node).__name__
        if kind == "TruncateStmt":
            for rangevar in node.relations:
                yield rangevar, "truncates" + (" (CASCADE)" if node.behavior.name == "DROP_CASCADE" else ""), \
                    node.behavior.name == "DROP_CASCADE"
        elif kind == "DeleteStmt" and not reads_a_column(node.whereClause):
            yield node.relation, "deletes every row of", False
        elif kind == "MergeStmt" and any(_merge_deletes(w) for w in node.mergeWhenClauses or ()):
            yield node.relation, "deletes rows of (MERGE ... DELETE)", False
        elif kind == "AlterTableStmt":
            for cmd in node.cmds or ():
                if cmd.subtype.name == "AT_AlterColumnType" and getattr(cmd.def_, "raw_default", None) is not None:
                    yield node.relation, f"rewrites every value of column {cmd.name} (TYPE ... USING) of", False


def _merge_deletes(clause) -> bool:
    return clause.commandType.name == "CMD_DELETE"
