"""The one test that waits for the real scheduler (pg_cron 1.4.2 has minute granularity):
the heartbeat job runs and succeeds, a templated job with a timeout really fails on it, and
supagate's own evaluation job, with a sql rule that sleeps, times that rule out alone and
still evaluates the others and beats. And the job wrapper skips a run that finds the
previous one still going."""

from __future__ import annotations

import time

import psycopg

from supagate.config.operations import CronJob
from supagate.ops import alerts, cron
from supagate.ops.kinds import canonical


def _rules():
    sleeper = canonical("sched-sleeper", {"kind": "sql", "query": "select 1", "above": 0, "timeout": "1s"}, {})
    sleeper["params"]["query"] = "select 1 from pg_sleep_for('10 minutes')"  # past the settings' filter, on purpose
    return [sleeper, canonical("sched-orders", {"kind": "sql", "query": "select count(*) from sched.orders",
                                               "above": 0}, {}),
            canonical("sched-connections", {"kind": "connectionSaturation", "percent": 99}, {}),
            canonical("sched-heartbeat", {"kind": "schedulerHeartbeat", "maxAge": "3m"}, {})]


def test_the_scheduler_runs_the_heartbeat_the_evaluation_and_enforces_a_jobs_timeout(ops_url):
    slow = cron.command("too-slow", CronJob(schedule="* * * * *", sql="select pg_sleep(2)", timeout="200ms"))
    assert slow.startswith("set statement_timeout = '200ms'; select ops.run_job('too-slow'")
    rules = _rules()
    own = cron.builtin_jobs(rules, False)
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("create schema if not exists sched; create table if not exists sched.orders (n int); "
                     "insert into sched.orders values (1), (2); grant usage on schema sched to supagate_alert_reader; "
                     "grant select on sched.orders to supagate_alert_reader; "
                     "delete from ops.heartbeat where source = 'evaluator'")
        alerts.sync_rules(conn, rules, set())
        beat, _ = cron.ensure(conn, cron.HEARTBEAT_JOB, "* * * * *", own[cron.HEARTBEAT_JOB]["command"])
        evaluation, _ = cron.ensure(conn, cron.EVALUATE_JOB, "* * * * *", own[cron.EVALUATE_JOB]["command"])
        timed, _ = cron.ensure(conn, "too-slow", "* * * * *", slow)
        jobs = (beat.jobid, evaluation.jobid, timed.jobid)
        deadline = time.monotonic() + 75  # the next minute boundary, and the run itself
        statuses = {}
        while time.monotonic() < deadline:
            rows = conn.execute("select jobid, status, return_message, extract(epoch from end_time - start_time) "
                                "from cron.job_run_details where jobid = any(%s) and status in ('succeeded', 'failed')",
                                (list(jobs),)).fetchall()
            statuses = {jobid: (status, message, took) for jobid, status, message, took in rows}
            if len(statuses) == 3:
                break
            time.sleep(1)
        beats = dict(conn.execute("select source, extract(epoch from now() - beat_at) from ops.heartbeat").fetchall())
        states = {r: (st, v, e) for r, st, v, e in conn.execute(
            "select rule, state, value, error from ops.alert_state where rule like 'sched-%'").fetchall()}
        state = cron.read(conn, "too-slow")
        for name in (cron.HEARTBEAT_JOB, cron.EVALUATE_JOB, "too-slow"):
            conn.execute("select cron.unschedule(%s)", (name,))
        alerts.sync_rules(conn, [], {r["name"] for r in rules})
    assert statuses.get(beat.jobid, ("none",))[0] == "succeeded", statuses
    assert beats["pg_cron"] < 90
    status, message, _ = statuses[timed.jobid]
    assert status == "failed" and "statement timeout" in message
    assert state.last_status == "failed" and state.failures_24h >= 1 and state.last_run_at
    # The sleeping rule cost its own second, reported as an error; the others were evaluated
    # in the same run, the evaluation completed and beat, and the heartbeat rule is quiet.
    status, message, took = statuses[evaluation.jobid]
    assert status == "succeeded" and took < 5, statuses[evaluation.jobid]
    assert states["sched-sleeper"][2] == "the query ran past its statement timeout of 1s"
    assert states["sched-orders"][:2] == ("firing", 2) and states["sched-orders"][2] is None
    assert states["sched-connections"][2] is None and states["sched-heartbeat"][0] == "inactive"
    assert beats["evaluator"] < 90


def test_a_run_that_finds_the_previous_one_going_is_skipped(ops_url):
    with psycopg.connect(ops_url, autocommit=True) as running, psycopg.connect(ops_url, autocommit=True) as next_run:
        running.execute("select pg_advisory_lock(hashtext('supagate-cron:overlapping'))")  # the long run
        assert next_run.execute("select ops.run_job('overlapping', 'select 1')").fetchone() == ("skipped",)
        running.execute("select pg_advisory_unlock(hashtext('supagate-cron:overlapping'))")
        assert next_run.execute("select ops.run_job('overlapping', 'select 1')").fetchone() == ("done",)
        events = next_run.execute("select event from ops.job_events where job = 'overlapping'").fetchall()
    assert events == [("skipped",)]
