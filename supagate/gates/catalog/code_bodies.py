"""The SQL inside code a migration runs: a DO block's body, or the body of a function or
procedure the migration calls. The shadow database runs that code, but only the paths the
shadow's (empty) data takes: `if exists (select 1 from auth.users) then drop table ...`
never drops there. So the statements in the code are read as written too, every branch,
and the constant strings it EXECUTEs."""

from __future__ import annotations

import pglast


def sql_in_code(body: str, language: str) -> list[str]:
    """The SQL statements of a body: every static statement and every constant string it
    EXECUTEs (plpgsql), or the body itself (sql). Unparsable bodies give nothing: the server
    reports them, and the shadow runs them."""
    language = (language or "plpgsql").lower()
    if language == "sql":
        return [body]
    if language != "plpgsql":
        return []
    tag = "$supagate_body$"
    try:
        tree = pglast.parse_plpgsql(f"CREATE FUNCTION pg_temp.body() RETURNS void LANGUAGE plpgsql AS {tag}{body}{tag}")
    except Exception:  # noqa: BLE001 - pglast raises several kinds for a body it cannot read
        return []
    found: list[str] = []
    _collect(tree, found)
    return found


def _collect(value, found: list[str]) -> None:
    if isinstance(value, list):
        for item in value:
            _collect(item, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "PLpgSQL_stmt_execsql":
                found.append(item["sqlstmt"]["PLpgSQL_expr"]["query"])
            elif key == "PLpgSQL_stmt_dynexecute":
                constant = _constant(item["query"]["PLpgSQL_expr"]["query"])
                if constant is not None:
                    found.append(constant)
            _collect(item, found)


def _constant(expression: str) -> str | None:
    """The value of a string literal expression, else None."""
    try:
        node = pglast.parse_sql(f"SELECT {expression}")[0].stmt.targetList[0].val
    except (pglast.parser.ParseError, AttributeError, IndexError, TypeError):
        return None
    val = getattr(node, "val", None)
    return getattr(val, "sval", None) if type(node).__name__ == "A_Const" else None
