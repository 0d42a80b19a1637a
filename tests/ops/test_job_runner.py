"""The privilege boundary maintenance jobs run behind (ops.sql, "job-runner boundary"),
attacked on a real PostgreSQL with what a third red-team pass got past the static gate: code
a job's allowed SQL reaches without naming it. Every job runs through ops.run_job, as pg_cron
runs it (supagate/ops/cron.py), so the database has to refuse each one; the safe twins (a
retention DELETE on a table a migration granted, a definer function granted to the runner,
a `refresh:` job) still run."""

from __future__ import annotations

import os

import psycopg
import pytest

from supagate.config.operations import CronJob
from supagate.ops import cron
from supagate.ops.alerts import ops_sql

APP = """
create table public.assessments (id int primary key, score int);
insert into public.assessments select i, i from generate_series(1, 4) i;
create table public.events (id int primary key, at timestamptz);
insert into public.events values (1, now() - interval '1 year'), (2, now());
create table public.other_events (id int primary key, at timestamptz);
insert into public.other_events values (1, now() - interval '1 year');
-- what the app's migrations grant the runner: its queue tables, its functions
grant select, delete on public.events, public.other_events to supagate_job_runner;
-- an overload the static gate does not tell apart: the job names tidy(text), tidy(text, int) runs
create function public.tidy(p_sql text, p_n int) returns void language plpgsql as $$ begin execute p_sql; end $$;
-- a trigger an allowed DELETE fires, touching a table the job never names
create function public.cascade_delete() returns trigger language plpgsql as $$
begin delete from public.assessments where id > 0; return old; end $$;
create trigger cascade_delete before delete on public.other_events for each row execute function public.cascade_delete();
-- a function that updates every row, or turns RLS off, with text the gate cannot read
create function public.reset_scores() returns void language sql as $$ update public.assessments set score = 0 $$;
create function public.open_up() returns void language plpgsql as $$
begin execute 'alter table public.assessments ' || 'disable row level security'; end $$;
-- the reviewed way to do more: a definer function a migration grants the runner
create function public.archive_events() returns integer language plpgsql security definer set search_path = '' as $$
declare n integer; begin delete from public.events where at < now() - interval '90 days'; get diagnostics n = row_count;
return n; end $$;
revoke execute on function public.archive_events() from public;
grant execute on function public.archive_events() to supagate_job_runner;
create materialized view public.totals as select count(*) as n from public.assessments;
create unique index on public.totals (n);
"""


@pytest.fixture(scope="module")
def app_url(ops_cluster):
    url = ops_cluster.create_database(f"jobrunner{os.getpid()}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ops_sql())
        conn.execute(APP)
    return url


def _run(url: str, name: str, **template) -> Exception | None:
    """The job's command exactly as pg_cron gets it, run as the job's owner (postgres here)."""
    command = cron.command(name, CronJob(schedule="0 4 * * *", **template))
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(command)
        except psycopg.Error as exc:
            return exc
    return None


def _scores(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute("select count(*), sum(score), (select relrowsecurity from pg_class "
                            "where oid = 'public.assessments'::regclass) from public.assessments").fetchone()


ATTACKS = {
    "an-overload-that-runs-its-argument": ({"sql": "select public.tidy('drop table public.assessments cascade', 0)"},
                                           "must be owner of table assessments"),
    "a-trigger-the-delete-fires": ({"sql": "delete from public.other_events where at < now() - interval '90 days'"},
                                   "permission denied for table assessments"),
    "a-function-that-updates-every-row": ({"call": "public.reset_scores"}, "permission denied for table assessments"),
    "a-function-that-turns-rls-off": ({"call": "public.open_up"}, "must be owner of table assessments"),
    "supagates-own-tables": ({"sql": "select public.tidy('update ops.flags set enabled = false', 1)"},
                             "permission denied for table flags"),
    "a-new-table": ({"sql": "select public.tidy('create table public.loot as select * from public.events', 1)"},
                    "permission denied for schema public"),
    "back-to-the-owner": ({"sql": "select set_config('role', 'postgres', false)"},
                          "cannot set parameter \"role\" within security-definer function"),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_database_refuses_what_a_job_reaches_and_nothing_changes(app_url, attack):
    template, refusal = ATTACKS[attack]
    before = _scores(app_url)
    failure = _run(app_url, attack, **template)
    assert failure is not None and refusal in str(failure), failure
    assert _scores(app_url) == before


def test_the_safe_twins_run(app_url):
    assert _run(app_url, "retention", sql="delete from public.events where at < now() - interval '90 days'") is None
    assert _run(app_url, "archive", call="public.archive_events") is None
    assert _run(app_url, "totals", refresh="public.totals") is None
    with psycopg.connect(app_url) as conn:
        assert conn.execute("select count(*) from public.events").fetchone() == (1,)  # the old one went
        assert conn.execute("select event from ops.job_events where job in ('retention', 'archive', 'totals')"
                            ).fetchall() == []  # none skipped


@pytest.mark.parametrize("alteration", [
    "alter function ops.run_job(text, text) security invoker",  # later jobs would run as their owner
    "grant execute on function ops.run_job(text, text) to public",  # anyone could run SQL as the runner
    "alter function ops.run_job(text, text) reset search_path",
])
def test_a_job_that_alters_the_function_running_jobs_stops_every_later_job(ops_cluster, alteration):
    """A fourth red-team pass: the runner owns ops.run_job, so one job flipped it to SECURITY
    INVOKER and the next dropped a table as postgres."""
    url = ops_cluster.create_database(f"jobflip{os.getpid()}{abs(hash(alteration)) % 10**6}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ops_sql())
        conn.execute(APP)
    assert _run(url, "tidy-up", sql=f"select public.tidy('{alteration}', 0)") is None  # it may: it owns it
    failure = _run(url, "nightly", sql="select public.tidy('drop table public.assessments cascade', 0)")
    assert failure is not None and "ops.run_job was altered" in str(failure), failure
    assert _run(url, "retention", sql="delete from public.events where at < now() - interval '90 days'") is not None
    with psycopg.connect(url) as conn:
        assert conn.execute("select to_regclass('public.assessments') is not null").fetchone() == (True,)
