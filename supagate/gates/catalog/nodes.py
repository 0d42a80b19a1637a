"""Reading pglast parse trees: the small questions the replay asks of a node."""

from __future__ import annotations

import pglast
from pglast.stream import RawStream

def enum(value) -> str:
    return getattr(value, "name", str(value))


def role_names(specs) -> tuple[str, ...]:
    roles = []
    for spec in specs or ():
        kind = enum(spec.roletype)
        if kind == "ROLESPEC_PUBLIC":
            roles.append("public")
        elif kind == "ROLESPEC_CSTRING":
            roles.append(spec.rolename)
        else:
            roles.append(kind.removeprefix("ROLESPEC_").lower())
    return tuple(roles)


def apply_grant(privs: set[str], granted: set[str], is_grant: bool) -> None:
    if is_grant:
        privs |= granted
    elif "all" in granted:
        privs.clear()
    else:
        if "all" in privs:  # ALL minus some: expand so a revoke of SELECT takes effect
            privs.discard("all")
            privs |= {"select", "insert", "update", "delete", "truncate", "references", "trigger"}
        privs -= granted


def deparse(node) -> str | None:
    return None if node is None else RawStream()(node)


def option_true(options, name: str) -> bool:
    for option in options or ():
        if getattr(option, "defname", None) != name:
            continue
        arg = option.arg
        if arg is None:
            return True
        if hasattr(arg, "boolval"):
            return bool(arg.boolval)
        if hasattr(arg, "sval"):
            return arg.sval.lower() in ("true", "on", "1", "yes")
        if hasattr(arg, "ival"):
            return bool(arg.ival)
    return False


def sets_search_path(options) -> bool:
    return any(getattr(o, "defname", None) == "set" and o.arg.name == "search_path"
               and enum(o.arg.kind) != "VAR_RESET" for o in options or ())


def function_key(names, search_schema: str) -> str:
    parts = [n.sval for n in names]
    return ".".join(parts) if len(parts) > 1 else f"{search_schema}.{parts[0]}"


def references_auth_users(constraint) -> bool:
    table = getattr(constraint, "pktable", None)
    return (enum(getattr(constraint, "contype", "")) == "CONSTR_FOREIGN" and table is not None
            and table.schemaname == "auth" and table.relname == "users")


def reads_auth_users(node) -> bool:
    for child in walk(node):
        if type(child).__name__ == "RangeVar" and child.schemaname == "auth" and child.relname == "users":
            return True
    return False


def walk(node):
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (list, tuple)):
            stack.extend(current)
        elif isinstance(current, pglast.ast.Node):
            yield current
            for attr in current.__slots__:
                value = getattr(current, attr, None)
                if isinstance(value, (pglast.ast.Node, list, tuple)):
                    stack.append(value)


def leading_lines(text: str) -> int:
    """Lines of comments and blank space before a statement's first keyword."""
    position, count = 0, 0
    while position < len(text):
        if text.startswith("--", position):
            end = text.find("\n", position)
            position = len(text) if end < 0 else end
        elif text.startswith("/*", position):
            end = text.find("*/", position)
            end = len(text) if end < 0 else end + 2
            count += text.count("\n", position, end)
            position = end
        elif text[position] in " \t\r":
            position += 1
        elif text[position] == "\n":
            count += 1
            position += 1
        else:
            break
    return count



def function_body(node) -> str:
    """The text of a CREATE FUNCTION's body (AS '...' or BEGIN ATOMIC ... END)."""
    for option in node.options or ():
        if getattr(option, "defname", None) == "as":
            return " ".join(getattr(part, "sval", "") for part in option.arg)
    return deparse(node.sql_body) or "" if getattr(node, "sql_body", None) is not None else ""


def reads_a_column(where) -> bool:
    """Whether a WHERE can select some rows rather than all: it reads a column, other than
    to ask whether it is null (`where id is not null` is every row of a keyed table)."""
    if where is None:
        return False
    tests = [n for n in walk(where) if type(n).__name__ == "NullTest"]
    nulls = {id(r) for t in tests for r in walk(t.arg) if type(r).__name__ == "ColumnRef"}
    return any(type(n).__name__ == "ColumnRef" and id(n) not in nulls for n in walk(where))
