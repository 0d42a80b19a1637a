"""The migration engine's database connection: libpq itself, called through ctypes.

Why not psycopg here: `import psycopg` costs 0.09-0.1 s (asyncio, logging, ssl, typing
stubs), more than applying fifty small migrations. The engine needs little of it: one
connection, simple-protocol queries (several statements in one round trip), a few typed
values bound on the client, transactions, server error fields and cancel on Ctrl-C. This
module gives exactly that over the same libpq psycopg's binary wheel ships (so TLS, SCRAM,
service files and PG* variables behave the same), and imports in about 10 ms. The rest of
the product keeps psycopg.

Values come back as Python objects for the types the engine reads (bool, integers, text
and one-dimensional arrays of them); any other type comes back as its text form.
"""

from __future__ import annotations

import ctypes
import os
import select
import sys
from contextlib import contextmanager
from pathlib import Path

from supagate.postgres.sql_values import bind, converter

# PQresultStatus
EMPTY_QUERY, COMMAND_OK, TUPLES_OK, COPY_OUT, COPY_IN, BAD_RESPONSE, NONFATAL_ERROR, FATAL_ERROR = range(8)
# PQtransactionStatus
IDLE, ACTIVE, INTRANS, INERROR, UNKNOWN = range(5)
CONNECTION_OK = 0

# The error fields (postgres_ext.h) behind the psycopg-shaped `Error.diag`.
_DIAG_FIELDS = {"severity": "S", "severity_nonlocalized": "V", "sqlstate": "C", "message_primary": "M",
                "message_detail": "D", "message_hint": "H", "statement_position": "P",
                "internal_position": "p", "internal_query": "q", "context": "W", "schema_name": "s",
                "table_name": "t", "column_name": "c", "datatype_name": "d", "constraint_name": "n",
                "source_file": "F", "source_line": "L", "source_function": "R"}


class Error(Exception):
    """A server or connection error; `diag` has the server's fields, as psycopg's does."""

    def __init__(self, message: str, diag: "Diagnostic | None" = None):
        super().__init__(message)
        self.diag = diag or Diagnostic({})

    @property
    def sqlstate(self) -> str | None:
        return self.diag.sqlstate


class OperationalError(Error):
    """The connection failed or broke."""


class NotSupportedError(Error):
    """Something the engine does not do over this connection (COPY FROM STDIN, a type)."""


class Diagnostic:
    def __init__(self, fields: dict[str, str]):
        self._fields = fields

    def __getattr__(self, name: str) -> str | None:
        if name not in _DIAG_FIELDS:
            raise AttributeError(name)
        return self._fields.get(name)


# ---------------------------------------------------------------- the library

def _library_candidates() -> list[str]:
    """psycopg's binary wheel bundles libpq (found without importing psycopg); else the system's."""
    found = []
    for entry in sys.path:
        base = Path(entry or ".")
        found += sorted(str(p) for p in (base / "psycopg_binary.libs").glob("libpq*.so*"))
        found += sorted(str(p) for p in (base / "psycopg_binary" / ".dylibs").glob("libpq*.dylib"))
    return found + ["libpq.so.5", "libpq.5.dylib", "libpq.dylib", "libpq.dll"]


def _load() -> ctypes.CDLL:
    override = os.environ.get("SUPAGATE_LIBPQ")
    for candidate in [override] if override else _library_candidates():
        try:
            lib = ctypes.CDLL(candidate)
            break
        except OSError:
            continue
    else:
        from ctypes.util import find_library  # slow (runs ldconfig): the last resort

        path = None if override else find_library("pq")
        if path is None:
            raise OperationalError(
                "failed to connect: libpq was not found" + (f" at SUPAGATE_LIBPQ={override}" if override else "")
                + "\nInstall psycopg[binary] (it ships libpq) or the libpq5 package.")
        lib = ctypes.CDLL(path)
    p, s, i, u = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint
    for name, restype, argtypes in (
            ("PQconnectdbParams", p, [ctypes.POINTER(s), ctypes.POINTER(s), i]),
            ("PQstatus", i, [p]), ("PQerrorMessage", s, [p]), ("PQfinish", None, [p]),
            ("PQsetNoticeProcessor", p, [p, p, p]), ("PQsocket", i, [p]),
            ("PQsendQuery", i, [p, s]), ("PQconsumeInput", i, [p]), ("PQisBusy", i, [p]),
            ("PQgetResult", p, [p]), ("PQresultStatus", i, [p]), ("PQresultErrorMessage", s, [p]),
            ("PQresultErrorField", s, [p, i]), ("PQntuples", i, [p]), ("PQnfields", i, [p]),
            ("PQftype", u, [p, i]), ("PQgetisnull", i, [p, i, i]), ("PQgetvalue", s, [p, i, i]),
            ("PQcmdTuples", s, [p]), ("PQclear", None, [p]), ("PQtransactionStatus", i, [p]),
            ("PQputCopyEnd", i, [p, s]), ("PQgetCopyData", i, [p, ctypes.POINTER(p), i]),
            ("PQfreemem", None, [p]), ("PQgetCancel", p, [p]), ("PQfreeCancel", None, [p]),
            ("PQcancel", i, [p, s, i]), ("PQbackendPID", i, [p]),
            ("PQconninfoParse", p, [s, ctypes.POINTER(p)]), ("PQconninfoFree", None, [p])):
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


_lib: ctypes.CDLL | None = None
# Notices (NOTICE: relation already exists, skipping) are dropped, as psycopg drops them
# when no handler is registered; libpq's default would print them on stderr.
_QUIET = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)(lambda _arg, _message: None)


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


# ---------------------------------------------------------------- the connection

class Rows:
    """What a query returned: the rows of its first row-returning result."""

    def __init__(self, rows: list[tuple], rowcount: int):
        self._rows, self.rowcount, self._next = rows, rowcount, 0

    def fetchone(self):
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple]:
        rows, self._next = self._rows[self._next:], len(self._rows)
        return rows


class Connection:
    """One autocommit session; transactions are SQL (BEGIN ... COMMIT in one query) or
    `transaction()`, which nests with savepoints."""

    def __init__(self, handle):
        self._pg, self._depth = handle, 0
        lib().PQsetNoticeProcessor(handle, ctypes.cast(_QUIET, ctypes.c_void_p), None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        if self._pg:
            lib().PQfinish(self._pg)
            self._pg = None

    @property
    def closed(self) -> bool:
        return not self._pg or lib().PQstatus(self._pg) != CONNECTION_OK

    @property
    def idle(self) -> bool:
        """No transaction open (and none failed) on the server."""
        return not self.closed and lib().PQtransactionStatus(self._pg) == IDLE

    @property
    def backend_pid(self) -> int:
        return lib().PQbackendPID(self._pg)

    def execute(self, query: str, params=()) -> Rows:
        """Run `query` (several statements are one round trip) with `params` bound on the client."""
        if self.closed:
            raise OperationalError("the connection is closed")
        text = bind(query, params) if params else query
        if "\x00" in text:  # libpq reads a C string: the rest would be dropped unseen
            raise NotSupportedError("the query contains a NUL (0x00) character, which PostgreSQL cannot take; "
                                    "remove it from the file")
        if not lib().PQsendQuery(self._pg, text.encode()):
            raise OperationalError(self._message())
        return self._results()

    def rollback(self) -> None:
        """End an open (or failed) transaction; nothing to do on an idle or closed session."""
        if not self.closed and lib().PQtransactionStatus(self._pg) in (INTRANS, INERROR):
            self.execute("ROLLBACK")

    @contextmanager
    def transaction(self, force_rollback: bool = False):
        """BEGIN/COMMIT, or a savepoint inside one; rolled back on an exception or when asked."""
        savepoint = f"supagate_{self._depth}" if self._depth else None
        self.execute(f"SAVEPOINT {savepoint}" if savepoint else "BEGIN")
        self._depth += 1
        try:
            yield self
        except BaseException:
            self._depth -= 1
            try:
                self._undo(savepoint)
            except Error:
                pass  # the original exception says more than a failed rollback of a broken session
            raise
        self._depth -= 1
        if force_rollback:
            self._undo(savepoint)
        else:
            self.execute(f"RELEASE SAVEPOINT {savepoint}" if savepoint else "COMMIT")

    def _undo(self, savepoint: str | None) -> None:
        if self.closed:
            return
        self.execute(f"ROLLBACK TO SAVEPOINT {savepoint}; RELEASE SAVEPOINT {savepoint}" if savepoint else "ROLLBACK")

    # -- internals

    def _message(self) -> str:
        return _connection_message(self._pg)

    def _results(self) -> Rows:
        """Every result of the query sent; the first error wins, after the query is drained."""
        rows, rowcount, error = None, -1, None
        for result in self._each_result():
            try:
                status = lib().PQresultStatus(result)
                if status in (FATAL_ERROR, BAD_RESPONSE) and error is None:
                    error = _error(result)
                elif status == TUPLES_OK and rows is None:
                    try:
                        rows = _rows(result)
                    except ValueError as exc:  # a value it cannot read; the query is still drained
                        rows, error = [], error or NotSupportedError(str(exc))
                    rowcount = len(rows)
                elif status == COMMAND_OK and rows is None:
                    count = lib().PQcmdTuples(result)
                    rowcount = int(count) if count else -1
                elif status == COPY_IN:
                    lib().PQputCopyEnd(self._pg, b"COPY FROM STDIN is not supported in a migration")
                    error = error or NotSupportedError(
                        "COPY ... FROM STDIN cannot run in a migration; load the data with INSERT "
                        "statements or a seed file")
                elif status == COPY_OUT:
                    self._discard_copy_out()
            finally:
                lib().PQclear(result)
        if error is not None:
            raise error
        if self.closed:
            raise OperationalError(self._message() or "the server closed the connection")
        return Rows(rows or [], rowcount)

    def _each_result(self):
        cancelled = False
        while True:
            try:
                self._wait_ready()
            except KeyboardInterrupt:
                # Ctrl-C: ask the server to cancel the statement, read what is left, then stop.
                if not cancelled:
                    cancelled = True
                    self._cancel()
                continue
            result = lib().PQgetResult(self._pg)
            if not result:
                break
            yield result
        if cancelled:
            raise KeyboardInterrupt

    def _wait_ready(self) -> None:
        while lib().PQisBusy(self._pg):
            _wait_readable(lib().PQsocket(self._pg))
            if not lib().PQconsumeInput(self._pg):
                raise OperationalError(self._message() or "the server closed the connection")

    def _discard_copy_out(self) -> None:
        buffer = ctypes.c_void_p()
        while lib().PQgetCopyData(self._pg, ctypes.byref(buffer), 0) > 0:  # -1: done
            lib().PQfreemem(buffer)

    def _cancel(self) -> None:
        cancel = lib().PQgetCancel(self._pg)
        if cancel:
            lib().PQcancel(cancel, ctypes.create_string_buffer(256), 256)
            lib().PQfreeCancel(cancel)


def _wait_readable(fd: int) -> None:
    if hasattr(select, "poll"):  # select() cannot watch a descriptor above 1023 (a busy provider host)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll()
    else:
        select.select([fd], [], [])


def _connection_message(handle) -> str:
    return (lib().PQerrorMessage(handle) or b"").decode(errors="replace").strip()


def _rows(result) -> list[tuple]:
    L = lib()
    fields = range(L.PQnfields(result))
    converters = [converter(L.PQftype(result, f)) for f in fields]
    rows = []
    for r in range(L.PQntuples(result)):
        row = []
        for f, convert in zip(fields, converters):
            if L.PQgetisnull(result, r, f):
                row.append(None)
                continue
            text = L.PQgetvalue(result, r, f).decode()
            row.append(convert(text) if convert else text)
        rows.append(tuple(row))
    return rows


def _error(result) -> Error:
    L = lib()
    fields = {}
    for name, code in _DIAG_FIELDS.items():
        value = L.PQresultErrorField(result, ord(code))
        if value is not None:
            fields[name] = value.decode(errors="replace")
    message = (L.PQresultErrorMessage(result) or b"").decode(errors="replace").strip()
    for severity in ("ERROR:  ", "FATAL:  ", "PANIC:  "):  # psycopg's str() has no severity either
        message = message.removeprefix(severity)
    return Error(message or fields.get("message_primary", "unknown error"), Diagnostic(fields))


class _ConninfoOption(ctypes.Structure):
    _fields_ = [("keyword", ctypes.c_char_p), ("envvar", ctypes.c_char_p), ("compiled", ctypes.c_char_p),
                ("val", ctypes.c_char_p), ("label", ctypes.c_char_p), ("dispchar", ctypes.c_char_p),
                ("dispsize", ctypes.c_int)]


def conninfo_values(conninfo: str) -> dict[str, str]:
    """The parameters a URL or key=value string sets, as libpq reads them."""
    error = ctypes.c_void_p()
    options = lib().PQconninfoParse(conninfo.encode(), ctypes.byref(error))
    if not options:
        message = ctypes.string_at(error).decode(errors="replace").strip() if error else "out of memory"
        if error:
            lib().PQfreemem(error)
        raise OperationalError(message)
    try:
        found, item = {}, ctypes.cast(options, ctypes.POINTER(_ConninfoOption))
        for index in range(1000):  # the array ends with a NULL keyword
            if item[index].keyword is None:
                break
            if item[index].val is not None:
                found[item[index].keyword.decode()] = item[index].val.decode(errors="replace")
        return found
    finally:
        lib().PQconninfoFree(options)


def connect(conninfo: str, **settings: str | int) -> Connection:
    """Open a session: `conninfo` is a URL or key=value string; `settings` (libpq
    parameters) override what it says. Raises OperationalError with libpq's message."""
    keys = ["dbname", "client_encoding", *settings]
    values = [conninfo, "UTF8", *(str(v) for v in settings.values())]
    keywords = (ctypes.c_char_p * (len(keys) + 1))(*[k.encode() for k in keys], None)
    arguments = (ctypes.c_char_p * (len(values) + 1))(*[v.encode() for v in values], None)
    handle = lib().PQconnectdbParams(keywords, arguments, 1)
    if not handle:
        raise OperationalError("failed to connect: out of memory")
    if lib().PQstatus(handle) != CONNECTION_OK:
        message = _connection_message(handle)
        lib().PQfinish(handle)
        raise OperationalError(message)
    return Connection(handle)
