"""Every alert kind, firing and quiet, on a real PostgreSQL: rules written as in a stack
file (cases/kinds.yaml), brought to canonical form by the same code as the program, and
evaluated by the one SQL evaluator (ops.evaluate_alerts) with the clock the test drives."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import yaml

from supagate.ops.alerts import evaluate
from supagate.ops.kinds import KINDS, canonical, seconds

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "kinds.yaml").read_text())
BASE = datetime(2030, 1, 1, tzinfo=timezone.utc)


def _fill(value, schema: str, t0: datetime):
    if isinstance(value, str):
        return value.replace("{s}", schema).replace("{t0}", t0.isoformat())
    if isinstance(value, dict):
        return {k: _fill(v, schema, t0) for k, v in value.items()}
    return value


def _activity(url: str, activity: dict, schema: str, t0: datetime, held: list) -> None:
    if "connections" in activity:
        held.extend(psycopg.connect(url, autocommit=True) for _ in range(activity["connections"]))
        return
    if "fatal_sessions" in activity:
        for _ in range(activity["fatal_sessions"]):
            conn = psycopg.connect(url)
            conn.execute("set idle_in_transaction_session_timeout = '50ms'")
            conn.execute("select 1")  # a transaction is open and idle now
            time.sleep(0.2)  # the server ends the session with FATAL
            conn.close()
        time.sleep(0.5)
        return
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(activity.get("repeat", 1)):
            try:
                conn.execute(_fill(activity["sql"], schema, t0))
            except psycopg.errors.DivisionByZero:
                pass  # a rolled-back transaction, as the case wants
    time.sleep(0.5)  # the closed session's statistics reach pg_stat_database


def test_every_kind_has_firing_and_quiet_cases():
    by_kind: dict[str, set] = {}
    for case in CASES:
        by_kind.setdefault(case["rule"]["kind"], set()).add(case["expect"])
    missing = [k for k in KINDS if "firing" not in by_kind.get(k, set())]
    assert not missing, f"kinds without a firing case: {missing}"
    quiet = [k for k in KINDS if "inactive" not in by_kind.get(k, set())]
    # unusedIndexes and externalWatch read the whole cluster or a shared heartbeat: their
    # quiet side is covered by the scheduler heartbeat and the evaluator's own tests.
    assert set(quiet) <= {"unusedIndexes", "externalWatch"}, quiet


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["name"] for c in CASES])
def test_kind(ops_url, index):
    case = CASES[index]
    schema = f"k{index}"
    t0 = BASE + timedelta(days=3 * index)  # far apart: no case's samples reach another's window
    rule = canonical(f"case-{index}", _fill(case["rule"], schema, t0), {})
    held: list = []
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute(f"create schema {schema}")
        if case.get("setup"):
            conn.execute(_fill(case["setup"], schema, t0))
        (first,) = evaluate(conn, [rule], t0)  # as the evaluation job does (a sql rule alone, timed)
        assert "error" not in first, first
        try:
            if case.get("activity"):
                _activity(ops_url, case["activity"], schema, t0, held)
            at = t0 + timedelta(seconds=seconds(case.get("after", "1m"), "after"))
            (result,) = evaluate(conn, [rule], at)
            state, value, error = result["state"], result["value"], result.get("error")
        finally:
            for extra in held:
                extra.close()
    assert error is None
    assert state == case["expect"], f"{case['name']}: {state} with value {value}"
    if "value" in case:
        assert float(value) == case["value"]


def test_a_rule_that_cannot_be_evaluated_reports_it_and_keeps_its_state(ops_url):
    """Fail closed: an error is never a quiet rule."""
    from supagate.ops.alerts import evaluate

    rule = canonical("broken-missed", {"kind": "cronMissed", "job": "no-such-job", "maxAge": "5m"}, {})
    with psycopg.connect(ops_url, autocommit=True) as conn:
        (state,) = evaluate(conn, [rule], BASE - timedelta(days=30))
    assert state["error"] == "no pg_cron job named no-such-job"
    assert state["state"] == "inactive" and state["value"] is None


def test_slow_queries_need_pg_stat_statements(cluster):
    """A database without pg_stat_statements reports the missing extension on every rule
    that reads it; the other rules still evaluate."""
    from supagate.ops.alerts import evaluate, ops_sql

    url = cluster.create_database("ops_no_pss")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop extension if exists pg_stat_statements")
        conn.execute(ops_sql())
        rules = [canonical("slow", {"kind": "slowQueries", "meanMs": 10}, {}),
                 canonical("conns", {"kind": "connectionSaturation", "percent": 99}, {})]
        slow, conns = evaluate(conn, rules, BASE)
    assert "pg_stat_statements is not installed" in slow["error"]
    assert "error" not in conns and conns["state"] == "inactive"
