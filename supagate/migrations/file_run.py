"""Running one file of a migration run: its query, the session guard, its history row.

A transactional file is one simple-protocol query: BEGIN, the session guard (session.py),
its timeouts, its statements as written, the guard, the staged row's check, the history
rows, the guard again, and COMMIT. The server reads the
whole text at once under the settings the gate read it with. The history values never
enter SQL text: `stage` sends those of every file of the run as parameters (COPY) into
pg_temp.supagate_pending before the first file, and each file's query copies its own row
by number. A file that cannot run in a transaction sends its statements one by one, with
the guard before each, then its history."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import psycopg

from supagate.migrations import recovery, session
from supagate.migrations.failures import MigrationError, locate_failure, statement_error
from supagate.migrations.files import Migration
from supagate.migrations.options import Options

UPSERT = """
    ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum,
        down_sql = excluded.down_sql, transactional = excluded.transactional,
        applied_at = pg_catalog.now(), applied_by = excluded.applied_by, duration_ms = excluded.duration_ms"""
# The values of every file this run sends, as parameters, before the first file runs.
STAGE = """CREATE TEMPORARY TABLE IF NOT EXISTS supagate_pending (
    ord integer PRIMARY KEY, version text NOT NULL, name text NOT NULL, statements text[], checksum text,
    down_sql text, transactional boolean, actor text)"""
STAGE_COPY = ("COPY pg_temp.supagate_pending (ord, version, name, statements, checksum, down_sql, transactional, "
              "actor) FROM STDIN")
_FROM_STAGE = " FROM pg_temp.supagate_pending p WHERE p.ord OPERATOR(pg_catalog.=) {ord}"
# The server measures a transactional file itself (from the query's start).
_ELAPSED = ("CAST(EXTRACT(epoch FROM pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) "
            "pg_catalog.statement_timestamp()) OPERATOR(pg_catalog.*) 1000 AS pg_catalog.int4)")


# (error, statement) -> why the failure is a gap of the database rather than of the SQL, or None.
GapRule = Callable[[psycopg.Error, object], "str | None"]


@dataclass(frozen=True)
class SkippedStatement:
    """A statement the shadow database could not run for want of something Supabase has."""
    file: str
    line: int
    text: str
    reason: str


def stage(conn: psycopg.Connection, items: list[tuple[Migration, str]]) -> tuple[str, dict[int, str]]:
    """Check the session reads SQL as the gate does, and send the history values of every
    file of this run as parameters. Returns the session guard (built once from the session
    user's and the history tables' oids) and each staged row's digest (so a migration that
    edits a later file's row is caught)."""
    role, schema, *tables = conn.execute(
        "SELECT (SELECT oid::int8 FROM pg_catalog.pg_roles WHERE rolname = session_user), "
        "'supabase_migrations'::regnamespace::oid::int8, 'supabase_migrations.schema_migrations'::regclass::oid::int8, "
        "'supabase_migrations.supagate_migrations'::regclass::oid::int8").fetchone()
    guard = session.guard_sql(role, schema, tuple(tables))
    try:
        conn.execute(guard)
    except psycopg.Error as exc:
        seen = session.changed(exc) or str(exc).strip()
        raise MigrationError(
            f"failed to start: the database session does not read SQL the way the gate does ({seen})\n"
            "Either the connection's startup options were not applied (connect directly or through Supabase's "
            "session pooler, port 5432, not a transaction pooler), or a trigger or rule sits on "
            "supabase_migrations' tables (remove it).") from None
    conn.execute(STAGE + ";\nTRUNCATE pg_temp.supagate_pending")
    with conn.cursor().copy(STAGE_COPY) as copy:
        for ord_, (migration, actor) in enumerate(items, 1):
            copy.write_row((ord_, migration.version, migration.name, migration.statement_texts,
                            migration.checksum, migration.down_sql, migration.transactional, actor))
    digests = dict(conn.execute("SELECT p.ord, pg_catalog.md5(CAST(p AS pg_catalog.text)) "
                                "FROM pg_temp.supagate_pending p").fetchall())
    return guard, digests


@dataclass(frozen=True)
class RunFile:
    """One file of this run: its staged values' number, the guard's identity, and whether
    it is recorded as applied or (a down script) forgotten."""
    migration: Migration
    ord: int
    guard: str  # session.guard_sql for this run
    digest: str
    url: str
    forget: bool = False

    @property
    def where(self) -> str:
        return self.migration.path or self.migration.filename

    def record(self, duration_ms: int | None) -> str:
        """The session guard, the staged row's check, the history written from it, and the
        guard again: last, so a trigger the history rows fire cannot change the session after it."""
        return (f"{self.guard};\n{session.staged_sql(self.ord, self.digest)};\n{self.finish(duration_ms)}"
                f"{self.guard};\n")

    def finish(self, duration_ms: int | None) -> str:
        """The SQL that records (or forgets) this file, from its staged row."""
        stage = _FROM_STAGE.format(ord=self.ord)
        if self.forget:
            return "".join(f"DELETE FROM supabase_migrations.{table} t USING pg_temp.supagate_pending p "
                           f"WHERE t.version OPERATOR(pg_catalog.=) p.version AND p.ord OPERATOR(pg_catalog.=) "
                           f"{self.ord};\n" for table in ("schema_migrations", "supagate_migrations"))
        elapsed = _ELAPSED if duration_ms is None else str(int(duration_ms))
        return ("INSERT INTO supabase_migrations.schema_migrations(version, name, statements) "
                f"SELECT p.version, p.name, p.statements{stage};\n"
                "INSERT INTO supabase_migrations.supagate_migrations "
                "(version, name, checksum, down_sql, transactional, applied_by, duration_ms) "
                f"SELECT p.version, p.name, p.checksum, p.down_sql, p.transactional, p.actor, {elapsed}{stage}"
                f"{UPSERT};\n")

    def session_error(self, exc: psycopg.Error, transactional: bool) -> MigrationError | None:
        seen = session.changed(exc)
        if seen is None:
            return None
        return MigrationError(session.explain(self.where, self.migration, seen, transactional), file=self.where)

    def check_session(self, conn) -> None:
        """The guard on its own, between statements sent one by one."""
        try:
            conn.execute(self.guard)
        except psycopg.Error as exc:
            raise self.session_error(exc, self.migration.transactional) or MigrationError(
                f"failed to apply {self.where}: {exc}") from None


def rollback(conn) -> None:
    if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")


def run_skipping_gaps(conn, file: RunFile, options: Options, gaps: GapRule):
    """Run the file statement by statement, each in a savepoint, skipping gaps; the
    session guard runs after each statement, before the next is sent."""
    migration = file.migration
    skipped = []
    started = time.monotonic()
    atomic = conn.transaction if migration.transactional else nullcontext
    with atomic():
        for key in ("lock_timeout", "statement_timeout"):
            value = getattr(migration, key) or getattr(options, key)
            conn.execute(f"SET {'LOCAL ' if migration.transactional else ''}{key} = '{value}'")
        file.check_session(conn)
        for number, statement in runnable(migration):
            try:
                with atomic():
                    conn.execute(statement.text)
            except psycopg.Error as exc:
                reason = gaps(exc, statement)
                if reason is None:
                    raise statement_error(conn, migration, number, statement, exc, file.url,
                                          migration.transactional) from None
                skipped.append(SkippedStatement(file.where, statement.line, statement.text, reason))
            file.check_session(conn)
        with conn.transaction():
            conn.execute(file.record(int((time.monotonic() - started) * 1000)))
    return skipped


def run_file(conn, file: RunFile, options: Options, progress: Callable[[str], None] = lambda _: None) -> None:
    """Run one file, then its history, atomically when it can."""
    migration = file.migration
    lock_timeout = migration.lock_timeout or options.lock_timeout
    statement_timeout = migration.statement_timeout or options.statement_timeout
    if migration.transactional:
        # The guard first too: a deferred trigger may have changed the session at the last
        # COMMIT, and then nothing of this file may run (an error ends the whole query).
        prefix = (f"BEGIN;\n{file.guard};\nSET LOCAL lock_timeout = '{lock_timeout}';\n"
                  f"SET LOCAL statement_timeout = '{statement_timeout}';\n")
        batch, starts = _batch(migration, prefix)
        # One round trip per file, read by the server in one piece: BEGIN, the statements,
        # the history rows (copied from the staged values), the guard and COMMIT.
        try:
            conn.execute(f"{batch}{file.record(None)}COMMIT;")
        except psycopg.Error as exc:
            rollback(conn)
            raise file.session_error(exc, True) or locate_failure(
                conn, migration, prefix, batch, starts, exc, file.url, file.guard) from None
        return
    # Outside a transaction each statement is its own round trip, and the guard runs before
    # the next one is sent; the rest is batched (a round trip to a hosted database costs tens
    # of milliseconds).
    conn.execute(f"SET lock_timeout = '{lock_timeout}'; SET statement_timeout = '{statement_timeout}'")
    started = time.monotonic()
    reset = False
    try:
        indexes = recovery.planned_indexes(conn, runnable(migration))
        skip = recovery.before_run(conn, indexes, progress)
        for number, statement in runnable(migration):
            if number in skip:
                continue
            file.check_session(conn)  # before every statement, the first too (a COMMIT-time trigger)
            try:
                conn.execute(statement.text)
            except psycopg.Error as exc:
                raise statement_error(conn, migration, number, statement, exc, file.url, False) from None
        recovery.after_run(conn, indexes, file.where)
        history = file.record(int((time.monotonic() - started) * 1000))
        try:
            conn.execute(f"BEGIN;\n{history}COMMIT;\nRESET lock_timeout;\nRESET statement_timeout;")
            reset = True
        except psycopg.Error as exc:
            rollback(conn)
            raise file.session_error(exc, False) or exc
    finally:
        if not reset and not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute("RESET lock_timeout; RESET statement_timeout")


def runnable(migration: Migration):
    """(1-based statement number, statement) of what the engine sends."""
    kinds = migration.kinds or ("statement",) * len(migration.statements)
    for number, (statement, kind) in enumerate(zip(migration.statements, kinds), 1):
        if kind not in ("transaction-control", "comment"):  # the engine owns the transaction
            yield number, statement


def _batch(migration: Migration, prefix: str) -> tuple[str, list[tuple[int, int, object]]]:
    """The file's statements as one query; `starts` maps query offsets back to statements.
    Each statement ends with a newline before its `;`, so a trailing `--` comment cannot
    swallow the separator."""
    parts = [prefix]
    starts = []
    offset = len(prefix)
    for number, statement in runnable(migration):
        starts.append((offset, number, statement))
        piece = statement.text + "\n;\n"
        parts.append(piece)
        offset += len(piece)
    return "".join(parts), starts
