"""The privilege boundary custom `sql` alert rules run behind (ops.sql, "alert-rule
boundary"), attacked on a real PostgreSQL the way issue 23's red team did, through the
evaluation path itself (supagate/ops/alerts.py: each sql rule a statement of its own under
its own timeout, as the pg_cron job runs them). The settings' static filter is bypassed on
purpose (rules are built, then their query swapped): the database has to refuse each one,
and the safe twin, a read-only rule over an app table, still evaluates."""

from __future__ import annotations

import itertools
import os
import time
from datetime import datetime, timezone

import psycopg
import pytest

from supagate.ops.alerts import evaluate, ops_sql
from supagate.ops.kinds import canonical

AT = datetime(2031, 3, 1, tzinfo=timezone.utc)
_names = itertools.count()

APP = """
create table public.assessments (id int primary key, score int);
insert into public.assessments select i, i from generate_series(1, 4) i;
create table public.rate_limits (key text, window_start timestamptz);
insert into public.rate_limits values ('a', now()), ('b', now());
-- an app function that deletes, executable by everyone (PostgreSQL's default for functions)
create function public.cleanup_rate_limits() returns integer language plpgsql security definer
set search_path = '' as $$ begin delete from public.rate_limits; return 1; end $$;
-- what a migration does for a rule to read a table
grant select on public.assessments to supagate_alert_reader;
create extension if not exists dblink schema extensions;
select vault.create_secret('s3cr3t-value', 'webhook');
"""


@pytest.fixture(scope="module")
def app_url(ops_cluster):
    url = ops_cluster.create_database(f"boundary{os.getpid()}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ops_sql())
        conn.execute(APP)
    return url


def _rule(query: str, timeout: str = "1s") -> dict:
    rule = canonical(f"bnd-{next(_names)}", {"kind": "sql", "query": "select 1", "above": 0, "timeout": timeout}, {})
    rule["params"]["query"] = query  # past the settings' static filter: the database's turn
    return rule


# The attacks of issue 23 (and the escape a definer function closes), with what refuses them.
ATTACKS = {
    "run_job drops a table": ("select length(ops.run_job('x', 'drop table public.assessments'))",
                              "permission denied for function run_job"),
    "an app function that deletes": ("select public.cleanup_rate_limits()",
                                     "cannot execute DELETE in a read-only transaction"),
    "a flag to 100 %": ("""select length(ops.apply_flag('{"key": "momentum_v2", "kind": "release", "enabled": true,
                          "steps": [10000], "step": 0, "soak": "0", "paused": false, "advance": "manual"}'::jsonb))""",
                        "permission denied for function apply_flag"),
    "rollouts advanced": ("select count(*) from ops.advance_rollouts()", "permission denied for function advance_rollouts"),
    "a file read": ("select length(pg_read_file('/etc/hostname'))", "permission denied for function pg_read_file"),
    "dblink": ("select count(*) from extensions.dblink('dbname=postgres', 'select 1') as t(x int)",
               "permission denied for schema extensions"),
    "Vault's secrets": ("select count(*) from vault.decrypted_secrets", "permission denied for schema vault"),
    "a large object": ("select lo_from_bytea(0, 'x')::int", "the query creates a large object"),
    "SQL text run by query_to_xml": (
        "select length(query_to_xml('select public.cleanup_rate_limits()', true, false, '')::text)",
        "read-only transaction"),
    "SET ROLE back to the session user": ("select length(set_config('role', 'postgres', true))",
                                          'cannot set parameter "role" within security-definer function'),
    "SET SESSION AUTHORIZATION": ("select length(set_config('session_authorization', 'postgres', true))",
                                  "within security-definer function"),
    "read-write again": ("select length(set_config('transaction_read_only', 'off', true))",
                         "cannot set transaction read-write mode inside a read-only transaction"),
    "a sleep": ("select 1 from pg_sleep_for('10 minutes')", "the query ran past its statement timeout of 1s"),
    "a lock kept past the rollback": ("select count(*) from (select pg_advisory_lock(hashtext('supagate-cron:x'))) l",
                                      "the query takes an advisory lock it keeps"),
}


def _state(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select (select count(*) from public.assessments), (select count(*) from public.rate_limits), "
            "(select count(*) from pg_largeobject_metadata), (select count(*) from ops.flags), "
            "(select count(*) from ops.job_events), (select count(*) from pg_locks where locktype = 'advisory'), "
            "current_setting('transaction_read_only')").fetchone()


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_database_refuses_the_attack_and_nothing_changes(app_url, attack):
    query, refusal = ATTACKS[attack]
    before = _state(app_url)
    with psycopg.connect(app_url, autocommit=True) as conn:
        (state,) = evaluate(conn, [_rule(query)], AT)
        after = _state(app_url)  # read while the evaluating session is still open (its locks)
    assert refusal in state.get("error", ""), state
    assert state["value"] is None and state["state"] == "inactive"
    assert after == before


def test_the_safe_twin_reads_an_app_table(app_url):
    with psycopg.connect(app_url, autocommit=True) as conn:
        (state,) = evaluate(conn, [_rule("select count(*) from public.assessments where score > 1")], AT)
    assert state == {"rule": state["rule"], "state": "firing", "value": 3.0, "since": AT.isoformat()}


def test_a_sleeping_rule_costs_its_own_timeout_and_the_others_are_evaluated(app_url):
    """One evaluation, several statements: the sleeper is cut at its second, the others run."""
    rules = [_rule("select count(*) from public.assessments"), _rule("select 1 from pg_sleep_for('10 minutes')"),
             _rule("select 1 from pg_sleep_for('10 minutes')"), _rule("select 2"),
             canonical("bnd-connections", {"kind": "connectionSaturation", "percent": 99}, {})]
    started = time.monotonic()
    with psycopg.connect(app_url, autocommit=True) as conn:
        states = evaluate(conn, rules, AT)
    took = time.monotonic() - started
    assert 2 <= took < 4, took
    assert [s.get("error", "").startswith("the query ran past") for s in states] == [False, True, True, False, False]
    assert [s["value"] for s in states][:1] + [s["value"] for s in states][3:4] == [4.0, 2.0]
    assert "error" not in states[4] and states[4]["value"] is not None


def test_a_rule_without_a_statement_timeout_of_its_own_is_not_run(app_url):
    """Called by hand with no timeout, the boundary refuses rather than risk a stall."""
    import json

    with psycopg.connect(app_url, autocommit=True) as conn:
        row = conn.execute("select error from ops.evaluate_alerts(%s, %s::jsonb)",
                           (AT, json.dumps([_rule("select 1")]))).fetchone()
    assert row[0].startswith("a sql rule runs only in a statement of its own with a statement timeout")


@pytest.mark.parametrize("tamper, undo, problem", [
    ("grant pg_read_server_files to supagate_alert_reader", "revoke pg_read_server_files from supagate_alert_reader",
     "role supagate_alert_reader is a member of pg_read_server_files"),
    ("alter role supagate_alert_reader login", "alter role supagate_alert_reader nologin",
     "role supagate_alert_reader can log in or holds an attribute"),
    ("create extension if not exists dblink schema public", "drop extension dblink cascade",
     "supagate_alert_reader may execute public.dblink"),
])
def test_a_weakened_boundary_stops_every_sql_rule(ops_cluster, tamper, undo, problem):
    """Fail closed: a reader someone widened, or an escape hatch open to everyone, is reported
    and no rule runs until it is fixed."""
    url = ops_cluster.create_database(f"tampered{os.getpid()}_{next(_names)}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ops_sql())
        conn.execute(tamper)
        try:
            (state,) = evaluate(conn, [_rule("select 1")], AT)
        finally:
            conn.execute(undo)
        (after,) = evaluate(conn, [_rule("select 1")], AT)
    assert state["error"].startswith("sql rules are not evaluated: " + problem), state
    assert "error" not in after


def test_a_rules_value_carries_six_significant_digits_not_a_tables_rows(app_url):
    """A red-team rule packed every user's scores and ids into one long number, which went
    to the webhook and the issue as the rule's value."""
    encoded = ("select ('9' || string_agg(lpad(score::text, 4, '0') || lpad(id::text, 8, '0'), '9' order by id))"
               "::numeric from public.assessments")
    with psycopg.connect(app_url, autocommit=True) as conn:
        (state,) = evaluate(conn, [_rule(encoded)], AT)
        (small,) = evaluate(conn, [_rule("select 1234.5678::numeric")], AT)
    assert state["value"] is not None, state
    value = state["value"]
    assert value > 1e20 and value == float(f"{value:.5e}"), state  # 3 rows: 39 digits before the cap
    assert small["value"] == 1234.57  # an honest value keeps what a threshold needs
