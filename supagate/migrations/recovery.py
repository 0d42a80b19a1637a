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

from dataclasses import dataclass, field

from supagate.postgres.sql_values import identifier


@dataclass(frozen=True)
class IndexPlan:
    number: int  # the statement's number in the file
    name: str  # schema-qualified
    node: object = field(compare=False)  # the parsed statement: normalized only if the index exists

    @property
    def definition(self) -> str:
        return _normal(self.node, self.name.split(".", 1)[0])


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
        schema = node.relation.schemaname or conn.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = to_regclass(%s)", (node.relation.relname,)).fetchone()
        schema = schema if isinstance(schema, str) else (schema[0] if schema else "public")
        found.append(IndexPlan(number, f"{schema}.{node.idxname}", node))
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


def _existing(conn, name: str) -> tuple[bool, str] | None:
    row = conn.execute("SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                       "WHERE i.indexrelid = to_regclass(%s)", (name,)).fetchone()
    if row is None:
        return None
    import pglast

    node = pglast.parse_sql(row[1])[0].stmt
    return row[0], _normal(node, name.split(".", 1)[0])


def before_run(conn, plans: list[IndexPlan], progress) -> set[int]:
    """Resolve what an interrupted run left; returns the statement numbers to skip."""
    from supagate.migrations.failures import MigrationError

    skip = set()
    for plan in plans:
        existing = _existing(conn, plan.name)
        if existing is None:
            continue
        valid, definition = existing
        if not valid:
            progress(f"  dropping the INVALID index {plan.name} an interrupted run left, to build it again")
            conn.execute("DROP INDEX CONCURRENTLY IF EXISTS " + identifier(*plan.name.split(".", 1)))
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

    if not plans:
        return
    valid = dict(conn.execute("SELECT p.name, i.indisvalid FROM unnest(%s::text[]) AS p(name) "
                              "JOIN pg_index i ON i.indexrelid = to_regclass(p.name)",
                              ([plan.name for plan in plans],)).fetchall())
    for plan in plans:
        if not valid.get(plan.name):
            state = "missing" if plan.name not in valid else "INVALID"
            raise MigrationError(f"failed to apply {where}: index {plan.name} is {state} after the build\n"
                                 "The history row was not written; run again (the INVALID index is dropped and "
                                 "built again).", file=where)
