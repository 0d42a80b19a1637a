"""What a maintenance job's `sql:` may be: an allow-list of shapes, not a list of dangers.

A job's SQL comes from a stack file and runs on prod every night with nobody watching, so
it is one of a few shapes whose effect a reviewer reads at a glance:

- `SELECT schema.fn(constants)` or `CALL schema.fn(constants)`: a function a migration
  defines (the pack checks that, and the gates read its body);
- `DELETE FROM table WHERE column < now() - interval '30 days'`: each condition compares a
  column with a value that reads no column (`where id = id` or `where true` keep nothing);
  any other DELETE, and TRUNCATE, only with `-- gate:approve <reason>`;
- `VACUUM` (not FULL: it locks the table out), `ANALYZE`, `REFRESH MATERIALIZED VIEW`.

Anything else (UPDATE, MERGE, DO, DDL, GRANT, a `cron.schedule`, a call of PostgreSQL's or an
extension's functions) belongs in a function a migration defines, where the migration gate
and its reviewers see it; the job then `call:`s it. Parsed with pglast, never matched."""

from __future__ import annotations

import re

# Schemas whose functions are not the app's: PostgreSQL's own, the scheduler, extensions,
# secrets, the network, and supagate's own bookkeeping.
NOT_APP_SCHEMAS = {"pg_catalog", "information_schema", "cron", "net", "extensions", "vault", "pgsodium", "dblink",
                   "http", "supabase_functions", "ops", "auth", "storage", "realtime", "graphql", "pgbouncer"}
# Values a job's arguments and conditions may compute from: the clock.
CLOCK_FUNCTIONS = {"now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "make_interval"}
COMPARISONS = {"<", "<=", ">", ">=", "=", "<>", "!="}
SHAPES = ("one SELECT or CALL of a function a migration defines (schema.name, constant arguments), a DELETE whose "
          "WHERE compares columns with values, VACUUM (not FULL), ANALYZE or REFRESH MATERIALIZED VIEW")
FIX = ("Put the change in a function a migration defines (the migration gate and its reviewers read it) and "
       "`call:` it from the job.")
_APPROVED = re.compile(r"--\s*gate:approve[ \t]+\S.{7,}$", re.MULTILINE)  # a reason, not a letter


def shape_problem(sql: str) -> str | None:
    """None when `sql` is one of the shapes above; otherwise what it is, in a sentence."""
    import pglast

    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        return f"does not parse: {exc}"
    if len(statements) != 1:
        return f"is {len(statements)} statements"
    node = statements[0].stmt
    kind = type(node).__name__
    approved = bool(_APPROVED.search(sql))
    if kind == "SelectStmt":
        return _select_problem(node)
    if kind == "CallStmt":
        return _call_problem(node.funccall)
    if kind == "DeleteStmt":
        if node.usingClause or node.withClause or node.returningList:
            return "is a DELETE with USING, WITH or RETURNING"
        if approved or _keeps_rows(node.whereClause):
            return None
        return ("is a DELETE whose WHERE does not compare a column with a value, so it may remove every row; "
                "approve it with `-- gate:approve <who, why>` or give it a real condition")
    if kind == "TruncateStmt":
        return None if approved else "is a TRUNCATE; approve it with `-- gate:approve <who, why>`"
    if kind == "VacuumStmt":
        options = {o.defname.lower() for o in node.options or ()}
        return "is VACUUM FULL, which locks the table out for its whole run" if "full" in options else None
    if kind == "RefreshMatViewStmt":
        return None
    return f"is a {kind.removesuffix('Stmt').upper()} statement"


def _select_problem(node) -> str | None:
    clauses = ("fromClause", "whereClause", "groupClause", "havingClause", "withClause", "intoClause",
               "lockingClause", "distinctClause", "sortClause", "limitCount", "valuesLists", "larg")
    if any(getattr(node, c, None) for c in clauses) or len(node.targetList or ()) != 1:
        return "is a SELECT that is not one call of a function (`select schema.fn(...)`)"
    value = node.targetList[0].val
    if type(value).__name__ != "FuncCall":
        return "is a SELECT of something other than one function call"
    return _call_problem(value)


def _call_problem(call) -> str | None:
    names = [n.sval for n in call.funcname]
    if len(names) != 2:
        return f"calls {'.'.join(names)}() without its schema; name it schema.function"
    if names[0].lower() in NOT_APP_SCHEMAS or names[0].lower().startswith("pg_"):
        return f"calls {'.'.join(names)}(), which is not the app's (a migration defines the functions a job calls)"
    if call.agg_filter or call.over or call.agg_star:
        return f"calls {'.'.join(names)}() as an aggregate or window function"
    for arg in call.args or ():
        if not _reads_nothing(arg):
            return f"passes {'.'.join(names)}() an argument that reads a table, a column or a function"
    return None


def _keeps_rows(where) -> bool:
    """Whether `where` is an AND of conditions that each compare one column with a value."""
    if where is None:
        return False
    kind = type(where).__name__
    if kind == "BoolExpr":
        return where.boolop.name == "AND_EXPR" and all(_keeps_rows(arg) for arg in where.args)
    if kind == "NullTest":  # IS NULL keeps the rows that have a value; IS NOT NULL keeps almost none
        return where.nulltesttype.name == "IS_NULL" and type(where.arg).__name__ == "ColumnRef"
    if kind != "A_Expr" or where.kind.name not in ("AEXPR_OP", "AEXPR_IN"):
        return False
    if where.kind.name == "AEXPR_OP" and (len(where.name) != 1 or where.name[0].sval not in COMPARISONS):
        return False
    sides = [where.lexpr, where.rexpr]
    columns = [s for s in sides if type(s).__name__ == "ColumnRef"]
    return len(columns) == 1 and all(_reads_nothing(s) for s in sides if s is not columns[0])


def _reads_nothing(node) -> bool:
    """Whether `node` is built from constants and the clock alone."""
    from supagate.gates.catalog.nodes import walk

    for part in walk(node if isinstance(node, (list, tuple)) else [node]):
        kind = type(part).__name__
        if kind in ("ColumnRef", "SubLink", "ParamRef", "RangeVar", "SelectStmt"):
            return False
        if kind == "FuncCall" and [n.sval for n in part.funcname][-1].lower() not in CLOCK_FUNCTIONS:
            return False
    return True
