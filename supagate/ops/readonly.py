"""Is a piece of SQL one read-only SELECT, and is a maintenance command one statement?

The fast first filter for custom alert rules, in the settings and the pack: a single SELECT
that neither writes (data-modifying CTEs, SELECT INTO, row locks) nor calls what is known to
change state, sleep, read files, run SQL text, open connections or read supagate's and
Vault's schemas. It is not the guarantee: a rule runs behind a privilege boundary (ops.sql,
"alert-rule boundary"), and `supagate plan` runs it there in the shadow database
(supagate/ops/boundary.py). Parsed with pglast (PostgreSQL's own parser), never matched
with a regular expression.
"""

from __future__ import annotations

# Functions that change state or the session, wait, read files, run SQL given as text, or
# reach outside the database; and prefixes of whole families of them.
WRITING_FUNCTIONS = {
    "nextval", "setval", "set_config", "pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_terminate_backend",
    "pg_cancel_backend", "pg_reload_conf", "pg_advisory_lock", "pg_advisory_xact_lock", "pg_try_advisory_lock",
    "pg_try_advisory_xact_lock", "http_post", "http_get", "http_request", "pg_notify", "txid_current",
    "pg_switch_wal", "pg_rotate_logfile", "pg_stat_reset", "pg_stat_statements_reset", "schedule", "unschedule",
    "alter_job", "schedule_in_database", "create_secret", "update_secret", "query_to_xml",
    "query_to_xml_and_xmlschema", "query_to_xmlschema", "cursor_to_xml", "pg_read_file", "pg_read_binary_file",
    "pg_ls_dir", "pg_stat_file",
    # allowed in a read-only transaction and not undone by its rollback: fills the WAL
    "pg_logical_emit_message",
    # run SQL given as text, resolved only when the rule runs
    "ts_stat", "ts_rewrite",
}
WRITING_PREFIXES = ("lo_", "dblink", "pg_ls_", "http", "pg_stat_reset", "pg_replication_", "pg_create_",
                    "pg_drop_", "pg_logical_")
# Schemas a rule never reads or calls into: supagate's own (but its clock, ops.now()), and secrets.
CLOSED_SCHEMAS = {"ops", "vault", "pgsodium", "cron", "net"}


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
            names = [n.sval.lower() for n in node.funcname]
            if names[-1] in WRITING_FUNCTIONS or names[-1].startswith(WRITING_PREFIXES):
                problems.append(f"calls {names[-1]}(), which changes state, waits, reads files, runs SQL text "
                                "or opens a connection")
            elif len(names) > 1 and names[0] in CLOSED_SCHEMAS and names != ["ops", "now"]:
                problems.append(f"calls {'.'.join(names)}(): {names[0]} is not for alert rules")

        def visit_RangeVar(self, _ancestors, node):
            if (node.schemaname or "").lower() in CLOSED_SCHEMAS:
                problems.append(f"reads {node.schemaname}.{node.relname}: {node.schemaname} is not for alert rules")

    Writes()(statement)
    return problems[0] if problems else None


def statement_count(sql: str) -> int:
    return len(_statements(sql))
