"""What a maintenance job's `sql:` may be: an allow-list of shapes, not a list of dangers.

A job's SQL comes from a stack file and runs on prod every night with nobody watching, so
it is one of a few shapes whose effect a reviewer reads at a glance:

- `SELECT schema.fn(constants)` or `CALL schema.fn(constants)`: a function a migration
  defines (the pack checks that, and the gates read its body);
- `DELETE FROM table WHERE column < now() - interval '30 days'`: the retention shape, a
  column before the clock minus a constant interval, optionally AND-ed with
  `column = 'constant'` (`where id = id`, `where true`, `where id <> -1`,
  `where taken_at < 'infinity'` keep nothing, and a custom operator can do anything); any
  other DELETE, and TRUNCATE, only with `-- gate:approve <reason>` in a `--` comment;
- `VACUUM` (not FULL: it locks the table out), `ANALYZE`, `REFRESH MATERIALIZED VIEW` (not
  WITH NO DATA: it empties the view until the next refresh).

Anything else (UPDATE, MERGE, DO, DDL, GRANT, a `cron.schedule`, a call of PostgreSQL's or an
extension's functions) belongs in a function a migration defines, where the migration gate
and its reviewers see it; the job then `call:`s it. Parsed with pglast, never matched.

The shapes say what a reviewer reads; the database says what runs: ops.run_job executes the
SQL as supagate_job_runner, which holds only what migrations grant it (ops.sql, "job-runner
boundary")."""

from __future__ import annotations

# Schemas whose functions are not the app's: PostgreSQL's own, the scheduler, extensions,
# secrets, the network, and supagate's own bookkeeping.
NOT_APP_SCHEMAS = {"pg_catalog", "information_schema", "cron", "net", "extensions", "vault", "pgsodium", "dblink",
                   "http", "supabase_functions", "ops", "auth", "storage", "realtime", "graphql", "pgbouncer"}
# Values a job's arguments may compute from: PostgreSQL's clock.
CLOCK_FUNCTIONS = {"now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "make_interval"}
BEFORE = {"<", "<="}
VACUUM_OPTIONS = {"analyze", "verbose", "skip_locked"}
SHAPES = ("one SELECT or CALL of a function a migration defines (schema.name, constant arguments), a DELETE "
          "WHERE column < now() - interval '...' (and column = 'value'), VACUUM (not FULL), ANALYZE or REFRESH "
          "MATERIALIZED VIEW")
FIX = ("Put the change in a function a migration defines (the migration gate and its reviewers read it) and "
       "`call:` it from the job.")


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
    approved = _approved(sql)
    if kind == "SelectStmt":
        return _select_problem(node)
    if kind == "CallStmt":
        return _call_problem(node.funccall)
    if kind == "DeleteStmt":
        if node.usingClause or node.withClause or node.returningList:
            return "is a DELETE with USING, WITH or RETURNING"
        if approved or _retention(node.whereClause):
            return None
        return ("is a DELETE whose WHERE is not `column < now() - interval '...'` (with `and column = 'value'`), "
                "so it may remove every row; approve it with `-- gate:approve <who, why>` or use that shape")
    if kind == "TruncateStmt":
        return None if approved else "is a TRUNCATE; approve it with `-- gate:approve <who, why>`"
    if kind == "VacuumStmt":
        options = {o.defname.lower() for o in node.options or ()}
        if "full" in options:
            return "is VACUUM FULL, which locks the table out for its whole run"
        if options - VACUUM_OPTIONS:
            return (f"is VACUUM with {', '.join(sorted(options - VACUUM_OPTIONS))}; a job may use "
                    f"{', '.join(sorted(VACUUM_OPTIONS))}")
        if not node.rels:  # every table, auth's and cron's included, as the owner, with no timeout
            return "is VACUUM or ANALYZE of the whole database; name the table"
        return None
    if kind == "RefreshMatViewStmt":
        return "is REFRESH ... WITH NO DATA, which empties the view" if node.skipData else None
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


def approval(sql: str) -> str | None:
    """The reason of a `-- gate:approve <reason>` that PostgreSQL's lexer reads as a comment
    (not text in a string literal or a /* */ comment), or None."""
    from supagate.errors import BadInput
    from supagate.gates.markers import read_markers

    try:
        found = read_markers(sql, "maintenance job").approve
    except BadInput:
        return None
    return found[1] if found else None


def _approved(sql: str) -> bool:
    """Approved with a reason of a few words, not a letter."""
    return len(approval(sql) or "") >= 8


def _retention(where) -> bool:
    """`column < now() - interval '...'`, AND-ed with `column = 'constant'` conditions."""
    kind = type(where).__name__
    if kind == "BoolExpr":
        return where.boolop.name == "AND_EXPR" and any(_before_the_clock(a) for a in where.args) and \
            all(_before_the_clock(a) or _equals_a_constant(a) for a in where.args)
    return _before_the_clock(where)


def _operator(node) -> str | None:
    """The operator of a plain `a OP b` (None for a schema-qualified, custom one)."""
    if type(node).__name__ != "A_Expr" or node.kind.name != "AEXPR_OP" or len(node.name) != 1:
        return None
    return node.name[0].sval


def _before_the_clock(node) -> bool:
    if _operator(node) not in BEFORE or type(node.lexpr).__name__ != "ColumnRef":
        return False
    ago = node.rexpr
    return _operator(ago) == "-" and _is_clock(ago.lexpr) and _is_interval_constant(ago.rexpr)


def _is_clock(node) -> bool:
    kind = type(node).__name__
    if kind == "SQLValueFunction":  # current_timestamp, current_date, localtimestamp
        return True
    if kind != "FuncCall" or node.args:
        return False
    names = [n.sval for n in node.funcname]
    return names in (["now"], ["pg_catalog", "now"])


def _is_interval_constant(node) -> bool:
    if type(node).__name__ != "TypeCast" or type(node.arg).__name__ != "A_Const":
        return False
    names = [n.sval for n in node.typeName.names]
    return names in (["interval"], ["pg_catalog", "interval"]) and not getattr(node.arg, "isnull", False)


def _equals_a_constant(node) -> bool:
    return _operator(node) == "=" and type(node.lexpr).__name__ == "ColumnRef" and \
        type(node.rexpr).__name__ == "A_Const" and not getattr(node.rexpr, "isnull", False)


def _reads_nothing(node) -> bool:
    """Whether `node` is built from constants and the clock alone."""
    from supagate.gates.catalog.nodes import walk

    for part in walk(node if isinstance(node, (list, tuple)) else [node]):
        kind = type(part).__name__
        if kind in ("ColumnRef", "SubLink", "ParamRef", "RangeVar", "SelectStmt"):
            return False
        if kind == "FuncCall":
            names = [n.sval.lower() for n in part.funcname]
            if names[-1] not in CLOCK_FUNCTIONS or names[:-1] not in ([], ["pg_catalog"]):
                return False
        if kind == "A_Expr" and _operator(part) is None:  # a custom or schema-qualified operator
            return False
    return True
