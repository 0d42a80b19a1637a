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
applied one stops the run before anything is sent; no file changes how the next is read
or whose it is (session.py).

How one file travels (one round trip, values as parameters, the session guard): file_run.py.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable

import psycopg

from supagate.migrations.failures import MigrationError
from supagate.migrations.file_run import (UPSERT, GapRule, RunFile, SkippedStatement, run_file as _run_file,
                                          run_skipping_gaps, stage)
from supagate.migrations.files import Migration, MigrationFileError, parse_migration
from supagate.migrations.options import Options
from supagate.migrations.history import Applied, Comparison, adoptable, applied_checksums, compare, read_history
from supagate.postgres.connect import connect as _connect

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
UPSERT_BOOKKEEPING = ("INSERT INTO supabase_migrations.supagate_migrations "
                      "(version, name, checksum, down_sql, transactional, applied_by, duration_ms) "
                      "VALUES (%s, %s, %s, %s, %s, %s, %s)" + UPSERT)


# Called with the session after each file committed (and with None before the first): the
# shadow database's catalog diff. It may raise MigrationError to stop the run.
Observer = Callable[[psycopg.Connection, "Migration | None"], None]


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

def connect(url: str) -> psycopg.Connection:
    return _connect(url, engine=True)


def migrate(url: str, migrations: list[Migration], options: Options = Options(),
            dry_run: bool = False, progress: Progress = stderr_progress, gaps: GapRule | None = None,
            observe: Observer | None = None) -> Result:
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
                return result
            guard, digests = stage(conn, [(m, actor) for m in plan.pending])
            if observe is not None:
                observe(conn, None)
            for index, migration in enumerate(plan.pending, 1):
                started = time.monotonic()
                progress(f"Applying migration {migration.filename} ({index}/{len(plan.pending)}, "
                         f"{len(migration.statements)} statements"
                         f"{'' if migration.transactional else ', outside a transaction'})...")
                _apply(conn, RunFile(migration, index, guard, digests[index], url), options, gaps, result, progress)
                result.applied.append(migration.version)
                if observe is not None:
                    observe(conn, migration)
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
            if dry_run:
                for version in newer:
                    progress(f"Would revert {version}_{history[version].name}")
                    result.reverted.append(version)
                return result
            downs = []
            for version in newer:
                row = history[version]
                try:
                    downs.append(parse_migration(version, f"{row.name}.down", row.down_sql,
                                                 f"down script of {version}_{row.name}"))
                except MigrationFileError as exc:
                    raise MigrationError(f"failed to roll back: {exc}") from None
            guard, digests = stage(conn, [(down, "") for down in downs]) if downs else ("", {})
            for index, down in enumerate(downs, 1):
                progress(f"Reverting {down.version}_{history[down.version].name}...")
                _run_file(conn, RunFile(down, index, guard, digests[index], url, forget=True), options, progress)
                result.reverted.append(down.version)
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
        except psycopg.Error:
            pass  # the session ends right after; the lock goes with it
        return False


def _ensure_history_tables(conn: psycopg.Connection) -> None:
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
    """The statements that record `migration` as applied (history row and bookkeeping), with
    their parameters (outside a file's run: adoption and repair)."""
    statements = []
    if history:
        statements.append((INSERT_HISTORY, (migration.version, migration.name, migration.statement_texts)))
    statements.append((UPSERT_BOOKKEEPING, (migration.version, migration.name, migration.checksum,
                                            migration.down_sql, migration.transactional, actor, duration_ms)))
    return statements


def _execute_all(conn, statements) -> None:
    for sql, params in statements:
        conn.execute(sql, params)


def _apply(conn, file: RunFile, options: Options, gaps: GapRule | None = None,
           result: Result | None = None, progress: Progress = stderr_progress) -> None:
    try:
        _run_file(conn, file, options, progress)
    except MigrationError:
        if gaps is None:
            raise
        result.gaps.extend(run_skipping_gaps(conn, file, options, gaps))


def describe(migrations: Iterable[Migration]) -> list[dict]:
    return [{"version": m.version, "name": m.name, "checksum": m.checksum,
             "statements": len(m.statements), "transactional": m.transactional,
             "has_down": m.down_sql is not None} for m in migrations]
