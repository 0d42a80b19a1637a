"""The one test that waits for the real scheduler (pg_cron 1.4.2 has minute granularity):
the heartbeat job runs and succeeds, and a templated job with a timeout really fails on
it. And the job wrapper skips a run that finds the previous one still going."""

from __future__ import annotations

import time

import psycopg

from supagate.config.operations import CronJob
from supagate.ops import cron


def test_the_scheduler_runs_the_heartbeat_and_enforces_a_jobs_timeout(ops_url):
    slow = cron.command("too-slow", CronJob(schedule="* * * * *", sql="select pg_sleep(2)", timeout="200ms"))
    assert slow.startswith("set statement_timeout = '200ms'; select ops.run_job('too-slow'")
    with psycopg.connect(ops_url, autocommit=True) as conn:
        beat, _ = cron.ensure(conn, "scheduler-heartbeat-test", "* * * * *", "select ops.beat('pg_cron')")
        timed, _ = cron.ensure(conn, "too-slow", "* * * * *", slow)
        deadline = time.monotonic() + 75  # the next minute boundary, and the run itself
        statuses = {}
        while time.monotonic() < deadline:
            rows = conn.execute("select jobid, status, return_message from cron.job_run_details "
                                "where jobid in (%s, %s) and status in ('succeeded', 'failed')",
                                (beat.jobid, timed.jobid)).fetchall()
            statuses = {jobid: (status, message) for jobid, status, message in rows}
            if len(statuses) == 2:
                break
            time.sleep(1)
        heartbeat_age = conn.execute("select extract(epoch from now() - beat_at) from ops.heartbeat "
                                     "where source = 'pg_cron'").fetchone()
        state = cron.read(conn, "too-slow")
        for name in ("scheduler-heartbeat-test", "too-slow"):
            conn.execute("select cron.unschedule(%s)", (name,))
    assert statuses.get(beat.jobid, ("none",))[0] == "succeeded", statuses
    assert heartbeat_age is not None and heartbeat_age[0] < 90
    status, message = statuses[timed.jobid]
    assert status == "failed" and "statement timeout" in message
    assert state.last_status == "failed" and state.failures_24h >= 1 and state.last_run_at


def test_a_run_that_finds_the_previous_one_going_is_skipped(ops_url):
    with psycopg.connect(ops_url, autocommit=True) as running, psycopg.connect(ops_url, autocommit=True) as next_run:
        running.execute("select pg_advisory_lock(hashtext('supagate-cron:overlapping'))")  # the long run
        assert next_run.execute("select ops.run_job('overlapping', 'select 1')").fetchone() == ("skipped",)
        running.execute("select pg_advisory_unlock(hashtext('supagate-cron:overlapping'))")
        assert next_run.execute("select ops.run_job('overlapping', 'select 1')").fetchone() == ("done",)
        events = next_run.execute("select event from ops.job_events where job = 'overlapping'").fetchall()
    assert events == [("skipped",)]
