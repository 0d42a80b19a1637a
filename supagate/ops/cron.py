"""Maintenance jobs on pg_cron: the commands the templates generate, and the one engine the
`supabase:CronJob` provider, `supagate ops status` and the tests use.

pg_cron's named `cron.schedule` is an upsert on (jobname, username) that keeps the job id
and its history but never touches `active`; so a job is updated in place (never deleted
and recreated: supabase/supabase#41756) and reactivated with `cron.alter_job`. A job of
the same name owned by another role is refused, and only jobs this stack manages are ever
unscheduled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from supagate.errors import Failed
from supagate.ops.alerts import evaluation_steps
from supagate.ops.kinds import seconds

# Statements PostgreSQL refuses inside a transaction block or a function: pg_cron must run
# them alone (a multi-statement command is one implicit transaction) and unwrapped.
_OUTSIDE_TRANSACTION = re.compile(r"^\s*(vacuum|create\s+(unique\s+)?index\s+concurrently|reindex\s.*concurrently|"
                                  r"drop\s+index\s+concurrently|cluster)\b", re.I | re.S)


# supagate's own jobs: alert evaluation, the scheduler heartbeat, pg_cron history retention.
BUILTIN_JOBS = EVALUATE_JOB, HEARTBEAT_JOB, RETENTION_JOB, ROLLOUT_JOB = (
    "supagate-evaluate-alerts", "supagate-heartbeat", "supagate-purge-cron-history", "supagate-advance-rollouts")


def builtin_jobs(rules: list[dict[str, Any]], retention_days: int | bool,
                 auto_rollouts: bool = False) -> dict[str, dict[str, Any]]:
    """supagate's own jobs: evaluation and heartbeat every minute when there are rules, auto
    rollouts every 5 minutes when a flag advances on its own, and the daily purge of
    pg_cron's run history (it is never cleaned otherwise)."""
    jobs: dict[str, dict[str, Any]] = {}
    if auto_rollouts:
        jobs[ROLLOUT_JOB] = {"schedule": "*/5 * * * *", "command": "select count(*) from ops.advance_rollouts()",
                             "active": True}
    if rules:
        heartbeat = tuple(r["name"] for r in rules if r["kind"] == "schedulerHeartbeat")
        # The evaluation beats last: a failing or stalled one stops beating. The heartbeat
        # rules are the heartbeat job's: judged by the evaluation, they could not fire then.
        jobs[EVALUATE_JOB] = {"schedule": "* * * * *", "active": True, "command": "; ".join(
            [*evaluation_command(evaluation_steps(rules, skip=heartbeat)), "select ops.beat('evaluator')"])}
        jobs[HEARTBEAT_JOB] = {"schedule": "* * * * *", "active": True, "command": "; ".join(
            ["select ops.beat('pg_cron')", *evaluation_command([(10_000, sorted(heartbeat), None)] if heartbeat else [])])}
    if retention_days is not False:
        jobs[RETENTION_JOB] = {"schedule": "17 3 * * *", "active": True, "command": retention_command(retention_days)}
    return jobs


def evaluation_command(steps: list[tuple[int, list[str] | None, list[str] | None]]) -> list[str]:
    """The statements pg_cron runs for an evaluation's steps, each after its own statement
    timeout (pg_cron sends a command as one query string: PostgreSQL times each statement of
    it separately, and runs them all in one transaction)."""
    def names(values: list[str] | None) -> str:
        return "null" if values is None else "'{" + ",".join(values) + "}'"  # rule names: [a-z0-9-]

    return [statement for timeout, only, skip in steps for statement in (
        f"set statement_timeout = '{timeout}ms'",
        f"select count(*) from ops.evaluate_alerts(p_only => {names(only)}, p_skip => {names(skip)})")]


def retention_command(days: int) -> str:
    """The daily purge: pg_cron's run history and, where the ops schema is installed, what
    ops.purge_history keeps for `days` (delivered notifications, job events) and the rate
    counters of windows long over (no window is longer than a day). Without the ops schema
    it needs nothing but pg_cron. Flag events stay: they are the flags' audit trail."""
    keep = f"interval '{int(days)} days'"
    return ("do $$ begin "
            "if to_regprocedure('ops.purge_history(interval)') is not null then "
            f"perform ops.purge_history({keep}); "
            "delete from ops.rate_counters where window_start < now() - interval '25 hours'; "
            f"else delete from cron.job_run_details where end_time < now() - {keep}; "
            "end if; end $$")


def stack_jobs(settings, rules: list) -> dict[str, dict[str, Any]]:
    """Every pg_cron job the stack manages, by name: {schedule, command, active}; the
    stack's own override a built-in of the same name."""
    declared = {name: {"schedule": job.schedule, "command": command(name, job), "active": job.active}
                for name, job in settings.maintenance.jobs.items()}
    auto = any(f.advance == "auto" for f in settings.feature_flags.values())
    return {**builtin_jobs(rules, settings.maintenance.history_retention_days, auto), **declared}


class CronError(Failed):
    """A job the engine refuses to touch; the message names the job and the fix."""


def _dollar_quote(text: str) -> str:
    tag = "cmd"
    while f"${tag}$" in text:
        tag += "_"
    return f"${tag}${text}${tag}$"


def command(name: str, job: Any) -> str:
    """The SQL pg_cron runs for a job from the stack file (a config.operations.CronJob)."""
    if job.vacuum_analyze:
        return f"VACUUM (ANALYZE) {job.vacuum_analyze}"
    if job.refresh:  # needs the view's owner: outside the job-runner boundary, named, not SQL text
        return _with_timeout(job, f"select ops.refresh_view('{name}', '{job.refresh}')")
    if job.call:
        body = f"select {job.call}()"
    elif _OUTSIDE_TRANSACTION.match(job.sql):
        return job.sql.strip().rstrip(";")
    else:
        body = job.sql.strip().rstrip(";")
    return _with_timeout(job, f"select ops.run_job('{name}', {_dollar_quote(body)})")


def _with_timeout(job: Any, sql: str) -> str:
    # The SET is its own statement, so the timeout applies to the job's statement.
    return f"set statement_timeout = '{int(seconds(job.timeout, 'timeout') * 1000)}ms'; {sql}" if job.timeout else sql


def job_problems(name: str, job: Any) -> list[str]:
    where = f"maintenance.jobs.{name}"
    problems = []
    if not re.match(r"^[a-z0-9][a-z0-9-]*\Z", name):
        problems.append(f"{where}: job names are lower-case letters, digits and dashes")
    if name.startswith("supagate-"):
        problems.append(f"{where}: names starting with supagate- are supagate's own jobs; choose another name")
    if job.sql:
        from supagate.ops.job_sql import FIX, SHAPES, shape_problem

        problem = shape_problem(job.sql)
        if problem:
            problems.append(f"{where}.sql {problem}: a job's sql is {SHAPES}. {FIX}")
    if job.timeout:
        try:
            seconds(job.timeout, f"{where}.timeout")
        except ValueError as exc:
            problems.append(str(exc))
        if job.vacuum_analyze or (job.sql and _OUTSIDE_TRANSACTION.match(job.sql)):
            problems.append(f"{where}.timeout: VACUUM-like commands run alone, so no statement_timeout can be set "
                            "for them; leave timeout out (pg_cron never runs two of them at once)")
    return problems


@dataclass
class JobState:
    """A job as pg_cron holds it, with its recent runs."""
    jobid: int
    name: str
    schedule: str
    command: str
    active: bool
    username: str
    last_run_at: str | None = None
    last_status: str | None = None
    last_message: str | None = None
    failures_24h: int = 0
    p95_seconds: float | None = None
    drift: list[str] = field(default_factory=list)

    def outputs(self) -> dict[str, Any]:
        return {"jobid": self.jobid, "last_run_at": self.last_run_at, "last_status": self.last_status,
                "last_message": self.last_message, "failures_24h": self.failures_24h,
                "p95_seconds": self.p95_seconds, "drift": self.drift, "owner": self.username}


def pg_cron_version(conn) -> tuple[int, ...]:
    row = conn.execute("select extversion from pg_extension where extname = 'pg_cron'").fetchone()
    if row is None:
        raise CronError("pg_cron is not installed in this database: enable it (create extension pg_cron) in the "
                        "database cron.database_name names (on Supabase: postgres)")
    return tuple(int(p) for p in re.findall(r"\d+", row[0]))


def read(conn, name: str, want: dict[str, Any] | None = None) -> JobState | None:
    """The job this role owns under `name`, with its last run and failures; `want` (schedule,
    command, active) fills `drift` with what differs."""
    row = conn.execute("select jobid, jobname, schedule, command, active, username from cron.job "
                       "where jobname = %s and username = current_user", (name,)).fetchone()
    if row is None:
        return None
    state = JobState(*row)
    runs = conn.execute(
        """with recent as (select start_time, end_time, status, return_message from cron.job_run_details
                            where jobid = %s order by start_time desc limit 50)
           select (select start_time from recent order by start_time desc limit 1),
                  (select status from recent order by start_time desc limit 1),
                  (select return_message from recent order by start_time desc limit 1),
                  (select count(*) from cron.job_run_details where jobid = %s and status = 'failed'
                      and start_time > now() - interval '24 hours'),
                  (select percentile_cont(0.95) within group (order by extract(epoch from end_time - start_time))
                     from recent where end_time is not null)""", (state.jobid, state.jobid)).fetchone()
    last_at, state.last_status, state.last_message, state.failures_24h, p95 = runs
    state.last_run_at = last_at.isoformat() if last_at else None
    state.p95_seconds = round(float(p95), 3) if p95 is not None else None
    for key in ("schedule", "command", "active"):
        if want is not None and key in want and want[key] != getattr(state, key):
            shown = getattr(state, key)
            state.drift.append(f"{key} is {shown!r} in the database, {want[key]!r} in the stack")
    return state


def ensure(conn, name: str, schedule: str, cmd: str, active: bool = True) -> tuple[JobState, bool]:
    """Create or update the job in place; returns (state, adopted): adopted when a job of
    this name and owner existed before (a migration scheduled it, or a previous deploy)."""
    from supagate.ops.schedule import parse

    try:
        parse(schedule, pg_cron_version(conn))
    except ValueError as exc:
        raise CronError(f"job {name}: {exc}") from None
    others = conn.execute("select jobid, username from cron.job where jobname = %s and username <> current_user",
                          (name,)).fetchall()
    if others:
        jobid, owner = others[0]
        raise CronError(f"job {name} already exists as jobid {jobid} owned by {owner}; pg_cron keys jobs by name and "
                        f"owner, so this stack would schedule a second one. Rename the job in the stack, or "
                        f"unschedule jobid {jobid} as {owner} (select cron.unschedule({jobid})) if it is obsolete")
    existed = read(conn, name) is not None
    with conn.transaction():
        jobid = conn.execute("select cron.schedule(%s, %s, %s)", (name, schedule, cmd)).fetchone()[0]
        current = conn.execute("select active from cron.job where jobid = %s", (jobid,)).fetchone()[0]
        if current != active:
            # The named upsert never changes `active`: a job paused by hand stays paused otherwise.
            conn.execute("select cron.alter_job(%s, active := %s)", (jobid, active))
    return read(conn, name), existed


def unschedule(conn, name: str, jobid: int | None) -> bool:
    """Remove the managed job `name` (the one with `jobid` when known); False when it is gone."""
    state = read(conn, name)
    if state is None or (jobid is not None and state.jobid != jobid):
        return False
    conn.execute("select cron.unschedule(%s::bigint)", (state.jobid,))
    return True


def unmanaged(conn, managed: set[str], scheduled_by_migrations: set[str]) -> list[str]:
    """Jobs in cron.job that neither the stack nor a migration declares: reported, never removed."""
    rows = conn.execute("select jobname, jobid, username from cron.job order by jobid").fetchall()
    return [f"{name or '(unnamed)'} (jobid {jobid}, owner {owner})" for name, jobid, owner in rows
            if name not in managed and name not in scheduled_by_migrations]


def migration_jobs(sql_texts: list[str]) -> set[str]:
    """Job names migrations schedule with cron.schedule / schedule_in_database literals."""
    found = set()
    for sql in sql_texts:
        found.update(re.findall(r"cron\.schedule(?:_in_database)?\s*\(\s*(?:job_name\s*(?::=|=>)\s*)?'([^']+)'",
                                sql, re.I))
    return found
