"""The notification outbox against a loopback receiver: the payload and its timestamped
HMAC, one Idempotency-Key across retries so the receiver dedupes, backoff after a 500,
Retry-After after a 429, giving up after MAX_ATTEMPTS; no URL or key in any log line, error
or row; and no request at all when the signing key is unset."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from supagate.config.operations import AlertChannel
from supagate.ops import notify
from supagate.ops.alerts import evaluate
from supagate.ops.kinds import canonical
from tests.loopback import LoopbackServer, QuietHandler

HMAC_KEY = "hmac-Key-7d41c0ffee"
PATH_TOKEN = "/hooks/T0KEN-b8e2-secret-path"
AT = datetime(2032, 3, 1, 12, 0, tzinfo=timezone.utc)


class Receiver:
    """Answers with the scripted statuses in turn (then 200), records every request, and
    keeps the idempotency keys it accepted."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict]] = []
        self.accepted: dict[str, int] = {}
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                if status == 200:
                    key = self.headers["Idempotency-Key"]
                    receiver.accepted[key] = receiver.accepted.get(key, 0) + 1
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()

        self.loopback = LoopbackServer(Handler, PATH_TOKEN)
        self.url = self.loopback.url

    def close(self):
        self.loopback.close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def _fire(conn, name: str, channels: list[str], at: datetime) -> None:
    from supagate.ops.alerts import sync_channels

    # The stack's AlertChannel resources declare the channels: the database routes rows by their type.
    sync_channels(conn, {n: c.model_dump() for n, c in _channels().items()}, set())
    rule = canonical(name, {"kind": "sql", "query": "select 1", "above": 0, "notify": channels}, {})
    evaluate(conn, [rule], at)


def _channels():
    return {"hook": AlertChannel(type="webhook", secret="HOOK_URL", sign_with="HOOK_HMAC"),
            "issues": AlertChannel(type="githubIssue")}


def _undelivered(conn, rule, channel="hook"):
    return conn.execute("select id, attempts, nullif(next_attempt_at, 'infinity'), last_error from ops.notifications "
                        "where rule = %s and channel = %s and delivered_at is null", (rule, channel)).fetchall()


def test_signed_delivery_with_retries_backoff_and_retry_after(ops_url, receiver):
    secrets = {"HOOK_URL": receiver.url, "HOOK_HMAC": HMAC_KEY}
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("delete from ops.notifications")
        _fire(conn, "hook-retries", ["hook", "issues"], AT)
        receiver.script = [(500, {}), (429, {"Retry-After": "120"})]

        first = notify.drain(conn, _channels(), secrets, at=AT)
        assert len(first.retrying) == 1 and first.skipped  # the issue row is the workflow's
        (_, attempts, next_at, error), = _undelivered(conn, "hook-retries")
        assert attempts == 1 and next_at == AT + timedelta(seconds=30) and error == "HTTP 500 from channel hook"

        assert notify.drain(conn, _channels(), secrets, at=AT + timedelta(seconds=15)).retrying == []  # not yet due
        second = notify.drain(conn, _channels(), secrets, at=AT + timedelta(seconds=30))
        assert len(second.retrying) == 1
        (_, attempts, next_at, _), = _undelivered(conn, "hook-retries")
        assert attempts == 2 and next_at == AT + timedelta(seconds=30 + 120)  # the receiver's Retry-After

        third = notify.drain(conn, _channels(), secrets, at=AT + timedelta(seconds=150))
        assert len(third.delivered) == 1
        rows = conn.execute("select channel from ops.notifications where rule = 'hook-retries' "
                            "and delivered_at is null").fetchall()
        assert rows == [("issues",)]

    keys = {r["headers"]["Idempotency-Key"] for r in receiver.requests}
    assert len(receiver.requests) == 3 and len(keys) == 1  # one key across the retries
    assert receiver.accepted == {keys.pop(): 1}
    for request in receiver.requests:
        header = request["headers"]["X-Supagate-Signature"]
        stamp = int(header.split(",")[0].removeprefix("t="))
        assert abs(stamp - time.time()) < 60  # the time it was sent, not the outbox's clock
        expected = hmac.new(HMAC_KEY.encode(), f"{stamp}.".encode() + request["body"], hashlib.sha256).hexdigest()
        assert header == f"t={stamp},v1={expected}"
        assert notify.verify(HMAC_KEY, header, request["body"], now=time.time())
        payload = json.loads(request["body"])
        assert payload["rule"] == "hook-retries" and payload["event"] == "firing" and payload["value"] == 1
        assert request["path"] == PATH_TOKEN


def test_re_evaluating_the_same_minute_queues_nothing_twice(ops_url):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        _fire(conn, "hook-dedupe", ["hook"], AT)
        _fire(conn, "hook-dedupe", ["hook"], AT)
        assert len(_undelivered(conn, "hook-dedupe")) == 1


def test_gives_up_after_max_attempts_and_never_logs_a_secret(ops_url, receiver):
    secrets = {"HOOK_URL": receiver.url, "HOOK_HMAC": HMAC_KEY}
    logs = []
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("delete from ops.notifications")
        _fire(conn, "hook-gives-up", ["hook"], AT)
        receiver.script = [(500, {})] * notify.MAX_ATTEMPTS
        at = AT
        for _ in range(notify.MAX_ATTEMPTS):
            result = notify.drain(conn, _channels(), secrets, at=at)
            logs += result.log
            at += timedelta(hours=2)
        assert result.given_up and len(receiver.requests) == notify.MAX_ATTEMPTS
        (_, attempts, next_at, _), = _undelivered(conn, "hook-gives-up")
        assert attempts == notify.MAX_ATTEMPTS and next_at is None  # infinity: given up
        # A receiver that is gone: the connection error (which names the host) stays clean too.
        _fire(conn, "hook-unreachable", ["hook"], AT)
        dead = {"HOOK_URL": f"http://127.0.0.1:9{PATH_TOKEN}", "HOOK_HMAC": HMAC_KEY}
        logs += notify.drain(conn, _channels(), dead, at=AT).log
        stored = conn.execute("select coalesce(string_agg(last_error || payload::text, ' '), '') "
                              "from ops.notifications").fetchone()[0]
    text = "\n".join(logs) + stored
    assert "ConnectError" in text or "ConnectionRefused" in text
    for secret in (HMAC_KEY, PATH_TOKEN, receiver.url):
        assert secret not in text


def test_a_secret_echoed_in_an_exception_is_redacted(ops_url):
    """An HTTP client error that quotes the URL (as httpx does for a bad URL) never reaches
    the log or the row with the token in it."""
    def post(url, **_kwargs):
        raise ValueError(f"Invalid URL {url!r}: token {PATH_TOKEN.rsplit('/', 1)[-1]}")

    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("delete from ops.notifications")
        _fire(conn, "hook-echo", ["hook"], AT)
        url = f"https://hooks.example.invalid{PATH_TOKEN}"
        result = notify.drain(conn, _channels(), {"HOOK_URL": url, "HOOK_HMAC": HMAC_KEY}, at=AT, post=post)
        (_, _, _, error), = _undelivered(conn, "hook-echo")
    assert result.retrying and "Invalid URL" in error
    for text in (error, *result.log):
        assert url not in text and PATH_TOKEN not in text


def test_a_signature_is_good_for_its_body_and_five_minutes_only():
    """Attack: `sha256=<HMAC of the body>` carried no time, so a captured alert could be
    replayed to the receiver forever. The signed text starts with the send time now."""
    body = b'{"rule":"x","event":"firing"}'
    header = notify.sign(HMAC_KEY, body, 1_900_000_000)
    assert notify.verify(HMAC_KEY, header, body, now=1_900_000_000 + 300)  # the safe twin
    assert not notify.verify(HMAC_KEY, header, body, now=1_900_000_000 + 301)  # the replay, later
    assert not notify.verify(HMAC_KEY, header, body.replace(b"firing", b"resolved"), now=1_900_000_000)
    assert not notify.verify(HMAC_KEY, header.replace("t=1900000000", "t=1900000299"), body, now=1_900_000_000)
    assert not notify.verify(HMAC_KEY, "sha256=" + header.split("v1=")[1], body, now=1_900_000_000)
    assert not notify.verify("", header, body, now=1_900_000_000)


def test_an_unset_signing_key_sends_nothing_and_names_the_key(ops_url, receiver):
    """Attack: an empty signWith secret signed with the empty key, which anyone can forge.
    Now the settings refuse it, `sign` refuses it, and the sender sends nothing."""
    from supagate.config.loading import SettingsError, load_settings

    values = {"tier": "staging", "projectRef": "a" * 20,
              "alerts": {"channels": {"hook": {"type": "webhook", "secret": "HOOK_URL", "signWith": "HOOK_HMAC"}}},
              "alertSecrets": {"HOOK_URL": "https://hooks.example.com/x", "HOOK_HMAC": ""}}
    with pytest.raises(SettingsError) as failure:
        load_settings("staging", values, "Pulumi.staging.yaml")
    assert "alerts.channels.hook uses HOOK_HMAC but alertSecrets has no value" in str(failure.value)
    assert "--path 'alertSecrets.HOOK_HMAC'" in str(failure.value)
    with pytest.raises(ValueError, match="empty key"):
        notify.sign("", b"{}", 1)
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("delete from ops.notifications")
        _fire(conn, "hook-unsigned", ["hook"], AT)
        for hours, missing in enumerate(({"HOOK_URL": receiver.url}, {"HOOK_URL": receiver.url, "HOOK_HMAC": ""})):
            result = notify.drain(conn, _channels(), missing, at=AT + timedelta(hours=hours))
            assert result.retrying and not result.delivered
        (_, attempts, _, error), = _undelivered(conn, "hook-unsigned")
        assert attempts == 2 and error.startswith("alertSecrets.HOOK_HMAC (the signing key of channel hook) is empty")
        assert receiver.requests == []
        # The safe twin: with the key set, the same row goes out signed.
        done = notify.drain(conn, _channels(), {"HOOK_URL": receiver.url, "HOOK_HMAC": HMAC_KEY},
                            at=AT + timedelta(hours=2))
    assert done.delivered and len(receiver.requests) == 1
    sent = receiver.requests[0]
    assert notify.verify(HMAC_KEY, sent["headers"]["X-Supagate-Signature"], sent["body"], now=time.time())


@pytest.mark.parametrize("header, wait", [
    ("9" * 400, timedelta(hours=1)),  # overflowed the date arithmetic: the drain stopped
    ("99999999999999", timedelta(hours=1)),  # parked the row for three million years
    ("\u00b2", timedelta(seconds=30)),  # a Unicode digit: str.isdigit() said yes, int() too
    ("120", timedelta(seconds=120)),  # an honest receiver's wait is kept
])
def test_a_receivers_retry_after_neither_stops_the_drain_nor_parks_a_row(ops_url, receiver, header, wait):
    """The on-call page queued after a hostile receiver's row is still sent."""
    secrets = {"HOOK_URL": receiver.url, "HOOK_HMAC": HMAC_KEY}
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("delete from ops.notifications")
        flaky, oncall = f"flaky-{len(header)}-{ord(header[0])}", f"oncall-{len(header)}-{ord(header[0])}"
        _fire(conn, flaky, ["hook"], AT)  # each case its own rules: a firing rule queues once
        _fire(conn, oncall, ["hook"], AT)
        receiver.script = [(429, {"Retry-After": header})]
        result = notify.drain(conn, _channels(), secrets, at=AT)
        assert len(result.retrying) == 1 and len(result.delivered) == 1
        (_, attempts, next_at, error), = _undelivered(conn, flaky)
        assert attempts == 1 and next_at == AT + wait and error == "HTTP 429 from channel hook"
        assert _undelivered(conn, oncall) == []
