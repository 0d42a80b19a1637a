"""Migration files: naming, ordering, statements and how each file must run.

Naming and ordering follow the Supabase CLI: `<digits>_<name>.sql` in
`supabase/migrations/`, sorted by file name, versions compared as strings; other files
are skipped with a warning, as the CLI does. Down scripts live in
`supabase/migrations/down/<same stem>.down.sql`: the CLI ignores sub-folders, while a
`.down.sql` beside the migrations would be pushed by `supabase db push` as a migration of
its own (it matches the CLI's pattern), so one there is refused with that explanation.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from supagate.errors import BadInput
from supagate.migrations.options import TIMEOUT as _TIMEOUT_VALUE
from supagate.migrations.splitter import SplitError, Statement, split_statements

MIGRATION_FILE = re.compile(r"^([0-9]+)_(.*)\.sql\Z")  # the Supabase CLI's own pattern
DOWN_DIR = "down"
DOWN_SUFFIX = ".down.sql"
_DIRECTIVE = re.compile(r"^--\s*supagate:\s*(.+)$", re.MULTILINE)
# Cheap pre-filter: only statements mentioning one of these words are parsed to classify.
_MAYBE_SPECIAL = re.compile(
    r"\b(concurrently|vacuum|database|tablespace|system|cluster|reindex|subscription|"
    r"begin|commit|end|rollback|start|abort)\b", re.IGNORECASE)


class MigrationFileError(BadInput):
    """A migration file that cannot be run; the message names the file and the fix."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str
    path: str = ""
    down_sql: str | None = None
    statements: tuple[Statement, ...] = field(default=(), compare=False, repr=False)
    kinds: tuple[str, ...] = field(default=(), compare=False, repr=False)  # statement_kind of each
    transactional: bool = True
    lock_timeout: str | None = None
    statement_timeout: str | None = None

    @property
    def filename(self) -> str:
        return f"{self.version}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        return sha256(self.sql)

    @property
    def statement_texts(self) -> list[str]:
        return [s.text for s in self.statements]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parse_migration(version: str, name: str, sql: str, path: str = "",
                    down_sql: str | None = None) -> Migration:
    """Split and classify one migration; raises MigrationFileError naming the file."""
    where = path or f"{version}_{name}.sql"
    try:
        statements = tuple(split_statements(sql))
    except SplitError as exc:
        raise MigrationFileError(f"{where}:{exc.line}: {exc}\nClose the quote or comment.") from None
    kinds = [statement_kind(s.text) for s in statements]
    for stmt, kind in zip(statements, kinds):
        if kind == "rollback":
            raise MigrationFileError(
                f"{where}:{stmt.line}: ROLLBACK would discard the migration it is part of\n"
                "Remove it: each file already runs in one transaction that rolls back on error.")
        if kind == "session":
            from supagate.migrations.session import refusal

            why = refusal(stmt.text)
            if why is not None:
                raise MigrationFileError(f"{where}:{stmt.line}: {why}")
    non_tx = [s for s, k in zip(statements, kinds) if k == "non-transactional"]
    others = [s for s, k in zip(statements, kinds) if k == "statement"]
    if non_tx and others:
        first = non_tx[0]
        raise MigrationFileError(
            f"{where}:{first.line}: `{_head(first.text)}` cannot run inside a transaction, and this file "
            f"also has {len(others)} other statement(s) (first at line {others[0].line})\n"
            "Move the statements that cannot run in a transaction into a migration file of their own "
            "(for example one CREATE INDEX CONCURRENTLY per file).")
    options = _directives(sql, where)
    return Migration(
        version=version, name=name, sql=sql, path=path, down_sql=down_sql,
        statements=statements, kinds=tuple(kinds), transactional=not non_tx,
        lock_timeout=options.get("lock_timeout"), statement_timeout=options.get("statement_timeout"),
    )


def statement_kind(text: str) -> str:
    """'comment', 'transaction-control', 'rollback', 'session', 'non-transactional' or 'statement'."""
    if _MAYBE_SPECIAL.search(text) is None:
        return "comment" if _is_comment_only(text) else _session_or_statement(text)
    import pglast  # only here: a deploy of plain files never pays for the parser's start-up

    try:
        nodes = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return "statement"  # the server reports the syntax error with its position
    if not nodes:
        return "comment"
    node = nodes[0].stmt
    kind = type(node).__name__
    if kind == "TransactionStmt":
        tx_kind = node.kind.name if hasattr(node.kind, "name") else str(node.kind)
        if tx_kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START", "TRANS_STMT_COMMIT"):
            return "transaction-control"
        if tx_kind == "TRANS_STMT_ROLLBACK":
            return "rollback"
        return "statement"  # savepoints work inside the file's transaction
    if kind == "IndexStmt" and node.concurrent:
        return "non-transactional"
    if kind == "DropStmt" and node.concurrent:
        return "non-transactional"
    if kind == "ReindexStmt" and any(
            getattr(p, "defname", "") == "concurrently" for p in (node.params or ())):
        return "non-transactional"
    if kind in ("VacuumStmt", "CreatedbStmt", "DropdbStmt", "AlterSystemStmt",
                "CreateTableSpaceStmt", "DropTableSpaceStmt", "CreateSubscriptionStmt",
                "DropSubscriptionStmt"):
        return "non-transactional"
    if kind == "ClusterStmt" and node.relation is None:
        return "non-transactional"
    return _session_or_statement(text)


_SESSION = re.compile(r"(set|reset)\b", re.IGNORECASE)


def _session_or_statement(text: str) -> str:
    return "session" if _SESSION.match(strip_leading_comments(text).lstrip()) else "statement"


def _is_comment_only(text: str) -> bool:
    return not strip_leading_comments(text).strip()


def strip_leading_comments(text: str) -> str:
    # Only leading comments matter for classification.
    while True:
        stripped = text.lstrip()
        if stripped.startswith("--"):
            newline = stripped.find("\n")
            text = "" if newline < 0 else stripped[newline + 1:]
        elif stripped.startswith("/*"):
            end = stripped.find("*/")
            text = "" if end < 0 else stripped[end + 2:]
        else:
            return stripped


def _head(text: str) -> str:
    line = strip_leading_comments(text).strip().splitlines()[0]
    return line if len(line) <= 60 else line[:57] + "..."


def _directives(sql: str, where: str) -> dict[str, str]:
    """`-- supagate: lock_timeout=30s statement_timeout=10min` sets this file's timeouts."""
    options: dict[str, str] = {}
    for match in _DIRECTIVE.finditer(sql):
        for item in match.group(1).split():
            key, _, value = item.partition("=")
            if key not in ("lock_timeout", "statement_timeout") or not _TIMEOUT_VALUE.match(value):
                line = sql.count("\n", 0, match.start()) + 1
                raise MigrationFileError(
                    f"{where}:{line}: unknown directive `{item}`\n"
                    "Use `-- supagate: lock_timeout=<n>[ms|s|min|h] statement_timeout=<n>[ms|s|min|h]`.")
            options[key] = value
    return options


def load_migrations(directory: Path | str, warn=None) -> list[Migration]:
    """Every migration in `directory`, in the CLI's order, with its down script if any.

    All files are read and checked before anything is returned, so a bad file stops the
    run before a single statement is sent."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MigrationFileError(f"{directory}: no such migrations directory\n"
                                 "Pass --migrations DIR (default supabase/migrations).")
    down_dir = directory / DOWN_DIR
    problems: list[str] = []
    migrations: list[Migration] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            if MIGRATION_FILE.match(path.name):  # named like a migration but not one we can read
                what = "a link to a file that does not exist" if path.is_symlink() else "not a regular file"
                problems.append(f"{path}: {what}\nReplace it with the migration file, or remove it.")
            continue
        if path.name.endswith(DOWN_SUFFIX):
            problems.append(
                f"{path}: a down script beside the migrations would be applied by `supabase db push` "
                f"as a migration\nMove it to {down_dir / path.name}.")
            continue
        match = MIGRATION_FILE.match(path.name)
        if match is None:
            if warn:
                warn(f"Skipping migration {path.name}... (file name must match pattern "
                     f"\"<timestamp>_name.sql\")")
            continue
        version, name = match.groups()
        if not _utf8(path.name):
            problems.append(f"{path.parent / ascii(path.name)[1:-1]}: the file name is not UTF-8, and its history "
                            "row (a text column) could not hold it\nRename the file with UTF-8 characters only.")
            continue
        if version in seen:
            problems.append(f"{path}: version {version} is also used by {seen[version]}\n"
                            "Give one of them a new timestamp (supabase migration new <name>).")
            continue
        seen[version] = path.name
        down_path = down_dir / (path.name[: -len(".sql")] + DOWN_SUFFIX)
        try:
            sql = _read(path)
            down_sql = _read(down_path) if down_path.exists() else None
            if down_sql is not None:
                parse_migration(version, name + "/down", down_sql, str(down_path))
            migrations.append(parse_migration(version, name, sql, str(path), down_sql))
        except MigrationFileError as exc:
            problems.append(str(exc))
    if down_dir.is_dir():
        stems = {m.filename[: -len(".sql")] for m in migrations}
        for down in sorted(down_dir.glob(f"*{DOWN_SUFFIX}")):
            if down.name[: -len(DOWN_SUFFIX)] not in stems:
                problems.append(f"{down}: no migration {down.name[: -len(DOWN_SUFFIX)]}.sql for this "
                                "down script\nRename it after its migration or delete it.")
    if problems:
        raise MigrationFileError("\n".join(problems))
    return migrations


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # bytes the file system could not decode (surrogate escapes)
        return False


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
        if "\x00" in text:
            line = text.count("\n", 0, text.index("\x00")) + 1
            raise MigrationFileError(f"{path}:{line}: a NUL byte, which PostgreSQL cannot take in SQL text\n"
                                     "Save the file as plain UTF-8 text (it may have been saved as UTF-16).")
        return text
    except UnicodeDecodeError as exc:
        raise MigrationFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})\n"
                                 "Save the file as UTF-8.") from None
    except OSError as exc:
        raise MigrationFileError(f"{path}: cannot be read ({exc.strerror})\n"
                                 "Check the file's permissions.") from None
