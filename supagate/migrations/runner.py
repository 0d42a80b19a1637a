"""The migration engine: one implementation behind `supagate migrate`, the Pulumi
provider, the shadow database and the tests.

History goes into the Supabase CLI's own table exactly as `supabase db push` writes it
(version, name, the file's statements), so both tools see the same state. Our own
bookkeeping (checksum, down script, who applied it and when) sits beside it in
`supabase_migrations.supagate_migrations`.

Guarantees: a session advisory lock serialises runs; each file and its history rows
commit in one transaction, or, for a file of statements that cannot run in a transaction,
history is written only after every statement succeeded; an applied file that changed
(drift), an applied version with no local file, or a new file older than the newest
applied one stops the run before anything is sent.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable

from supagate.migrations import recovery
from supagate.migrations.failures import MigrationError, locate_failure, statement_error
from supagate.migrations.files import Migration, MigrationFileError, parse_migration
from supagate.migrations.options import Options
from supagate.migrations.history import Applied, Comparison, adoptable, applied_checksums, compare, read_history
from supagate.postgres import libpq
from supagate.postgres.connect import connect_engine as connect
from supagate.postgres.sql_values import bind

LOCK_KEY = 0x5375_7061_6761_7465 & 0x7FFF_FFFF_FFFF_FFFF  # "Supagate"

HISTORY_DDL = (
    # The Supabase CLI's statements, verbatim, so the table is the one it would create.
    "CREATE SCHEMA IF NOT EXISTS supabase_migrations",
    "CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY)",
    "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements text[]",
    "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text",
    """CREATE TABLE IF NOT EXISTS supabase_migrations.supagate_migrations (
        version text PRIMARY KEY,
        name text NOT NULL,
        checksum text NOT NULL,
        down_sql text,
        transactional boolean NOT NULL DEFAULT true,
        applied_at timestamptz NOT NULL DEFAULT now(),
        applied_by text NOT NULL,
        duration_ms integer
    )""",
)
INSERT_HISTORY = ("INSERT INTO supabase_migrations.schema_migrations(version, name, statements) "
                  "VALUES (%s, %s, %s)")
UPSERT_BOOKKEEPING = """
    INSERT INTO supabase_migrations.supagate_migrations
        (version, name, checksum, down_sql, transactional, applied_by, duration_ms)
    VALUES (%s, %s, %s, %s, %s, %s,
            coalesce(%s::integer, (extract(epoch from clock_timestamp() - statement_timestamp()) * 1000)::integer))
    ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum,
        down_sql = excluded.down_sql, transactional = excluded.transactional,
        applied_at = now(), applied_by = excluded.applied_by, duration_ms = excluded.duration_ms"""


@dataclass(frozen=True)
class SkippedStatement:
    """A statement the shadow database could not run for want of something Supabase has."""
    file: str
    line: int
    text: str
    reason: str


# (error, statement) -> why the failure is a gap of the database rather than of the SQL, or None.
GapRule = Callable[[libpq.Error, object], "str | None"]


@dataclass
class Result:
    applied: list[str] = field(default_factory=list)
    gaps: list[SkippedStatement] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)
    dry_run: bool = False
    pending: list[Migration] = field(default_factory=list)


Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_actor() -> str:
    actor = os.environ.get("SUPAGATE_ACTOR") or os.environ.get("GITHUB_ACTOR")
    if not actor:
        try:
            actor = getpass.getuser()
        except (KeyError, OSError):
            actor = "unknown"
    return f"{actor} via supagate"


def make_plan(history: dict[str, Applied], migrations: list[Migration], include_all: bool = False,
              allow_missing: bool = False) -> Comparison:
    """Compare the files with the history (the one comparison); raise MigrationError on
    drift or disorder, before anything is sent."""
    applied = applied_checksums(history, migrations)
    comparison = compare(applied, migrations)
    problems = comparison.problems(include_all, allow_missing, applied)
    if problems:
        raise MigrationError("failed to plan migrations: " + "\n".join(problems))
    return comparison


# ---------------------------------------------------------------- running

def migrate(url: str, migrations: list[Migration], options: Options = Options(),
            dry_run: bool = False, progress: Progress = stderr_progress, gaps: GapRule | None = None) -> Result:
    """Apply every pending migration in order; earlier files stay applied if one fails.
    With `gaps` (the shadow database only), a statement that fails for want of something
    the database lacks is skipped and recorded in `Result.gaps`; any other failure stops."""
    with connect(url) as conn:
        if dry_run:
            history = read_history(conn)
            plan = make_plan(history, migrations, options.include_all)
            return Result(dry_run=True, pending=plan.pending, skipped=sorted(history))
        with _run_lock(conn, options, progress, url):
            _ensure_history_tables(conn)
            history = read_history(conn)
            plan = make_plan(history, migrations, options.include_all)
            actor = options.applied_by or default_actor()
            for migration in adoptable(history, migrations):
                _execute_all(conn, _record(migration, "supabase db push (adopted by supagate)", history=False))
            result = Result(skipped=sorted(history))
            if not plan.pending:
                progress("Database is up to date: no pending migrations.")
            for index, migration in enumerate(plan.pending, 1):
                started = time.monotonic()
                progress(f"Applying migration {migration.filename} ({index}/{len(plan.pending)}, "
                         f"{len(migration.statements)} statements"
                         f"{'' if migration.transactional else ', outside a transaction'})...")
                _apply(conn, migration, options, actor, url, gaps, result, progress)
                result.applied.append(migration.version)
                progress(f"  done in {(time.monotonic() - started) * 1000:.0f} ms")
            return result


def down_to(url: str, target: str, options: Options = Options(),
            dry_run: bool = False, progress: Progress = stderr_progress) -> Result:
    """Run stored down scripts, newest first, for every version newer than `target`."""
    with connect(url) as conn:
        with _run_lock(conn, options, progress, url) if not dry_run else nullcontext():
            history = read_history(conn)
            if target != "0" and target not in history:
                raise MigrationError(
                    f"failed to roll back: version {target} is not applied\n"
                    f"Pick one of: {', '.join(sorted(history)) or '(none applied)'}, or 0 for all.")
            newer = sorted((v for v in history if v > target), reverse=True)
            without = [v for v in newer if not history[v].down_sql]
            if without:
                raise MigrationError(
                    "failed to roll back: no down script stored for " + ", ".join(without)
                    + "\nNothing was changed. Write supabase/migrations/down/<stem>.down.sql, run "
                      "`supagate migrate --repair VERSION` to store it, then roll back again.")
            result = Result(dry_run=dry_run)
            for version in newer:
                row = history[version]
                if dry_run:
                    progress(f"Would revert {version}_{row.name}")
                    result.reverted.append(version)
                    continue
                progress(f"Reverting {version}_{row.name}...")
                try:
                    down = parse_migration(version, f"{row.name}.down", row.down_sql,
                                           f"down script of {version}_{row.name}")
                except MigrationFileError as exc:
                    raise MigrationError(f"failed to roll back: {exc}") from None
                _run_file(conn, down, options, url, after=lambda _ms, v=version: _forget(v))
                result.reverted.append(version)
            return result


def repair(url: str, migrations: list[Migration], version: str, options: Options = Options(),
           progress: Progress = stderr_progress) -> None:
    """Accept the local file of an applied version as what was applied (after review)."""
    local = {m.version: m for m in migrations}
    if version not in local:
        raise MigrationError(f"failed to repair {version}: no local migration file has that version\n"
                             "Check the version against supabase/migrations.")
    with connect(url) as conn:
        with _run_lock(conn, options, progress, url):
            history = read_history(conn)
            if version not in history:
                raise MigrationError(f"failed to repair {version}: it is not applied\n"
                                     "Run `supagate migrate` to apply it instead.")
            migration = local[version]
            with conn.transaction():
                conn.execute("UPDATE supabase_migrations.schema_migrations SET name = %s, statements = %s "
                             "WHERE version = %s", (migration.name, migration.statement_texts, version))
                _execute_all(conn, _record(migration, (options.applied_by or default_actor()) + " (repair)",
                                           history=False))
            progress(f"Repaired {migration.filename}: history now matches the file "
                     f"(sha256 {migration.checksum[:12]}).")


# ---------------------------------------------------------------- internals

class _run_lock:
    """Session advisory lock; waits up to options.lock_wait seconds, then says who holds it."""

    def __init__(self, conn, options: Options, progress: Progress, url: str):
        self.conn, self.options, self.progress, self.url = conn, options, progress, url

    def __enter__(self):
        deadline = time.monotonic() + self.options.lock_wait
        announced = False
        while not self.conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
            holder = self._holder()
            if time.monotonic() >= deadline:
                raise MigrationError(
                    f"failed to start: another migration run{holder} still holds the migration lock "
                    f"after {self.options.lock_wait:.0f} s\n"
                    "Wait for it to finish and run again, or raise the wait with --lock-wait SECONDS.")
            if not announced:
                self.progress(f"Waiting for another migration run{holder} to finish...")
                announced = True
            time.sleep(0.1)
        return self

    def _holder(self) -> str:
        row = self.conn.execute(
            "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s LIMIT 1", (LOCK_KEY,)).fetchone()
        return f" (backend pid {row[0]}, {row[1] or 'unknown client'})" if row else ""

    def __exit__(self, *exc):
        try:
            if not self.conn.closed:
                self.conn.rollback()
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        except libpq.Error:
            pass  # the session ends right after; the lock goes with it
        return False


def _ensure_history_tables(conn: libpq.Connection) -> None:
    # pg_attribute, not information_schema: the view costs ~10 ms on a new connection.
    present = conn.execute(
        "SELECT count(*) FROM pg_attribute WHERE NOT attisdropped AND (attrelid, attname) IN "
        "((to_regclass('supabase_migrations.schema_migrations'), 'statements'), "
        "(to_regclass('supabase_migrations.schema_migrations'), 'name'), "
        "(to_regclass('supabase_migrations.supagate_migrations'), 'checksum'))").fetchone()[0]
    if present == 3:
        return
    with conn.transaction():
        for ddl in HISTORY_DDL:
            conn.execute(ddl)


def _record(migration: Migration, actor: str, history: bool = True, duration_ms: int | None = None):
    """The statements that record `migration` as applied (history row and bookkeeping)."""
    statements = []
    if history:
        statements.append((INSERT_HISTORY, (migration.version, migration.name, migration.statement_texts)))
    statements.append((UPSERT_BOOKKEEPING, (migration.version, migration.name, migration.checksum,
                                            migration.down_sql, migration.transactional, actor, duration_ms)))
    return statements


def _forget(version: str):
    return [("DELETE FROM supabase_migrations.schema_migrations WHERE version = %s", (version,)),
            ("DELETE FROM supabase_migrations.supagate_migrations WHERE version = %s", (version,))]


def _execute_all(conn, statements) -> None:
    for sql, params in statements:
        conn.execute(sql, params)


def _apply(conn, migration: Migration, options: Options, actor: str, url: str, gaps: GapRule | None = None,
           result: Result | None = None, progress: Progress = stderr_progress) -> None:
    after = lambda ms: _record(migration, actor, duration_ms=ms)  # noqa: E731
    try:
        _run_file(conn, migration, options, url, after=after, progress=progress)
    except MigrationError:
        if gaps is None:
            raise
        result.gaps.extend(_run_skipping_gaps(conn, migration, options, url, after, gaps))


def _run_skipping_gaps(conn, migration: Migration, options: Options, url: str, after, gaps: GapRule):
    """Run the file statement by statement, each in a savepoint, skipping gaps."""
    skipped = []
    where = migration.path or migration.filename
    with conn.transaction() if migration.transactional else nullcontext():
        for key in ("lock_timeout", "statement_timeout"):
            value = getattr(migration, key) or getattr(options, key)
            conn.execute(f"SET {'LOCAL ' if migration.transactional else ''}{key} = '{value}'")
        for number, statement in _runnable(migration):
            try:
                with conn.transaction() if migration.transactional else nullcontext():
                    conn.execute(statement.text)
            except libpq.Error as exc:
                reason = gaps(exc, statement)
                if reason is None:
                    raise statement_error(conn, migration, number, statement, exc, url, migration.transactional) from None
                skipped.append(SkippedStatement(where, statement.line, statement.text, reason))
        with conn.transaction():
            _execute_all(conn, after(None))
    return skipped


def _run_file(conn, migration: Migration, options: Options, url: str, after,
              progress: Progress = stderr_progress) -> None:
    """Run one file, then `after(duration_ms)`'s statements (history), atomically when it can.
    In the one-query path the server measures the duration itself (duration_ms is None)."""
    lock_timeout = migration.lock_timeout or options.lock_timeout
    statement_timeout = migration.statement_timeout or options.statement_timeout
    if migration.transactional:
        prefix = (f"BEGIN;\nSET LOCAL lock_timeout = '{lock_timeout}';\n"
                  f"SET LOCAL statement_timeout = '{statement_timeout}';\n")
        batch, starts = _batch(migration, prefix)
        # One round trip per file: BEGIN, the statements, the history rows and COMMIT in a
        # single simple-protocol query. Only the history rows take values, bound on the
        # client here; the file's SQL goes verbatim (no placeholder scan of the whole file,
        # which cost more client time per file than anything else).
        try:
            conn.execute(batch + _bound(after(None)) + "COMMIT;")
        except libpq.Error as exc:
            conn.rollback()
            raise locate_failure(conn, migration, prefix, batch, starts, exc, url) from None
        return
    # Outside a transaction each statement is its own round trip; the rest is batched (a
    # round trip to a hosted database costs tens of milliseconds).
    conn.execute(f"SET lock_timeout = '{lock_timeout}'; SET statement_timeout = '{statement_timeout}'")
    started = time.monotonic()
    where = migration.path or migration.filename
    reset = False
    try:
        indexes = recovery.planned_indexes(conn, _runnable(migration))
        skip = recovery.before_run(conn, indexes, progress)
        for number, statement in _runnable(migration):
            if number in skip:
                continue
            try:
                conn.execute(statement.text)
            except libpq.Error as exc:
                raise statement_error(conn, migration, number, statement, exc, url, False) from None
        recovery.after_run(conn, indexes, where)
        history = _bound(after(int((time.monotonic() - started) * 1000)))
        try:
            conn.execute(f"BEGIN;\n{history}COMMIT;\nRESET lock_timeout;\nRESET statement_timeout;")
            reset = True
        except libpq.Error:
            conn.rollback()
            raise
    finally:
        if not reset and conn.idle:
            conn.execute("RESET lock_timeout; RESET statement_timeout")


def _bound(statements) -> str:
    """`statements` ((sql, params) pairs) with their values bound on the client, as one script."""
    return "".join(bind(sql, params) + ";\n" for sql, params in statements)


def _runnable(migration: Migration):
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
    for number, statement in _runnable(migration):
        starts.append((offset, number, statement))
        piece = statement.text + "\n;\n"
        parts.append(piece)
        offset += len(piece)
    return "".join(parts), starts


def describe(migrations: Iterable[Migration]) -> list[dict]:
    return [{"version": m.version, "name": m.name, "checksum": m.checksum,
             "statements": len(m.statements), "transactional": m.transactional,
             "has_down": m.down_sql is not None} for m in migrations]
