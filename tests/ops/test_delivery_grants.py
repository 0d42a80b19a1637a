"""Who may say a notification went out, and check in for the health workflow: never the API
roles (every edge function holds service_role), only the role that delivers the row's
channel. supagate_watcher: githubIssue rows and the check-in; supagate_sender: webhook and
slack rows (and giving up on rows of a channel no stack declares)."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from supagate.ops import alerts

CHANNELS = {"gr-issues": {"type": "githubIssue"}, "gr-hook": {"type": "webhook", "secret": "GR_HOOK"},
            "gr-chat": {"type": "slack", "secret": "GR_CHAT"}}


def _queue(conn, channel: str) -> int:
    """A notification as ops.evaluate_alerts queues it."""
    return conn.execute("insert into ops.notifications (rule, channel, event, payload, idempotency_key) "
                        "values ('gr-rule', %s, 'firing', '{}', %s) returning id",
                        (channel, str(uuid.uuid4()))).fetchone()[0]


@pytest.fixture
def rows(ops_url):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        alerts.sync_channels(conn, CHANNELS, set())  # as the stack's AlertChannel resources do
        yield conn, {name: _queue(conn, name) for name in (*CHANNELS, "gr-gone")}


@contextmanager
def acting_as(conn, role: str):
    conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
    try:
        yield
    finally:
        conn.execute("reset role")


def _delivered(conn, id_: int) -> bool:
    return conn.execute("select delivered_at is not null from ops.notifications where id = %s", (id_,)).fetchone()[0]


def _workflow_beat(conn):
    return conn.execute("select beat_at from ops.heartbeat where source = 'workflow'").fetchone()


@pytest.mark.parametrize("role", ["service_role", "authenticated", "anon"])
def test_an_api_role_can_neither_report_a_delivery_nor_check_in(rows, role):
    conn, ids = rows
    beat = _workflow_beat(conn)
    attempts = [("select ops.ack_notifications(%s)", ([ids["gr-issues"], ids["gr-hook"]],)),
                ("select ops.record_sent(%s)", (ids["gr-hook"],)),
                ("select ops.record_attempt(%s, 'sent, honest', 'infinity')", (ids["gr-chat"],)),
                ("select ops.check_in()", None),
                ("update ops.notifications set delivered_at = now() where id = %s", (ids["gr-hook"],)),
                ("insert into ops.heartbeat values ('workflow', now()) on conflict (source) do update "
                 "set beat_at = now()", None)]
    with acting_as(conn, role):
        for statement, params in attempts:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement, params)
    assert not any(_delivered(conn, id_) for id_ in ids.values())
    assert conn.execute("select attempts from ops.notifications where id = %s", (ids["gr-chat"],)).fetchone() == (0,)
    assert _workflow_beat(conn) == beat


def test_the_watcher_acks_issue_rows_and_checks_in_and_nothing_else(rows):
    conn, ids = rows
    another_issue = _queue(conn, "gr-issues")
    conn.execute("delete from ops.heartbeat where source = 'workflow'")
    with acting_as(conn, "supagate_watcher"):
        assert conn.execute("select ops.ack_notifications(%s)", ([ids["gr-issues"]],)).fetchone() == (1,)
        conn.execute("select ops.check_in()")
        for channel in ("gr-hook", "gr-chat", "gr-gone"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match=f"channel {channel}"):
                conn.execute("select ops.ack_notifications(%s)", ([another_issue, ids[channel]],))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select ops.record_sent(%s)", (ids["gr-hook"],))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select ops.record_attempt(%s, 'x', 'infinity')", (ids["gr-issues"],))
    assert _delivered(conn, ids["gr-issues"]) and _workflow_beat(conn) is not None
    # A refused call acknowledges nothing, not even the issue row it also named.
    assert not any(_delivered(conn, id_) for id_ in (another_issue, ids["gr-hook"], ids["gr-chat"], ids["gr-gone"]))


def test_the_sender_reports_its_webhook_and_slack_rows_only(rows):
    conn, ids = rows
    beat = _workflow_beat(conn)
    with acting_as(conn, "supagate_sender"):
        conn.execute("select ops.record_sent(%s)", (ids["gr-hook"],))
        conn.execute("select ops.record_attempt(%s, 'HTTP 500 from channel gr-chat', now())", (ids["gr-chat"],))
        conn.execute("select ops.record_attempt(%s, 'not declared', 'infinity')", (ids["gr-gone"],))  # gives up
        for statement in ("select ops.record_sent(%s)", "select ops.record_attempt(%s, 'x', 'infinity')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="channel gr-issues"):
                conn.execute(statement, (ids["gr-issues"],))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="channel gr-gone"):
            conn.execute("select ops.record_sent(%s)", (ids["gr-gone"],))  # nothing was sent there
        for statement, params in (("select ops.ack_notifications(%s)", ([ids["gr-issues"]],)),
                                  ("select ops.check_in()", None)):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement, params)
    assert _delivered(conn, ids["gr-hook"]) and not _delivered(conn, ids["gr-issues"])
    assert conn.execute("select attempts, next_attempt_at = 'infinity' from ops.notifications where id = any(%s) "
                        "order by id", ([ids["gr-chat"], ids["gr-gone"]],)).fetchall() == [(1, False), (1, True)]
    assert _workflow_beat(conn) == beat
