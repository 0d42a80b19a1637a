"""What each migration did in the shadow: the runner's observer, which takes a catalog
snapshot before the first file and after each, reads the statement log, and turns the
differences into findings attributed to the file and to the statement that most likely
did it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pglast

from supagate.gates.catalog.nodes import walk
from supagate.gates.shadow import quiet_files
from supagate.gates.shadow.catalog_diff import Change, Snapshot, diff, merge, results, snapshot
from supagate.gates.shadow.statement_log import data_losses, log_problem, read_log, reset_log
from supagate.migrations.files import Migration, strip_leading_comments

_RUNS_CODE = re.compile(r"^\s*(do|call|select|perform|execute|with|insert|update|delete)\b", re.IGNORECASE)
_ROUTINE = re.compile(r"create\s+(?:or\s+replace\s+)?(?:function|procedure)\s+([\w$.\"]+)", re.IGNORECASE)


def statement_line(migration: Migration, names: tuple[str, ...]) -> int:
    """The line of the top-level statement that most likely did it: the first that names
    one of `names` (when that one only defines a function or procedure, the first after it
    that calls it), else the first that runs code (DO, CALL, SELECT, DML: a function an
    earlier file defined), else the first statement."""
    statements = migration.statements
    for name in names:
        for index, statement in enumerate(statements):
            if _names(statement.text, name):
                routine = _ROUTINE.match(strip_leading_comments(statement.text))
                if routine:
                    called = routine.group(1).replace('"', "").split(".")[-1]
                    caller = next((s for s in statements[index + 1:] if _names(s.text, called)
                                   and not _ROUTINE.match(strip_leading_comments(s.text))), None)
                    if caller is not None:
                        return caller.line
                return statement.line
    for statement in statements:
        if _RUNS_CODE.match(strip_leading_comments(statement.text)):
            return statement.line
    return statements[0].line if statements else 1


def _names(text: str, name: str) -> bool:
    return re.search(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])", text, re.IGNORECASE) is not None


@dataclass
class FileChanges:
    migration: Migration
    changes: list[Change] = field(default_factory=list)
    unobserved: str | None = None  # why this file's data changes could not be seen


class CatalogWatch:
    """The runner's observer in the shadow: a snapshot before the first file and after each,
    the statement log read and reset with each."""

    def __init__(self) -> None:
        self.files: list[FileChanges] = []
        self._before: Snapshot | None = None
        self._expected: tuple | None = None  # the log's (stats_reset, dealloc) after our reset

    def __call__(self, conn, migration: Migration | None) -> None:
        if migration is None:
            conn.execute(quiet_files.INSTALL)
        else:
            created = self._quietly_added(conn, migration)
            if created is not None:  # the fast path: nothing lost, nothing ran; add what it made
                self._before = merge(conn, self._before, created)
                self.files.append(FileChanges(migration))
                return
        after = snapshot(conn, self._before)
        logging = after.log_on and after.log_schema is not None
        if migration is not None:
            record = FileChanges(migration, diff(self._before, after, lambda *types: _type_names(conn, types)))
            record.unobserved = self._unobserved(after)
            if record.unobserved is None:
                queries = read_log(conn, after.log_schema)
                record.unobserved = log_problem(queries)
                record.changes += data_losses(queries, self._before, after)
            self.files.append(record)
        if logging:
            self._expected = reset_log(conn, after.log_schema)
        self._before = after

    def _quietly_added(self, conn, migration: Migration) -> dict | None:
        """What a file that only adds created (oids by catalog), when its text and the event
        log agree; else None. The event log is read and emptied after every file."""
        import psycopg

        try:
            events, ((watchers, others),) = results(conn, quiet_files.READ)
        except psycopg.Error:
            return None  # the watch is gone (a migration dropped it): observe in full
        if not quiet_files.additive(migration):
            return None
        return quiet_files.confirmed(events, watchers, others, self._before.role, self._known)

    def _known(self, catalog: str, oid: int) -> bool:
        before = self._before
        return oid in {"pg_class": before.relations, "pg_proc": before.functions, "pg_namespace": before.schemas
                       }.get(catalog, ())

    def close(self, conn) -> None:
        """Remove the shadow's event triggers (before the catalog checks and the advisors)."""
        conn.execute(quiet_files.REMOVE)

    def _unobserved(self, after: Snapshot) -> str | None:
        """Why the statement log cannot be trusted for the file that just ran, or None."""
        if after.log_schema is None:
            return "pg_stat_statements is not installed"
        if not (after.log_on and self._before.log_on):
            return "pg_stat_statements.track is not `all`, or track_utility is off"
        if after.log_state[0] != self._expected[0]:
            return "the statement log was reset while it ran"
        if after.log_state[1] != self._expected[1]:
            return "the statement log overflowed (entries were evicted) while it ran"
        return None

    def findings(self, result, gaps) -> list:
        """Findings per file; fills result.losses and result.observed."""
        from supagate.gates.catalog.model import Where
        from supagate.gates.markers import GateInputError, read_markers
        from supagate.gates.rules import destructive_unapproved, not_analysed, privilege_widened

        gap_files = {g.file for g in gaps}
        found = []
        for record in self.files:
            migration = record.migration
            where_file = migration.path or migration.filename
            try:
                approved = read_markers(migration.sql, where_file).approve is not None
            except GateInputError:
                approved = False  # static analysis reports the bad marker
            for change in record.changes:
                if change.kind == "widened":
                    result.widened.add((where_file, change.object))
                    continue
                where = Where(where_file, statement_line(migration, change.names), migration.version)
                if change.kind == "loss":
                    result.losses.add((where_file, change.object))
                    finding = destructive_unapproved.finding(change.object, change.what, where, migration.filename,
                                                             approved, migration.down_sql is not None, "shadow")
                else:
                    finding = privilege_widened.finding(change.object, change.what, where)
                if finding is not None:
                    found.append(finding)
            if record.unobserved:
                found.append(not_analysed.unobserved(where_file, record.unobserved))
            elif where_file not in gap_files:
                result.observed.add(where_file)
        return found


def runs_code(conn, text: str) -> bool:
    """Whether a statement runs code the migrations wrote (a DO block, CALL, or a call of a
    function outside pg_catalog and Supabase's own schemas), so skipping it leaves its
    effects unanalysed."""
    from supagate.gates.shadow.gaps import SUPABASE_SCHEMAS

    try:
        nodes = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return True
    unqualified = set()
    for node in walk(nodes):
        kind = type(node).__name__
        if kind in ("DoStmt", "CallStmt"):
            return True
        if kind == "FuncCall":
            names = [n.sval for n in node.funcname]
            if len(names) > 1:
                if names[0] not in SUPABASE_SCHEMAS and names[0] != "pg_catalog":
                    return True
            else:
                unqualified.add(names[0])
    for name in unqualified:
        builtin = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE proname = %s "
                               "AND pronamespace = 'pg_catalog'::regnamespace)", (name,)).fetchone()[0]
        if not builtin:
            return True
    return False


def _type_names(conn, types) -> list[str]:
    """format_type of each (type oid, modifier), in order."""
    return [r[0] for r in conn.execute(
        "SELECT pg_catalog.format_type(t.oid, t.mod) FROM unnest(%s::oid[], %s::int[]) WITH ORDINALITY "
        "AS t(oid, mod, n) ORDER BY t.n", ([t[0] for t in types], [t[1] for t in types])).fetchall()]
