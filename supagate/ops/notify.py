"""The notification outbox's sender: delivers ops.notifications rows to webhooks (signed)
and Slack, retrying with backoff and honouring Retry-After.

The contract any sender keeps (this one runs in the health workflow; on Supabase a pg_net
sender can keep the same one):
- a row is delivered at most once per idempotency key: the key travels as the
  `Idempotency-Key` header, so a receiver dedupes a retry whose acknowledgement was lost;
- a webhook body is the row's payload as JSON, signed `X-Supagate-Signature: t=<unix
  seconds>,v1=<hex HMAC-SHA256 of "<t>." + the exact body>` with the channel's key (the
  Stripe scheme; Supabase's log drains send unsigned requests). A receiver verifies with
  `verify()` below or its equal: recompute the HMAC over the raw body, compare in constant
  time, refuse a `t` more than 5 minutes from its clock, and dedupe on Idempotency-Key, so
  a captured request cannot be replayed later. A channel whose key is unset or empty is not
  sent at all (no unsigned or empty-key request ever leaves);
- 2xx records the delivery (ops.record_sent); 429 and 503 retry after `Retry-After` when the
  receiver sends it; other failures retry with exponential backoff (30 s doubling, at most
  1 h); after MAX_ATTEMPTS the row is given up (next_attempt_at = infinity) and stays
  visible to `supagate ops status`;
- URLs and keys are secrets: no log line, error or row ever holds them (redacted);
- the database says which rows are the sender's: a channel's type in ops.alert_channels
  (written by the stack), and ops.record_sent/record_attempt refuse any other row.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Callable
from urllib.parse import urlsplit

from supagate.secrets import redact

MAX_ATTEMPTS = 10
RETRY_STATUSES = {429, 503}
SIGNATURE_HEADER = "X-Supagate-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300


@dataclass
class DrainResult:
    delivered: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    given_up: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # githubIssue rows: the workflow's script delivers them
    log: list[str] = field(default_factory=list)


def _mac(key: str, stamp: int, body: bytes) -> str:
    return hmac.new(key.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(key: str, body: bytes, stamp: int) -> str:
    """The signature header's value for `body` sent at unix time `stamp`."""
    if not key:
        raise ValueError("refusing to sign a webhook with an empty key")
    return f"t={stamp},v1={_mac(key, stamp, body)}"


def verify(key: str, header: str | None, body: bytes, now: float,
           tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """What a receiver runs: the header signs this exact body, with this key, within
    `tolerance` seconds of `now`."""
    match = re.fullmatch(r"t=(\d{1,12}),v1=([0-9a-f]{64})", (header or "").strip())
    if not key or not match or abs(now - int(match.group(1))) > tolerance:
        return False
    return hmac.compare_digest(_mac(key, int(match.group(1)), body), match.group(2))


# The longest wait anything may impose: our own backoff's ceiling, and the cap on a receiver's
# Retry-After (a receiver answering `Retry-After: 99999999999999` would otherwise park the row
# forever, or overflow the date arithmetic and stop every row queued after it).
LONGEST_WAIT = timedelta(hours=1)


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=30 * 2 ** min(attempts, 16)), LONGEST_WAIT)


def retry_after(header: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds or an HTTP date, at most LONGEST_WAIT; None when absent or
    unreadable (ASCII digits only: `str.isdigit` also takes `²`)."""
    if not header:
        return None
    header = header.strip()
    if re.fullmatch(r"[0-9]+", header):
        seconds = int(header) if len(header) <= 6 else LONGEST_WAIT.total_seconds()
        return min(timedelta(seconds=seconds), LONGEST_WAIT)
    try:
        return min(max(parsedate_to_datetime(header) - now, timedelta(0)), LONGEST_WAIT)
    except (TypeError, ValueError, OverflowError):
        return None


def _secret_forms(values: list[str]) -> list[str]:
    """A URL's path and query carry its token (hooks.slack.com/services/T/B/XYZ): redact
    them wherever they appear alone too."""
    forms = []
    for value in values:
        forms.append(value)
        if "://" in value:
            parts = urlsplit(value)
            forms += [p for p in (parts.path, parts.query) if len(p) > 8]
    return forms


def _message(row: dict[str, Any], channel_type: str) -> bytes:
    payload = row["payload"]
    if channel_type == "slack":
        icon = {"firing": ":rotating_light:", "repeat": ":rotating_light:", "resolved": ":white_check_mark:"}
        text = (f"{icon.get(row['event'], '')} {payload['rule']} {row['event']} ({payload.get('severity')}): "
                f"{payload.get('kind')} is {payload.get('value')}, threshold {payload.get('threshold')}")
        return json.dumps({"text": text.strip()}).encode()
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def drain(conn, channels: dict[str, Any], secrets: dict[str, str], at: datetime | None = None,
          post: Callable[..., Any] | None = None, timeout: float = 10.0,
          clock: Callable[[], float] = time.time) -> DrainResult:
    """Send every due, undelivered notification once. `channels` are the stack's
    (config.operations.AlertChannel by name), `secrets` the alertSecrets values; `at` is
    the outbox's time (what is due), `clock` the signatures' (when it is sent)."""
    import httpx

    result = DrainResult()
    now = at or conn.execute("select now()").fetchone()[0]
    hidden = _secret_forms([v for v in secrets.values() if v])
    rows = conn.execute("select n.id, n.rule, n.channel, n.event, n.payload, n.idempotency_key, n.attempts, c.type "
                        "from ops.notifications n left join ops.alert_channels c on c.name = n.channel "
                        "where n.delivered_at is null and n.next_attempt_at <= %s order by n.id", (now,)).fetchall()
    client = None if post else httpx.Client(timeout=timeout, follow_redirects=False)
    send = post or client.post
    try:
        for id_, rule, channel_name, event, payload, key, attempts, declared_type in rows:
            row = {"rule": rule, "event": event, "payload": payload}
            channel = channels.get(channel_name)
            if declared_type == "githubIssue":
                result.skipped.append(id_)
                continue
            if declared_type is None:
                _failed(conn, result, id_, attempts, now, f"channel {channel_name} is not declared in the database "
                        "(ops.alert_channels): deploy the stack, its Operations component writes it", None)
                continue
            if channel is None or channel.type != declared_type:
                _failed(conn, result, id_, attempts, now, f"channel {channel_name} is a {declared_type} channel in the "
                        "database but " + ("not declared in the stack" if channel is None else
                                           f"a {channel.type} channel in the stack") + ": deploy the stack", None)
                continue
            url = secrets.get(channel.secret, "")
            if not url:
                _failed(conn, result, id_, attempts, now, f"alertSecrets.{channel.secret} is empty", None)
                continue
            if channel.sign_with and not secrets.get(channel.sign_with):
                _failed(conn, result, id_, attempts, now, f"alertSecrets.{channel.sign_with} (the signing key of "
                        f"channel {channel_name}) is empty: not sent, since the receiver could not trust it", None)
                continue
            body = _message(row, channel.type)
            headers = {"Content-Type": "application/json", "Idempotency-Key": key,
                       "User-Agent": "supagate-alerts"}
            if channel.sign_with:
                headers[SIGNATURE_HEADER] = sign(secrets[channel.sign_with], body, int(clock()))
            try:
                response = send(url, content=body, headers=headers)
            except Exception as exc:  # connection refused, timeout, TLS: retried
                _failed(conn, result, id_, attempts, now, redact(f"{type(exc).__name__}: {exc}", *hidden), None)
                continue
            if 200 <= response.status_code < 300:
                conn.execute("select ops.record_sent(%s)", (id_,))
                result.delivered.append(id_)
                result.log.append(f"delivered {rule} {event} to {channel_name}")
                continue
            wait = retry_after(response.headers.get("Retry-After"), now) \
                if response.status_code in RETRY_STATUSES else None
            _failed(conn, result, id_, attempts, now, f"HTTP {response.status_code} from channel {channel_name}", wait)
    finally:
        if client is not None:
            client.close()
    result.log = [redact(line, *hidden) for line in result.log]
    return result


def _failed(conn, result: DrainResult, id_: int, attempts: int, now: datetime, error: str,
            wait: timedelta | None) -> None:
    if attempts + 1 >= MAX_ATTEMPTS:
        conn.execute("select ops.record_attempt(%s, %s, 'infinity')", (id_, error))
        result.given_up.append(id_)
        result.log.append(f"gave up on notification {id_} after {attempts + 1} attempts: {error}")
        return
    delay = wait if wait is not None else backoff(attempts)
    conn.execute("select ops.record_attempt(%s, %s, %s)", (id_, error, now + delay))
    result.retrying.append(id_)
    result.log.append(f"notification {id_}: {error}; next attempt in {int(delay.total_seconds())} s")


def issue_notifications(conn, channels: dict[str, Any]) -> list[dict[str, Any]]:
    """Undelivered notifications for githubIssue channels, oldest first, for the health
    workflow's script (one issue per rule: opened on firing, commented on repeat, closed on
    resolve); it acknowledges them with `supagate ops ack` once done."""
    wanted = [name for name, channel in channels.items() if channel.type == "githubIssue"]
    rows = conn.execute("select id, rule, channel, event, payload from ops.notifications where delivered_at is null "
                        "and channel = any(%s) order by id", (wanted,)).fetchall()
    return [{"id": id_, "rule": rule, "event": event, "payload": payload, "labels": list(channels[channel].labels)}
            for id_, rule, channel, event, payload in rows]
