"""supabase:CronJob in the SDK's provider host, driven over gRPC as the engine drives it,
against Debian's pg_cron 1.4.2: in-place updates keep the job id, a job paused by hand is
found by refresh and reactivated by up, a same-named job of another role is refused,
a migration's job is adopted, and only managed jobs are ever unscheduled."""

from __future__ import annotations

import psycopg
import pytest

from components.providers.cron_job import CronJobProvider
from tests.provider_host import ProviderHost, without_provider

URN = "urn:pulumi:prod::supabase-platform::pulumi-python:dynamic/supabase:CronJob::operations-job-{}"
DIFF_NONE, DIFF_SOME = 1, 2


def _props(url: str, name: str, schedule: str = "30 3 * * 0", command: str = "select 1", **extra):
    return {"db_url": url, "name": name, "schedule": schedule, "command": command, "active": True, **extra}


def _job(url: str, name: str):
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("select jobid, schedule, command, active, username from cron.job where jobname = %s",
                            (name,)).fetchall()


@pytest.fixture(scope="module")
def host():
    with ProviderHost(CronJobProvider(), URN.format("jobs")) as running:
        running.configure()
        yield running


def test_create_update_in_place_drift_and_reactivation(ops_url, host):
    inputs, failures = host.check({}, _props(ops_url, "vacuum-events", command="VACUUM (ANALYZE) pg_catalog.pg_class"))
    assert failures == []
    id_, outs = host.create(without_provider(inputs))
    (jobid, schedule, command, active, owner), = _job(ops_url, "vacuum-events")
    assert outs["jobid"] == jobid and outs["adopted"] is False and active and owner == "postgres"

    same, _ = host.check(without_provider(inputs), _props(ops_url, "vacuum-events",
                                                          command="VACUUM (ANALYZE) pg_catalog.pg_class"))
    assert host.diff(id_, without_provider(outs), without_provider(same)).changes == DIFF_NONE

    moved, _ = host.check(without_provider(inputs), _props(ops_url, "vacuum-events", schedule="45 4 * * 0",
                                                           command="VACUUM (ANALYZE) pg_catalog.pg_class"))
    assert host.diff(id_, without_provider(outs), without_provider(moved)).changes == DIFF_SOME
    outs = host.update(id_, without_provider(outs), without_provider(moved))
    assert _job(ops_url, "vacuum-events")[0][:2] == (jobid, "45 4 * * 0")  # same job, new schedule

    with psycopg.connect(ops_url, autocommit=True) as conn:  # someone pauses it by hand
        conn.execute("select cron.alter_job(%s, active := false)", (jobid,))
    refreshed = host.read(id_, without_provider(outs))
    assert refreshed["drift"] == ["active is False in the database, True in the stack"]
    assert host.diff(id_, refreshed, without_provider(moved)).changes == DIFF_SOME  # up repairs it
    outs = host.update(id_, refreshed, without_provider(moved))
    assert _job(ops_url, "vacuum-events")[0][3] is True and outs["drift"] == []
    assert _job(ops_url, "vacuum-events")[0][0] == jobid


def test_a_job_removed_by_hand_is_drift_and_comes_back(ops_url, host):
    id_, outs = host.create(_props(ops_url, "gone-by-hand"))
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("select cron.unschedule('gone-by-hand')")
    refreshed = host.read(id_, without_provider(outs))
    assert refreshed["drift"] == ["job gone-by-hand is not in cron.job"]
    host.update(id_, refreshed, _props(ops_url, "gone-by-hand"))
    assert len(_job(ops_url, "gone-by-hand")) == 1


def test_a_job_of_another_role_is_refused(ops_url, host):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("create role cron_other login")
        jobid = conn.execute("select cron.schedule_in_database('shared-name', '0 1 * * *', 'select 2', 'postgres', "
                             "'cron_other', true)").fetchone()[0]
    with pytest.raises(Exception, match=rf"shared-name already exists as jobid {jobid} owned by cron_other"):
        host.create(_props(ops_url, "shared-name"))
    assert [row[4] for row in _job(ops_url, "shared-name")] == ["cron_other"]  # untouched, no second job


def test_a_migrations_job_is_adopted_in_place(ops_url, host):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        jobid = conn.execute("select cron.schedule('cleanup-rate-limits', '7 * * * *', "
                             "'select public.cleanup_rate_limits()')").fetchone()[0]
    command = "select ops.run_job('cleanup-rate-limits', $cmd$select now()$cmd$)"
    _, outs = host.create(_props(ops_url, "cleanup-rate-limits", schedule="7 * * * *", command=command))
    assert outs["adopted"] is True and outs["jobid"] == jobid
    assert _job(ops_url, "cleanup-rate-limits")[0][:3] == (jobid, "7 * * * *", command)


def test_delete_unschedules_only_the_managed_job(ops_url, host):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("select cron.schedule('hand-made', '0 2 * * *', 'select 3')")
    id_, outs = host.create(_props(ops_url, "managed-one"))
    host.delete(id_, without_provider(outs))
    assert _job(ops_url, "managed-one") == []
    assert len(_job(ops_url, "hand-made")) == 1  # undeclared jobs are never removed
    # A job recreated by someone else under the same name (another jobid) is not ours to delete.
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("select cron.schedule('managed-one', '0 2 * * *', 'select 4')")
    host.delete(id_, without_provider(outs))
    assert len(_job(ops_url, "managed-one")) == 1


def test_schedules_the_target_cannot_run_are_refused(ops_url, host):
    inputs, failures = host.check({}, _props(ops_url, "bad", schedule="61 * * * *"))
    assert failures and "minute 61 is outside 0-59" in failures[0][1]
    inputs, failures = host.check({}, _props(ops_url, "seconds", schedule="30 seconds"))
    assert failures == []  # valid for Supabase's pg_cron 1.6...
    with pytest.raises(Exception, match="second schedules need pg_cron 1.5 or later"):
        host.create(without_provider(inputs))  # ...but this database runs 1.4.2


def test_a_failed_connection_names_no_secret(host):
    url = "postgresql://postgres:cron-Secret-9f2@127.0.0.1:9/postgres"
    with pytest.raises(Exception) as failure:
        host.create(_props(url, "unreachable"))
    assert "cron-Secret-9f2" not in str(failure.value) and "connection" in str(failure.value).lower()


def test_the_daily_purge_keeps_recent_history_and_bounds_what_grows(ops_url):
    """Old pg_cron runs, delivered notifications, job events and rate counters of windows
    long over go; recent ones, undelivered notifications and flag events stay."""
    from supagate.ops.cron import retention_command

    old, new = "now() - interval '20 days'", "now() - interval '1 hour'"
    with psycopg.connect(ops_url, autocommit=True) as conn:
        for at in (old, new):
            conn.execute("insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, "
                         f"status, start_time, end_time) values (0, nextval('cron.runid_seq'), 1, 'postgres', "
                         f"'postgres', 'purge-test', 'succeeded', {at}, {at})")
            conn.execute(f"insert into ops.job_events (job, event, at) values ('purge-test', 'skipped', {at})")
        conn.execute(f"""insert into ops.notifications (rule, channel, event, payload, idempotency_key, delivered_at)
                         values ('purge-test', 'c', 'firing', '{{}}', 'purge-test-old', {old}),
                                ('purge-test', 'c', 'firing', '{{}}', 'purge-test-new', {new}),
                                ('purge-test', 'c', 'firing', '{{}}', 'purge-test-pending', null)""")
        conn.execute("insert into ops.rate_counters (key, window_start, request_count) values "
                     "('purge-test:old', now() - interval '26 hours', 3), ('purge-test:new', now(), 1)")
        conn.execute(retention_command(14))
        assert conn.execute("select count(*) from cron.job_run_details where command = 'purge-test'").fetchone() == (1,)
        assert conn.execute("select count(*) from ops.job_events where job = 'purge-test'").fetchone() == (1,)
        assert conn.execute("select idempotency_key from ops.notifications where rule = 'purge-test' "
                            "order by 1").fetchall() == [("purge-test-new",), ("purge-test-pending",)]
        assert conn.execute("select key from ops.rate_counters where key like 'purge-test:%'").fetchall() == [
            ("purge-test:new",)]


def test_the_daily_purge_needs_nothing_but_pg_cron(cluster):
    from supagate.ops.cron import retention_command

    url = cluster.create_database("purge_without_ops")
    with psycopg.connect(url, autocommit=True) as conn:  # pg_cron's tables, as a database without ops has them
        conn.execute("create schema cron; create table cron.job_run_details (end_time timestamptz)")
        conn.execute("insert into cron.job_run_details values (now() - interval '20 days'), (now())")
        conn.execute(retention_command(14))
        assert conn.execute("select count(*) from cron.job_run_details").fetchone() == (1,)
