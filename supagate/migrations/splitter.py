"""Split a migration file into statements exactly as the Supabase CLI does.

`supabase db push` stores each file's statements in
`supabase_migrations.schema_migrations.statements`; a database migrated by this program
must hold the very same array, so this follows the CLI's splitter (pkg/parser): split on
`;` outside quotes, dollar quotes, comments (block comments nest) and `BEGIN ATOMIC ...
END` bodies; trim whitespace; drop the `;` and empty statements; keep comments, so a
trailing comment becomes a statement of its own. tests/migrations/test_supabase_cli.py compares
this with what the real CLI stores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The next character that can change the scanner's state. Words matter only inside a
# file that may hold `BEGIN ATOMIC`; skipping them elsewhere makes splitting ~3x faster.
_INTERESTING = re.compile(r"""[;'"$/\-]|[A-Za-z_][A-Za-z_0-9]*""")
_INTERESTING_NO_WORDS = re.compile(r"""[;'"$/\-]""")
# PostgreSQL's lexer: identifier characters include every byte >= 0x80 (any non-ASCII
# character), in dollar-quote tags and before a `$` alike (`€$x$` is one identifier there).
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\u0080-\U0010ffff][A-Za-z_0-9\u0080-\U0010ffff]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_SPACE = " \t\n\r\f\v"


@dataclass(frozen=True)
class Statement:
    text: str  # trimmed, without the terminating semicolon
    line: int  # 1-based line in the file where `text` starts
    offset: int  # character offset in the file where `text` starts


class SplitError(ValueError):
    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def split_statements(sql: str) -> list[Statement]:
    statements = _Statements(sql)
    start = 0
    pos = 0
    n = len(sql)
    atomic_depth = 0  # inside BEGIN ATOMIC ... END, `;` does not end the statement
    prev_word = ""
    interesting = _INTERESTING if "atomic" in sql.lower() else _INTERESTING_NO_WORDS
    while pos < n:
        match = interesting.search(sql, pos)
        if match is None:
            break
        token = match.group()
        pos = match.start()
        ch = token[0]
        if ch == ";":
            pos += 1
            if atomic_depth == 0:
                _emit(statements, sql, start, pos - 1)
                start = pos
            prev_word = ""
        elif ch == "'":
            escape = pos > 0 and sql[pos - 1] in "eE" and (pos < 2 or not _is_ident(sql[pos - 2]))
            pos = _skip_string(sql, pos, escape)
        elif ch == '"':
            pos = _skip_until(sql, pos + 1, '"', "quoted identifier")
        elif ch == "$":
            tag = _DOLLAR_TAG.match(sql, pos)
            if tag and not (pos > 0 and _is_ident(sql[pos - 1])):
                end = sql.find(tag.group(), tag.end())
                if end < 0:
                    raise SplitError(f"unterminated dollar-quoted string {tag.group()}", _line(sql, pos))
                pos = end + len(tag.group())
            else:
                pos += 1
        elif token == "-":
            if sql.startswith("--", pos):
                newline = sql.find("\n", pos)
                pos = n if newline < 0 else newline + 1
            else:
                pos += 1
        elif token == "/":
            pos = _skip_block_comment(sql, pos) if sql.startswith("/*", pos) else pos + 1
        else:  # a word
            if pos > 0 and (_is_ident(sql[pos - 1]) or sql[pos - 1] == "$"):
                pos = match.end()
                continue
            word = token.lower()
            if word == "atomic" and prev_word == "begin":
                atomic_depth += 1
            elif atomic_depth and word == "case":
                atomic_depth += 1
            elif atomic_depth and word == "end":
                atomic_depth -= 1
            prev_word = word
            pos = match.end()
    _emit(statements, sql, start, n)
    return statements.found


def _is_ident(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or ord(ch) > 127


class _Statements:
    """The statements found so far, numbering lines as it goes: each newline is counted once,
    so reading a file stays linear in its size however many statements it holds."""

    def __init__(self, sql: str):
        self.sql, self.found = sql, []
        self._offset, self._line = 0, 1

    def add(self, text: str, offset: int) -> None:
        self._line += self.sql.count("\n", self._offset, offset)
        self._offset = offset
        self.found.append(Statement(text=text, line=self._line, offset=offset))


def _emit(statements: _Statements, sql: str, start: int, end: int) -> None:
    chunk = sql[start:end]
    stripped_left = chunk.lstrip(_SPACE)
    text = stripped_left.rstrip(_SPACE)
    if text:
        statements.add(text, start + (len(chunk) - len(stripped_left)))


def _line(sql: str, offset: int) -> int:
    return sql.count("\n", 0, offset) + 1


def _skip_string(sql: str, pos: int, escape: bool) -> int:
    i = pos + 1
    n = len(sql)
    while i < n:
        ch = sql[i]
        if escape and ch == "\\":
            i += 2
            continue
        if ch == "'":
            if i + 1 < n and sql[i + 1] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    raise SplitError("unterminated quoted string", _line(sql, pos))


def _skip_until(sql: str, pos: int, quote: str, what: str) -> int:
    end = sql.find(quote, pos)
    if end < 0:
        raise SplitError(f"unterminated {what}", _line(sql, pos))
    return end + 1


def _skip_block_comment(sql: str, pos: int) -> int:
    depth = 0
    i = pos
    n = len(sql)
    while i < n:
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise SplitError("unterminated block comment", _line(sql, pos))
