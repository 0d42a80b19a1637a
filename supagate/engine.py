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
import re
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable

import psycopg

from .db import connect, redact
from .migrations import Migration, MigrationFileError, parse_migration

LOCK_KEY = 0x5375_7061_6761_7465 & 0x7FFF_FFFF_FFFF_FFFF  # "Supagate"
_TIMEOUT = re.compile(r"^\d+(ms|s|min|h)?$")

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


class MigrationError(RuntimeError):
    """A run that stopped; the message says what, where, and the next step."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.file, self.line = file, line  # the failing statement, when one is known


@dataclass(frozen=True)
class Options:
    lock_timeout: str = "10s"  # how long one statement may queue for a table lock
    statement_timeout: str = "15min"
    lock_wait: float = 60.0  # seconds to wait for another run's advisory lock
    include_all: bool = False
    applied_by: str | None = None

    def __post_init__(self):
        for key in ("lock_timeout", "statement_timeout"):
            if not _TIMEOUT.match(str(getattr(self, key))):
                raise MigrationError(f"invalid {key} {getattr(self, key)!r}\n"
                                     "Use a number with an optional unit: 500ms, 10s, 5min, 1h.")


@dataclass(frozen=True)
class Applied:
    version: str
    name: str | None
    statements: tuple[str, ...]
    checksum: str | None = None  # None when another tool (supabase db push) applied it
    down_sql: str | None = None
    applied_at: str | None = None
    applied_by: str | None = None


@dataclass
class Plan:
    applied: dict[str, Applied]
    pending: list[Migration]
    adopt: list[Migration] = field(default_factory=list)  # applied by the CLI, same statements


@dataclass
class Result:
    applied: list[str] = field(default_factory=list)
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


# ---------------------------------------------------------------- reading state

def read_history(conn: psycopg.Connection) -> dict[str, Applied]:
    exists = conn.execute(
        "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL, "
        "to_regclass('supabase_migrations.supagate_migrations') IS NOT NULL").fetchone()
    if not exists[0]:
        return {}
    if exists[1]:
        rows = conn.execute(
            "SELECT h.version, h.name, h.statements, s.checksum, s.down_sql, "
            "       s.applied_at::text, s.applied_by "
            "FROM supabase_migrations.schema_migrations h "
            "LEFT JOIN supabase_migrations.supagate_migrations s USING (version)").fetchall()
    else:
        rows = [r + (None, None, None, None) for r in conn.execute(
            "SELECT version, name, statements FROM supabase_migrations.schema_migrations").fetchall()]
    return {r[0]: Applied(r[0], r[1], tuple(r[2] or ()), r[3], r[4], r[5], r[6]) for r in rows}


def make_plan(history: dict[str, Applied], migrations: list[Migration],
              include_all: bool = False, allow_missing: bool = False) -> Plan:
    """Compare local files with the history; raise MigrationError on drift or disorder."""
    local = {m.version: m for m in migrations}
    problems: list[str] = []
    missing = sorted(v for v in history if v not in local)
    if missing and not allow_missing:
        problems.append(
            "the database has migrations that are not in the migrations directory: "
            + ", ".join(missing)
            + "\nRestore those files (git log -- supabase/migrations), or, if they were removed on "
              "purpose, run `supabase migration repair --status reverted " + " ".join(missing) + "`.")
    adopt: list[Migration] = []
    for version, row in sorted(history.items()):
        migration = local.get(version)
        if migration is None:
            continue
        if row.checksum is not None:
            changed = row.checksum != migration.checksum
            detail = f"applied with sha256 {row.checksum[:12]}, the file now hashes to {migration.checksum[:12]}"
        else:
            changed = list(row.statements) != migration.statement_texts
            detail = "its statements differ from those `supabase db push` recorded"
            if not changed:
                adopt.append(migration)
        if changed:
            problems.append(
                f"{migration.path or migration.filename} changed after it was applied ({detail})\n"
                f"Restore the file as applied (git checkout <commit> -- {migration.path or migration.filename}), "
                f"put the change in a new migration, or accept the file as applied with "
                f"`supagate migrate --repair {version}`.")
    newest = max(history, default="")
    pending = [m for m in migrations if m.version not in history]
    late = [m for m in pending if m.version < newest]
    if late and not include_all:
        problems.append(
            "new migrations are older than the newest applied one (" + newest + "): "
            + ", ".join(m.filename for m in late)
            + "\nGive them a newer timestamp, or apply them anyway with --include-all "
              "(as `supabase db push --include-all`).")
    if problems:
        raise MigrationError("failed to plan migrations: " + "\n".join(problems))
    return Plan(applied=history, pending=pending, adopt=adopt)


# ---------------------------------------------------------------- running

def migrate(url: str, migrations: list[Migration], options: Options = Options(),
            dry_run: bool = False, progress: Progress = stderr_progress) -> Result:
    """Apply every pending migration in order; earlier files stay applied if one fails."""
    with connect(url) as conn:
        if dry_run:
            plan = make_plan(read_history(conn), migrations, options.include_all)
            return Result(dry_run=True, pending=plan.pending,
                          skipped=sorted(plan.applied))
        with _run_lock(conn, options, progress, url):
            _ensure_history_tables(conn)
            plan = make_plan(read_history(conn), migrations, options.include_all)
            actor = options.applied_by or default_actor()
            for migration in plan.adopt:
                _execute_all(conn, _record(migration, "supabase db push (adopted by supagate)", history=False))
            result = Result(skipped=sorted(plan.applied))
            if not plan.pending:
                progress("Database is up to date: no pending migrations.")
            for index, migration in enumerate(plan.pending, 1):
                started = time.monotonic()
                progress(f"Applying migration {migration.filename} ({index}/{len(plan.pending)}, "
                         f"{len(migration.statements)} statements"
                         f"{'' if migration.transactional else ', outside a transaction'})...")
                _apply(conn, migration, options, actor, url)
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
                if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    self.conn.rollback()
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        except psycopg.Error:
            pass  # the session ends right after; the lock goes with it
        return False


def _ensure_history_tables(conn: psycopg.Connection) -> None:
    present = conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'supabase_migrations' "
        "AND (table_name, column_name) IN (('schema_migrations', 'statements'), "
        "('schema_migrations', 'name'), ('supagate_migrations', 'checksum'))").fetchone()[0]
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


def _apply(conn, migration: Migration, options: Options, actor: str, url: str) -> None:
    _run_file(conn, migration, options, url, after=lambda ms: _record(migration, actor, duration_ms=ms))


def _run_file(conn, migration: Migration, options: Options, url: str, after) -> None:
    """Run one file, then `after(duration_ms)`'s statements (history), atomically when it can.
    In the one-query path the server measures the duration itself (duration_ms is None)."""
    lock_timeout = migration.lock_timeout or options.lock_timeout
    statement_timeout = migration.statement_timeout or options.statement_timeout
    if migration.transactional:
        prefix = (f"BEGIN;\nSET LOCAL lock_timeout = '{lock_timeout}';\n"
                  f"SET LOCAL statement_timeout = '{statement_timeout}';\n")
        batch, starts = _batch(migration, prefix)
        # One round trip per file: BEGIN, the statements, the history rows and COMMIT in a
        # single simple-protocol query (client-side parameters, so `%` in the SQL is escaped).
        record = after(None)
        query = batch.replace("%", "%%") + "".join(sql + ";\n" for sql, _ in record) + "COMMIT;"
        params = tuple(p for _, ps in record for p in ps)
        try:
            psycopg.ClientCursor(conn).execute(query, params)
        except psycopg.Error as exc:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            raise _locate_failure(conn, migration, prefix, batch, starts, exc, url) from None
        return
    conn.execute(f"SET lock_timeout = '{lock_timeout}'")
    conn.execute(f"SET statement_timeout = '{statement_timeout}'")
    started = time.monotonic()
    try:
        for number, statement in _runnable(migration):
            try:
                conn.execute(statement.text)
            except psycopg.Error as exc:
                raise _statement_error(conn, migration, number, statement, exc, url, False) from None
        with conn.transaction():
            _execute_all(conn, after(int((time.monotonic() - started) * 1000)))
    finally:
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute("RESET lock_timeout")
            conn.execute("RESET statement_timeout")


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


def _locate_failure(conn, migration, prefix, batch, starts, exc: psycopg.Error, url: str) -> MigrationError:
    """Name the failing statement: from the error position when the server gives one,
    else by replaying the file statement by statement in a transaction that rolls back.
    When no statement of the file fails, it was the history insert that did."""
    position = int(exc.diag.statement_position) if exc.diag.statement_position else 0
    if len(prefix) < position <= len(batch):
        for offset, number, statement in reversed(starts):
            if position - 1 >= offset:
                return _statement_error(conn, migration, number, statement, exc, url, True,
                                        position=position - offset)
    if position <= len(batch):
        try:
            with conn.transaction(force_rollback=True):
                psycopg.ClientCursor(conn).execute(prefix.removeprefix("BEGIN;\n"))
                for _, number, statement in starts:
                    try:
                        conn.execute(statement.text)
                    except psycopg.Error as replayed:
                        return _statement_error(conn, migration, number, statement, replayed, url, True)
        except psycopg.Error:
            pass
    if exc.diag.sqlstate in ("55P03", "57014"):  # a timeout the replay did not meet again
        return MigrationError(f"failed to apply {migration.path or migration.filename}: "
                              f"{redact(exc.diag.message_primary or str(exc), url)}\n"
                              "Nothing from this file was applied; earlier files stay applied. Retry when "
                              "the database is less busy, or raise the file's lock_timeout/statement_timeout.")
    return MigrationError(f"failed to record {migration.filename}: {redact(str(exc).strip(), url)}\n"
                          "Nothing from this file was applied; earlier files stay applied.")


def _statement_error(conn, migration, number, statement, exc: psycopg.Error, url: str,
                     transactional: bool, position: int | None = None) -> MigrationError:
    diag = exc.diag
    if position is None:
        position = int(diag.statement_position) if diag.statement_position else 0
    line = statement.line + statement.text[: max(position - 1, 0)].count("\n")
    where = migration.path or migration.filename
    lines = [f"failed to apply {where}: statement {number} at line {line}: "
             f"{redact(diag.message_primary or str(exc).strip(), url)}"]
    if diag.message_detail:
        lines.append(f"  detail: {redact(diag.message_detail, url)}")
    excerpt = _excerpt(statement.text, position)
    lines.append("  " + excerpt.replace("\n", "\n  "))
    if diag.sqlstate == "55P03":
        lines.append("The statement waited longer than lock_timeout for a lock held by another "
                     "transaction. Retry when it is idle, or raise the limit for this file with "
                     "`-- supagate: lock_timeout=30s`.")
    elif diag.sqlstate == "57014":
        lines.append("The statement ran longer than statement_timeout. Raise the limit for this "
                     "file with `-- supagate: statement_timeout=30min` if that is expected.")
    if transactional:
        lines.append("Nothing from this file was applied; earlier files stay applied. "
                     "Fix the statement and run again.")
    else:
        lines.append("Statements before this one were applied (this file runs outside a "
                     "transaction); its history row was not written, so the file runs again next time.")
        invalid = _invalid_indexes(conn)
        if invalid:
            lines.append("Invalid indexes left behind: " + ", ".join(invalid)
                         + ". Drop them (DROP INDEX CONCURRENTLY ...) before running again.")
    return MigrationError("\n".join(lines), file=where, line=line)


def _excerpt(text: str, position: int, context: int = 2) -> str:
    if position <= 0:
        head = text.splitlines()
        return "\n".join(head[:3]) + ("\n..." if len(head) > 3 else "")
    before = text[: position - 1]
    row = before.count("\n")
    column = len(before) - (before.rfind("\n") + 1)
    rows = text.splitlines()
    start = max(0, row - context)
    shown = rows[start: row + 1] + [" " * column + "^"]
    return "\n".join(shown)


def _invalid_indexes(conn) -> list[str]:
    try:
        return [r[0] for r in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid").fetchall()]
    except psycopg.Error:
        return []


def describe(migrations: Iterable[Migration]) -> list[dict]:
    return [{"version": m.version, "name": m.name, "checksum": m.checksum,
             "statements": len(m.statements), "transactional": m.transactional,
             "has_down": m.down_sql is not None} for m in migrations]
