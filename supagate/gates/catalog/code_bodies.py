"""The SQL inside code a migration runs: a DO block's body, the body of a function or
procedure it calls (and of those they call), a trigger it attaches, a domain check, a
pg_cron job's command, and the SQL text a call hands to a function that EXECUTEs what it
is given (`select ops.run_job('x', 'drop table t')`). The shadow database runs that code, but
only the paths the shadow's (empty) data takes: `if exists (select 1 from auth.users) then
drop table ...` never drops there. So the statements in the code are read as written too,
every branch; a dynamic EXECUTE is judged by the text its constant pieces spell
(`format('truncate %I', t)`)."""

from __future__ import annotations

import re
from functools import lru_cache

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
            if key == "PLpgSQL_stmt_dynexecute":
                expression = item["query"]["PLpgSQL_expr"]["query"]
                constant = _constant(expression)
                found.append(constant if constant is not None else _spelled(expression))
            elif key == "PLpgSQL_expr":  # a statement, or a condition, PERFORM or assignment (its calls)
                found.append(item["query"] if item.get("parseMode") == 0 else f"SELECT {item['query']}")
            _collect(item, found)


def runs_given_sql(body: str, language: str) -> bool:
    """Whether a plpgsql body EXECUTEs SQL that is not a constant: text it was given, or built."""
    return (language or "").lower() == "plpgsql" and _dynamic_executes(body)


@lru_cache(maxsize=1024)
def _dynamic_executes(body: str) -> bool:
    tag = "$supagate_body$"
    try:
        tree = pglast.parse_plpgsql(f"CREATE FUNCTION pg_temp.body() RETURNS void LANGUAGE plpgsql AS {tag}{body}{tag}")
    except Exception:  # noqa: BLE001 - as in sql_in_code
        return False
    return any(_constant(e) is None for e in _dynamic_expressions(tree))


def _dynamic_expressions(value):
    if isinstance(value, list):
        for item in value:
            yield from _dynamic_expressions(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors"):
                yield item["query"]["PLpgSQL_expr"]["query"]
            yield from _dynamic_expressions(item)


def constant_text(node) -> str | None:
    """A call argument's value when it is a string literal (named or not), else None."""
    node = getattr(node, "arg", node) if type(node).__name__ == "NamedArgExpr" else node
    return getattr(getattr(node, "val", None), "sval", None) if type(node).__name__ == "A_Const" else None


# What a dynamic EXECUTE's constant pieces may spell that removes data.
_DESTRUCTIVE_WORDS = re.compile(r"(drop\s*(table|schema)|truncate|delete\s*from|drop\s*column)", re.IGNORECASE)


def _spelled(expression: str) -> str:
    """A stand-in statement for a dynamic EXECUTE: the destructive words its string pieces
    spell when joined (`'trunc' || 'ate ' || t`), as `-- dynamic: truncate`, else ''."""
    try:
        nodes = pglast.parse_sql(f"SELECT {expression}")
    except pglast.parser.ParseError:
        return ""
    from supagate.gates.catalog.nodes import walk

    text = "".join(n.sval for n in walk(nodes) if type(n).__name__ == "String")  # 'trunc' || 'ate': joined
    words = _DESTRUCTIVE_WORDS.search(text)
    return f"-- dynamic: {words.group(1).lower()}" if words else ""


def _constant(expression: str) -> str | None:
    """The value of a string literal expression, else None."""
    try:
        node = pglast.parse_sql(f"SELECT {expression}")[0].stmt.targetList[0].val
    except (pglast.parser.ParseError, AttributeError, IndexError, TypeError):
        return None
    val = getattr(node, "val", None)
    return getattr(val, "sval", None) if type(node).__name__ == "A_Const" else None


DYNAMIC = "-- dynamic: "
PG_SURGERY = {"heap_force_kill", "heap_force_freeze"}  # rows destroyed with no DML at all


class CodeScan:
    """Losses in code, on objects the migrations made before this file (the replayed
    catalog model), following the functions code calls, each once."""

    def __init__(self, catalog, created_here: set[str]):
        self.catalog, self.created_here = catalog, created_here

    def called(self, node):
        """(body, language, what) of the code a top-level statement calls: functions the
        migrations define, pg_cron job commands."""
        from supagate.gates.catalog.nodes import function_key, walk

        calls = [n for n in walk(node) if type(n).__name__ == "FuncCall"]
        for key in sorted({function_key(n.funcname, self.catalog.search_schema) for n in calls}):
            function = self.catalog.functions.get(key)
            if function is not None and not function.returns_trigger:
                yield function.body, function.language, f"function {key}, called here"
        for call in calls:
            names = [n.sval for n in call.funcname]
            function = self.catalog.functions.get(function_key(call.funcname, self.catalog.search_schema))
            if function is not None and runs_given_sql(function.body, function.language):
                for arg in call.args or ():
                    text = constant_text(arg)
                    if text is None:  # built here: judged by what its constant pieces spell
                        words = _DESTRUCTIVE_WORDS.search("".join(n.sval for n in walk(arg)
                                                                  if type(n).__name__ == "String"))
                        text = f"{DYNAMIC}{words.group(1).lower()}" if words else None
                    if text:
                        yield text, "sql", f"SQL handed to {function.name}, which EXECUTEs what it is given"
            if names in (["cron", "schedule"], ["cron", "schedule_in_database"]):  # runs later, unwatched
                command = call.args[2] if len(call.args or ()) > 2 else (call.args or [None])[-1]
                value = getattr(getattr(command, "val", None), "sval", None)
                if value is not None:
                    yield value, "sql", "a pg_cron job it schedules"
            elif names[-1] in PG_SURGERY:
                yield f"{DYNAMIC}destroy rows", "sql", f"{names[-1]} (pg_surgery)"

    def losses(self, body: str, language: str, seen: set | None = None):
        """(object, what it does, table) for each destructive statement in `body` and in
        the functions it calls."""
        from supagate.gates.catalog.nodes import walk

        seen = set() if seen is None else seen
        for sql in sql_in_code(body, language):
            if sql.startswith(DYNAMIC):
                what = sql[len(DYNAMIC):]
                yield "dynamic SQL", f"runs SQL built at run time that can {what}", None
                continue
            try:
                nodes = pglast.parse_sql(sql)
            except pglast.parser.ParseError:
                continue
            for node in walk(nodes):
                yield from self._loss_in(node)
                if type(node).__name__ == "DoStmt":  # one inside code: a top-level one is replay's
                    options = {o.defname: o.arg.sval for o in node.args or ()}
                    if options.get("as", "") not in seen:
                        seen.add(options.get("as", ""))
                        yield from self.losses(options.get("as", ""), options.get("language", "plpgsql"), seen)
            for inner_body, inner_language, _ in self.called(nodes):
                if inner_body not in seen:
                    seen.add(inner_body)
                    yield from self.losses(inner_body, inner_language, seen)

    def _loss_in(self, node):
        from supagate.gates.catalog.nodes import enum, reads_a_column

        kind = type(node).__name__
        catalog = self.catalog
        known = lambda key: key in catalog.relations and key not in self.created_here  # noqa: E731
        if kind == "DropStmt" and enum(node.removeType) == "OBJECT_TABLE":
            for obj in node.objects or ():
                names = [s.sval for s in obj]
                key = ".".join(names) if len(names) > 1 else f"{catalog.search_schema}.{names[0]}"
                if known(key):
                    yield key, f"drops table {key}", key
        elif kind == "DropStmt" and enum(node.removeType) == "OBJECT_SCHEMA":
            for obj in node.objects or ():
                schema = obj.sval if hasattr(obj, "sval") else obj[0].sval
                if any(known(k) for k in catalog.relations if k.startswith(schema + ".")):
                    yield schema, f"drops schema {schema}", None
        elif kind == "TruncateStmt":
            for rangevar in node.relations:
                if known(catalog.key(rangevar)):
                    yield catalog.key(rangevar), f"truncates {catalog.key(rangevar)}", None
        elif kind == "DeleteStmt" and not reads_a_column(node.whereClause):
            if known(catalog.key(node.relation)):
                key = catalog.key(node.relation)
                yield key, f"deletes every row of {key}", key
        elif kind == "AlterTableStmt" and known(catalog.key(node.relation)):
            key = catalog.key(node.relation)
            for cmd in node.cmds or ():
                if enum(cmd.subtype) == "AT_DropColumn":
                    yield f"{key}.{cmd.name}", f"drops column {cmd.name} of {key}", key
