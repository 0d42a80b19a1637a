"""Is a piece of SQL one read-only SELECT, and is a maintenance command one statement?

Custom alert rules run every minute as the database owner, so the pack and the settings
refuse anything but a single SELECT that neither writes (data-modifying CTEs, SELECT INTO,
row locks) nor calls a function known to change state. Parsed with pglast (PostgreSQL's
own parser), never matched with a regular expression.
"""

from __future__ import annotations

# Functions that change state or the session, or reach outside the database.
WRITING_FUNCTIONS = {
    "nextval", "setval", "set_config", "pg_sleep", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
    "pg_advisory_lock", "pg_advisory_xact_lock", "pg_try_advisory_lock", "pg_try_advisory_xact_lock",
    "lo_import", "lo_export", "lo_unlink", "dblink", "dblink_exec", "http_post", "http_get", "http_request",
    "pg_notify", "txid_current", "pg_switch_wal", "pg_rotate_logfile", "pg_stat_reset", "pg_stat_statements_reset",
    "schedule", "unschedule", "alter_job", "schedule_in_database", "create_secret", "update_secret",
}


def _statements(sql: str):
    import pglast

    try:
        return pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        raise ValueError(f"does not parse: {exc}") from None


def read_only_problem(sql: str) -> str | None:
    """None when `sql` is one read-only SELECT; otherwise why not, in a sentence."""
    from pglast import ast
    from pglast.visitors import Visitor

    if not isinstance(sql, str) or not sql.strip():
        return "a sql rule needs a query (one SELECT returning one number)"
    try:
        statements = _statements(sql)
    except ValueError as exc:
        return str(exc)
    if len(statements) != 1:
        return f"is {len(statements)} statements; a rule runs exactly one SELECT"
    statement = statements[0].stmt
    if not isinstance(statement, ast.SelectStmt):
        return f"is a {type(statement).__name__.removesuffix('Stmt').upper()} statement, not a SELECT"
    problems: list[str] = []

    class Writes(Visitor):
        def visit_SelectStmt(self, _ancestors, node):
            if node.intoClause is not None:
                problems.append("SELECT INTO creates a table")
            if node.lockingClause:
                problems.append("FOR UPDATE/SHARE takes row locks")

        def visit_InsertStmt(self, _ancestors, _node):
            problems.append("a data-modifying WITH (INSERT) writes")

        def visit_UpdateStmt(self, _ancestors, _node):
            problems.append("a data-modifying WITH (UPDATE) writes")

        def visit_DeleteStmt(self, _ancestors, _node):
            problems.append("a data-modifying WITH (DELETE) writes")

        def visit_FuncCall(self, _ancestors, node):
            name = node.funcname[-1].sval.lower()
            if name in WRITING_FUNCTIONS:
                problems.append(f"calls {name}(), which changes state")

    Writes()(statement)
    return problems[0] if problems else None


def statement_count(sql: str) -> int:
    return len(_statements(sql))
