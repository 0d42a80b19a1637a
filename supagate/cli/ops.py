"""`supagate ops`: the operations schema's migration, the state of jobs and alerts, and the
notification sender the health workflow runs."""

from __future__ import annotations

import os
from pathlib import Path

from supagate.cli.common import DB_URL_ENV, EXIT_FAILED, EXIT_OK, UsageError, db_url, emit_json, err, out, \
    stack_settings


def register(sub) -> None:
    ops = sub.add_parser("ops", help="operations: init the ops schema, status of jobs and alerts, drain notifications",
                         description="Examples: supagate ops init; SUPABASE_DB_URL=... supagate ops status --stack prod; "
                                     "SUPABASE_DB_URL=... supagate ops watch --stack prod (sends due notifications; "
                                     "channel URLs and keys from environment variables SUPAGATE_ALERT_<name in alertSecrets>)")
    verbs = ops.add_subparsers(dest="verb", required=True)
    ini = verbs.add_parser("init", help="write the migration that creates the ops schema")
    ini.add_argument("--migrations", type=Path, default=Path("supabase/migrations"))
    ini.set_defaults(func=init)
    for name, func, text in (("status", status, "jobs with their last run, firing alerts, undelivered notifications"),
                             ("watch", watch, "the health workflow's turn: check in, check pg_cron's heartbeat, send "
                                              "due notifications, list the GitHub-issue ones"),
                             ("ack", ack, "mark notifications delivered (the workflow's issue script ran them)")):
        verb = verbs.add_parser(name, help=text)
        verb.add_argument("--db-url", help=f"database URL (or set {DB_URL_ENV})")
        verb.add_argument("--stack", required=True)
        verb.add_argument("--stack-file", type=Path)
        verb.add_argument("--format", choices=("text", "json"), default="text")
        if name == "ack":
            verb.add_argument("--ids-file", type=Path, required=True, help="notification ids, one per line")
        verb.set_defaults(func=func)


def init(args) -> int:
    from supagate.config.init import ops_migration, shared_modules

    directory: Path = args.migrations
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory: run this in the app's root (it holds supabase/migrations) "
                         "or pass --migrations DIR")
    for path, text in shared_modules(directory.parent / "functions"):
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            out(f"wrote {path}: shared by the edge functions (flag bucketing, the rate limiter)")
    files = ops_migration(directory)
    if not files:
        out(f"a migration in {directory} already creates the ops schema; nothing written")
        return EXIT_OK
    for path, text in files:
        path.write_text(text)
    out(f"wrote {files[0][0]}: review it and deploy it with your other migrations"
        + (f" (its rollback: {files[1][0]})" if len(files) > 1 else ""))
    return EXIT_OK


def status(args) -> int:
    from supagate.migrations.files import load_migrations
    from supagate.ops import alerts, cron
    from supagate.ops.cron import BUILTIN_JOBS
    from supagate.postgres.connect import connect

    settings = stack_settings(args.stack, args.stack_file)
    with connect(db_url(args)) as conn:
        try:
            cron.pg_cron_version(conn)
            names = [r[0] for r in conn.execute("select jobname from cron.job where username = current_user "
                                                "order by jobname").fetchall()]
            jobs = [cron.read(conn, name).outputs() | {"name": name} for name in names]
            # Reported, never removed: a job a person scheduled by hand may matter.
            undeclared = cron.unmanaged(conn, {*settings.maintenance.jobs, *BUILTIN_JOBS},
                                        cron.migration_jobs([m.sql for m in load_migrations(
                                            settings.migrations.directory, warn=err)]))
        except cron.CronError as exc:
            jobs, undeclared = [], []
            err(f"supagate: {exc}")
        try:
            firing = alerts.firing(conn)
            pending = conn.execute("select count(*) filter (where next_attempt_at < 'infinity'), "
                                   "count(*) filter (where next_attempt_at = 'infinity') from ops.notifications "
                                   "where delivered_at is null").fetchone()
        except alerts.OpsMissing as exc:
            firing, pending = [], (0, 0)
            err(f"supagate: {exc}")
    document = {"jobs": jobs, "alerts": firing, "undelivered": pending[0], "given_up": pending[1],
                "undeclared_jobs": undeclared}
    if args.format == "json":
        emit_json(document)
    else:
        for job in jobs:
            out(f"job {job['name']} (jobid {job['jobid']}): last run {job['last_run_at'] or 'never'} "
                f"{job['last_status'] or ''}, {job['failures_24h']} failures in 24 h")
        for alert in firing:
            out(f"alert {alert['rule']} {alert['state']} since {alert['since']} value {alert['value']}"
                + (f" ERROR {alert['error']}" if alert.get("error") else ""))
        out(f"{pending[0]} notifications waiting, {pending[1]} given up")
        if document["undeclared_jobs"]:
            out(f"jobs no stack declares (left alone): {', '.join(document['undeclared_jobs'])}")
    return EXIT_FAILED if pending[1] or any(a["state"] == "firing" for a in firing) else EXIT_OK


def watch(args) -> int:
    from supagate.delivery.environments import alert_env
    from supagate.ops.alerts import require_ops
    from supagate.ops.notify import drain, issue_notifications
    from supagate.postgres.connect import connect

    settings = stack_settings(args.stack, args.stack_file)
    rules = settings.alert_rules()
    names = settings.alerts.secret_names()
    # In the workflow: the production-health environment's secrets, under a prefix of ours so
    # that no channel's name can be a variable something else reads (BASH_ENV, SUPABASE_DB_URL).
    secrets = {name: os.environ.get(alert_env(name), "") for name in names}
    max_age = next((r["threshold"] for r in rules if r["kind"] == "schedulerHeartbeat"), 180.0)
    with connect(db_url(args)) as conn:
        require_ops(conn)
        conn.execute("select ops.check_in()")  # what externalWatch rules read
        # pg_cron's own beat, and the evaluation's, written as its last statement: pg_cron
        # alive while every evaluation fails or stalls is no better than pg_cron stopped.
        beats = dict(conn.execute("select source, extract(epoch from now() - beat_at)::float8 from ops.heartbeat "
                                  "where source in ('pg_cron', 'evaluator')").fetchall())
        result = drain(conn, dict(settings.alerts.channels), secrets)
        issues = issue_notifications(conn, dict(settings.alerts.channels))
    age, evaluation_age = beats.get("pg_cron"), beats.get("evaluator")
    stopped = bool(rules) and (age is None or age > max_age)
    stale = bool(rules) and not stopped and (evaluation_age is None or evaluation_age > max_age)
    for line in result.log:
        err(line)
    if stopped:
        err("supagate: scheduler-stopped: pg_cron's heartbeat is "
            + ("missing" if age is None else f"{age:.0f} s old") + f" (limit {max_age:.0f} s); no alert rule is "
            "being evaluated. Check cron.job_run_details and restart the scheduler (on Supabase: restart the project)")
    if stale:
        err("supagate: evaluation-stale: the last complete alert evaluation is "
            + ("missing" if evaluation_age is None else f"{evaluation_age:.0f} s old") + f" (limit {max_age:.0f} s) "
            "while pg_cron runs; the evaluation job fails or stalls. Read its runs: select status, return_message "
            "from cron.job_run_details where command like '%evaluate_alerts%' order by start_time desc limit 5")
    document = {"scheduler": {"ok": not (stopped or stale), "heartbeat_age_seconds": age,
                              "evaluation_age_seconds": evaluation_age}, "delivered": result.delivered,
                "retrying": result.retrying, "given_up": result.given_up, "issues": issues}
    if args.format == "json":
        emit_json(document)
    else:
        health = "STOPPED" if stopped else "EVALUATION STALE" if stale else "ok"
        out(f"scheduler {health}; delivered {len(result.delivered)}, retrying "
            f"{len(result.retrying)}, given up {len(result.given_up)}, {len(issues)} for GitHub issues")
    return EXIT_FAILED if stopped or stale or result.given_up else EXIT_OK


def ack(args) -> int:
    from supagate.ops.alerts import require_ops
    from supagate.postgres.connect import connect

    text = args.ids_file.read_text() if args.ids_file.exists() else ""
    try:
        ids = [int(line) for line in text.split() if line.strip()]
    except ValueError:
        raise UsageError(f"{args.ids_file}: one notification id (a number) per line") from None
    with connect(db_url(args)) as conn:
        require_ops(conn)
        done = conn.execute("select ops.ack_notifications(%s)", (ids,)).fetchone()[0]
    out(f"acknowledged {done} notification(s)")
    return EXIT_OK
