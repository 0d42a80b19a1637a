"""What an interrupted run of a non-transactional file left behind, resolved before the
file runs again.

`CREATE INDEX CONCURRENTLY` commits in stages: a run killed or crashed half-way leaves the
index INVALID (never used by the planner, still maintained on every write), or, killed after
the build but before the history row, a valid index with no history. Before the file runs,
an INVALID index of one of its statements is dropped (concurrently) so it is built again; a
valid one with the statement's exact definition is adopted (the statement is skipped); a
valid one with another definition stops the run. After the file ran, every index it builds
must be valid, or no history row is written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from psycopg import sql

_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


@dataclass(frozen=True)
class IndexPlan:
    number: int  # the statement's number in the file
    schema: str  # schema and index name, as the catalog spells them (a pair: never joined and re-split)
    index: str
    node: object = field(compare=False)  # the parsed statement: normalized only if the index exists

    @property
    def name(self) -> str:
        """For messages: quoted where PostgreSQL would need it."""
        return ".".join(part if _PLAIN.fullmatch(part) else '"' + part.replace('"', '""') + '"'
                        for part in (self.schema, self.index))

    @property
    def definition(self) -> str:
        return _normal(self.node, self.schema)


_FIND = ("SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
         "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
         "WHERE n.nspname = %s AND c.relname = %s")


def planned_indexes(conn, statements) -> list[IndexPlan]:
    """The named indexes built CONCURRENTLY by (number, statement) pairs."""
    import pglast  # only for files with a concurrent build: a plain deploy skips the parser's start-up

    found = []
    for number, statement in statements:
        try:
            node = pglast.parse_sql(statement.text)[0].stmt
        except (pglast.parser.ParseError, IndexError):
            continue
        if type(node).__name__ != "IndexStmt" or not node.concurrent or not node.idxname:
            continue
        schema = node.relation.schemaname
        if not schema:  # where an unqualified table resolves: the first schema of search_path that has it
            row = conn.execute(
                "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.oid = to_regclass(quote_ident(%s))", (node.relation.relname,)).fetchone()
            schema = row[0] if row else conn.execute("SELECT current_schema()").fetchone()[0] or "public"
        found.append(IndexPlan(number, schema, node.idxname, node))
    return found


def _normal(node, schema: str) -> str:
    from copy import deepcopy

    from pglast.stream import RawStream

    node = deepcopy(node)
    node.concurrent = False
    node.if_not_exists = False
    node.relation.schemaname = schema
    node.relation.inh = True
    return RawStream()(node)


def _existing(conn, plan: IndexPlan) -> tuple[bool, str] | None:
    row = conn.execute(_FIND, (plan.schema, plan.index)).fetchone()
    if row is None:
        return None
    import pglast

    node = pglast.parse_sql(row[1])[0].stmt
    return row[0], _normal(node, plan.schema)


def before_run(conn, plans: list[IndexPlan], progress) -> set[int]:
    """Resolve what an interrupted run left; returns the statement numbers to skip."""
    from supagate.migrations.failures import MigrationError

    skip = set()
    for plan in plans:
        existing = _existing(conn, plan)
        if existing is None:
            continue
        valid, definition = existing
        if not valid:
            progress(f"  dropping the INVALID index {plan.name} an interrupted run left, to build it again")
            conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                sql.Identifier(plan.schema, plan.index)))
        elif definition == plan.definition:
            progress(f"  index {plan.name} was built by an interrupted run; adopting it")
            skip.add(plan.number)
        else:
            raise MigrationError(
                f"failed to apply: index {plan.name} already exists with another definition ({definition})\n"
                "Drop or rename the existing index, or give the new one another name, then run again.")
    return skip


def after_run(conn, plans: list[IndexPlan], where: str) -> None:
    """Every index the file builds is usable, or the file is not recorded as applied."""
    from supagate.migrations.failures import MigrationError

    for plan in plans:
        row = conn.execute(_FIND, (plan.schema, plan.index)).fetchone()
        if not (row and row[0]):
            state = "missing" if row is None else "INVALID"
            raise MigrationError(f"failed to apply {where}: index {plan.name} is {state} after the build\n"
                                 "The history row was not written; run again (the INVALID index is dropped and "
                                 "built again).", file=where)
