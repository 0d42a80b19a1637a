"""The pack's checks of SQL that comes from stack files instead of migrations, which no
reviewer of a migration ever sees run:

- a maintenance job's command (what pg_cron will run, wrapper included) goes through the
  destructive-change gate as if it were one more migration after the others: a drop, a
  TRUNCATE, a DELETE without a condition, in the command, in the SQL it hands to a function
  that EXECUTEs it (ops.run_job), or in the body of a function it calls (CodeScan), is
  refused unless the job's SQL carries `-- gate:approve <reason>` (a job has no down
  script: the approval alone). A schema-qualified function that no migration defines (and
  that is not PostgreSQL's own) is code the gates never saw, and is refused too.
- every custom `sql` alert rule is run behind its privilege boundary in the shadow
  database (supagate/ops/boundary.py); a rule that cannot be proven there is refused.

Both return Findings that violate (the contract of checks.py); input they cannot read is a
violation, never a pass."""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from supagate.findings import Finding
from supagate.offline.resource_types import ALERT_RULE, CRON_JOB, MIGRATIONS, migrations_from_inputs
from supagate.ops.job_sql import FIX as JOB_SHAPE_FIX, SHAPES, approval
from supagate.pack.checks import _exposed, _unreadable, _violation, plain

JOB_FIX = ("Keep the rows (a WHERE on a column), call a function the migrations define that does not lose data, or "
           "approve the loss in the job's SQL: `sql: \"-- gate:approve <who approved, why>\\n<the statement>\"`.")
_CODE = " inside code the migration runs"


def _migrations(resources: list[tuple[str, dict[str, Any]]]) -> tuple[list, tuple[str, ...]] | str:
    """The migrations and exposed schemas of the stack's one Migrations resource, or why not."""
    from supagate.errors import BadInput

    found = [props for type_, props in resources if type_ == MIGRATIONS]
    if len(found) != 1:
        return f"the stack registers {len(found)} Migrations resources, not one"
    exposed = _exposed(found[0])
    if exposed is None:
        return "its exposed schemas are unreadable"
    try:
        return migrations_from_inputs(plain(found[0])), exposed
    except (BadInput, KeyError, TypeError, AttributeError) as exc:
        return f"its migrations cannot be read ({exc})"


def job_gate_violations(resources: Iterable[tuple[str, dict[str, Any]]]) -> list[Finding]:
    from supagate.errors import BadInput
    from supagate.gates.catalog import replay
    from supagate.gates.rules import destructive_unapproved
    from supagate.migrations.files import parse_migration

    resources = list(resources)
    jobs = [(str(plain(p.get("name"))), plain(p.get("command"))) for t, p in resources if t == CRON_JOB]
    if not jobs:
        return []
    base = _migrations(resources)
    if isinstance(base, str):
        return [_violation("cron-gate", name, f"Job {name} cannot be judged against the migrations: {base}.",
                           "Register the app's migrations in the same stack.") for name, _ in jobs]
    migrations, exposed = base
    found, pseudo = [], {}
    for index, (name, command) in enumerate(jobs):
        if not isinstance(command, str):
            found.append(_unreadable("cron-gate", name, f"the command of job {name}", command,
                                     "Declare the job under maintenance.jobs."))
            continue
        path = f"maintenance.jobs.{name}"
        body = _job_body(command)
        reason = approval(body) if body is not None and body != command else None
        if reason:
            # The approval sits in the job's own SQL, which the command carries as a string: the
            # lexer reads it as a comment only there, so it heads the job's stand-in migration.
            command = f"-- gate:approve {reason}\n{command}"
        try:
            # versioned after every migration: the job runs on what they built
            pseudo[path] = (name, parse_migration(f"99999999{index:06d}", f"job_{name}", command, path, down_sql=""),
                            body)
        except BadInput as exc:
            found.append(_violation("cron-gate", name, f"Job {name}'s command cannot be analysed: {exc}",
                                    "Fix the job's SQL."))
    try:
        analysis = replay.analyse(migrations + [m for _, m, _ in pseudo.values()], exposed)
    except BadInput as exc:  # a bad gate marker, in a migration or a job
        return found + [_violation("cron-gate", name, f"Job {name} cannot be judged: {exc}", "Fix the marker.")
                        for name, _, _ in pseudo.values()]
    for f in analysis.findings:
        if f.rule == destructive_unapproved.ID and f.file in pseudo:
            name = pseudo[f.file][0]
            what = f.message.removeprefix(f"{f.file}:{f.line} ").split(" without ", 1)[0].split(_CODE, 1)[0]
            found.append(_violation("cron-gate", name, f"Maintenance job {name} {what}, and its SQL carries no "
                                    "`-- gate:approve`: pg_cron would do it on schedule with no review.", JOB_FIX))
    for path, (name, migration, body) in pseudo.items():
        problem = _shape_problem(name, body)
        if problem:
            found.append(_violation("cron-gate", name, f"Maintenance job {name}'s SQL {problem}: a job's SQL is "
                                    f"{SHAPES}.", JOB_SHAPE_FIX))
        for function in sorted(unseen_functions(migration.sql, analysis.catalog)):
            found.append(_violation("cron-gate", name, f"Maintenance job {name} calls {function}(), which no "
                                    "migration defines: code the gates never saw.",
                                    "Call a function a migration defines (the gates check its body), or write the "
                                    "SQL in the job itself."))
    return found


_QUALIFIED = re.compile(r"[a-z_][a-z0-9_$]*\.[a-z_][a-z0-9_$]*\Z")


def _job_body(command: str) -> str | None:
    """The job's own SQL: the constant handed to ops.run_job (after the job's timeout), or
    the command itself when it runs alone (VACUUM); None when it is neither."""
    import pglast

    from supagate.gates.catalog.code_bodies import constant_text

    try:
        statements = [s.stmt for s in pglast.parse_sql(command)]
    except pglast.parser.ParseError:
        return None
    if statements and type(statements[0]).__name__ == "VariableSetStmt" and \
            statements[0].name == "statement_timeout":
        statements = statements[1:]  # the job's timeout (ops/cron.py)
    if len(statements) != 1:
        return None
    if type(statements[0]).__name__ == "SelectStmt" and len(statements[0].targetList or ()) == 1:
        target = statements[0].targetList[0].val
        called = [n.sval for n in getattr(target, "funcname", ())]
        if called == ["ops", "run_job"] and len(target.args or ()) == 2:
            return constant_text(target.args[1])
        if called == ["ops", "refresh_view"] and len(target.args or ()) == 2:  # a `refresh:` job: a name, no SQL
            view = constant_text(target.args[1])
            return f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}" if view and _QUALIFIED.match(view) else None
    return command


def _shape_problem(name: str, body: str | None) -> str | None:
    """The job's own SQL (`_job_body`) against the allow-list (supagate/ops/job_sql.py).
    supagate's own jobs (names the settings keep for them) are built by supagate, not written
    in a stack file."""
    from supagate.ops.cron import BUILTIN_JOBS
    from supagate.ops.job_sql import shape_problem

    if name in BUILTIN_JOBS:
        return None
    return "is not one statement or one ops.run_job call of constant SQL" if body is None else shape_problem(body)


def unseen_functions(sql: str, catalog) -> set[str]:
    """Schema-qualified functions `sql` calls, or the SQL it hands to a function that
    EXECUTEs it, that neither the migrations (`catalog`) nor pg_catalog define. Unqualified
    names are PostgreSQL's own or resolve to the migrations' (the gate follows those)."""
    import pglast

    from supagate.gates.catalog.code_bodies import constant_text, runs_given_sql
    from supagate.gates.catalog.nodes import function_key, walk

    found: set[str] = set()
    try:
        nodes = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return found  # the gate's own parse reports nothing either: the job fails on its first run
    for call in (n for n in walk(nodes) if type(n).__name__ == "FuncCall"):
        names = [n.sval for n in call.funcname]
        function = catalog.functions.get(function_key(call.funcname, catalog.search_schema))
        if function is not None:
            if runs_given_sql(function.body, function.language):
                for text in filter(None, map(constant_text, call.args or ())):
                    found |= unseen_functions(text, catalog)
        elif len(names) > 1 and names[0] != "pg_catalog":
            found.add(".".join(names))
    return found


def sql_rule_proof_violations(resources: Iterable[tuple[str, dict[str, Any]]],
                              progress: Callable[[str], None] = lambda _: None) -> list[Finding]:
    from supagate.ops.boundary import FIX, PROOF_CAP_MS, READER, prove

    resources = list(resources)
    rules = []
    for type_, props in resources:
        rule = plain(props.get("rule")) if type_ == ALERT_RULE else None
        if isinstance(rule, dict) and rule.get("kind") == "sql":
            rules.append(rule)
    if not rules:
        return []
    base = _migrations(resources)
    problems = (dict.fromkeys((r.get("name") for r in rules), f"not proven: {base}") if isinstance(base, str)
                else prove(base[0], rules, base[1], progress))
    return [_violation("alerts-sql-proof", str(name), f"Alert rule {name} is refused by the boundary it runs behind "
                       f"({problem}): run in the shadow database as {READER}, read-only, with at most "
                       f"{PROOF_CAP_MS} ms, as the evaluation would.", FIX)
            for name, problem in sorted(problems.items(), key=lambda item: str(item[0]))]
