"""Where a migration file failed: the statement, its line and an excerpt with a caret,
from the server's error position, or by replaying the file statement by statement in a
transaction that rolls back."""

from __future__ import annotations

from psycopg import Error as DatabaseError

from supagate.errors import Failed
from supagate.secrets import redact


class MigrationError(Failed):
    """A run that stopped; the message says what, where, and the next step."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.file, self.line = file, line  # the failing statement, when one is known


def locate_failure(conn, migration, prefix, batch, starts, exc: DatabaseError, url: str,
                   guard: str) -> MigrationError:
    """Name the failing statement: from the error position when the server gives one,
    else by replaying the file statement by statement in a transaction that rolls back
    (with the session guard after each, so the replay reads every statement as the file's
    run did). When no statement of the file fails, it was the history insert that did."""
    position = int(exc.diag.statement_position) if exc.diag.statement_position else 0
    if len(prefix) < position <= len(batch):
        for offset, number, statement in reversed(starts):
            if position - 1 >= offset:
                return statement_error(conn, migration, number, statement, exc, url, True,
                                        position=position - offset)
    if position <= len(batch):
        try:
            with conn.transaction(force_rollback=True):
                conn.execute(prefix.removeprefix("BEGIN;\n"))  # the guard and the timeouts
                for _, number, statement in starts:
                    try:
                        conn.execute(statement.text)
                    except DatabaseError as replayed:
                        return statement_error(conn, migration, number, statement, replayed, url, True)
                    conn.execute(guard)
        except DatabaseError:
            pass
    if exc.diag.sqlstate in ("55P03", "57014"):  # a timeout the replay did not meet again
        return MigrationError(f"failed to apply {migration.path or migration.filename}: "
                              f"{redact(exc.diag.message_primary or str(exc), url)}\n"
                              "Nothing from this file was applied; earlier files stay applied. Retry when "
                              "the database is less busy, or raise the file's lock_timeout/statement_timeout.")
    return MigrationError(f"failed to record {migration.filename}: {redact(str(exc).strip(), url)}\n"
                          "Nothing from this file was applied; earlier files stay applied. Check that this role "
                          "may write supabase_migrations' tables and that no migration changes them, then run "
                          "again.")


def statement_error(conn, migration, number, statement, exc: DatabaseError, url: str,
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
        lines.append("Statements before this one were applied (this file runs outside a transaction); its "
                     "history row was not written. Fix the statement and run again: the next run builds again "
                     "what this one left (an INVALID index is dropped and rebuilt, a complete one with the same "
                     "definition is adopted).")
        invalid = _invalid_indexes(conn)
        if invalid:
            lines.append("Invalid indexes left behind: " + ", ".join(invalid)
                         + ". Drop them (DROP INDEX CONCURRENTLY ...) before running again.")
    return MigrationError("\n".join(lines), file=where, line=line)


EXCERPT_WIDTH = 160  # characters of a line shown around the error; a 20 MB line stays short


def _excerpt(text: str, position: int, context: int = 2) -> str:
    """The lines before the error position, each cut to a window around the error's column,
    and a caret under it. Bounded whatever the size of the statement."""
    if position <= 0:
        head = text[:4 * EXCERPT_WIDTH].splitlines()[:3]
        return "\n".join(_cut(line, 0)[0] for line in head) + ("\n..." if len(text) > len("\n".join(head)) else "")
    start = text.rfind("\n", 0, position - 1) + 1
    column = position - 1 - start
    rows = []
    begin = start
    for _ in range(context):
        if begin == 0:
            break
        begin = text.rfind("\n", 0, begin - 1) + 1
    for line in text[begin:start].splitlines():
        rows.append(_cut(line, column)[0])
    end = text.find("\n", start)
    line, shift = _cut(text[start:] if end < 0 else text[start:end], column)
    rows += [line, " " * (column - shift) + "^"]
    return "\n".join(rows)


def _cut(line: str, column: int) -> tuple[str, int]:
    """A window of `line` around `column`, and how many characters were cut on the left."""
    if len(line) <= EXCERPT_WIDTH:
        return line, 0
    left = max(0, min(column - EXCERPT_WIDTH // 2, len(line) - EXCERPT_WIDTH))
    return ("..." if left else "") + line[left:left + EXCERPT_WIDTH] + ("..." if left + EXCERPT_WIDTH < len(line) else ""), \
        left - (3 if left else 0)


def _invalid_indexes(conn) -> list[str]:
    try:
        return [r[0] for r in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid").fetchall()]
    except DatabaseError:
        return []
