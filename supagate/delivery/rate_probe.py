"""`supagate verify --rate-limit`: prove a deployed function's rate limit after a deploy.

Every request carries `X-Supagate-Probe: <run>.<nonce>.<unix>.<hmac>`: HMAC-SHA256 with the
function secret RATE_LIMIT_PROBE_SECRET over the function's name, the method, the run, a
nonce of its own and the time, so the function counts it under `probe:<run>` and no real
caller's quota is touched; a captured header is good for that one request on that one
function (the database refuses a spent nonce). Phases:
  1. N sequential requests: none refused, RateLimit's remaining going down;
  2. one more: 429 with 0 < Retry-After <= the window;
  3. a fresh run, N + k requests at once over k connections: exactly N allowed (a
     per-isolate counter lets more through, and still passes a single-instance test);
  4. with a database URL: the counter holds N + k, then the probe's rows are deleted.
A phase that would straddle a window boundary waits for the next window first. At most
2N + k + 1 requests. Every failure is a sentence naming the phase and what came back.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

PROBE_HEADER = "X-Supagate-Probe"
PROBE_METHOD = "POST"


def probe_message(function: str, method: str, run: str, nonce: str, stamp: str) -> str:
    """What the HMAC covers; supagate/ops/deno/rate_limit.ts (probeMessage) checks the same text."""
    return "\n".join(("supagate-probe-v1", function, method.upper(), run, nonce, stamp))


def probe_header(secret: str, function: str, run: str, now: float, method: str = PROBE_METHOD,
                 nonce: str | None = None) -> str:
    """One request's header: a fresh nonce unless one is given (a test replaying it)."""
    stamp, nonce = str(int(now)), nonce or secrets.token_hex(12)
    mac = hmac.new(secret.encode(), probe_message(function, method, run, nonce, stamp).encode(),
                   hashlib.sha256).hexdigest()
    return f"{run}.{nonce}.{stamp}.{mac}"


def _field(header: str | None, name: str) -> int | None:
    match = re.search(rf"\b{name}=(\d+)", header or "")
    return int(match.group(1)) if match else None


@dataclass
class ProbeResult:
    function: str
    problems: list[str] = field(default_factory=list)
    requests: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def probe(url: str, function: str, limit: int, window_seconds: int, secret: str, concurrency: int = 3,
          db_url: str | None = None, post: Callable[..., Any] | None = None,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> ProbeResult:
    import httpx

    result = ProbeResult(function)
    client = None if post else httpx.Client(timeout=15.0)
    send = post or (lambda u, **kw: client.post(u, **kw))

    def hit(run: str):
        result.requests += 1
        return send(url, headers={PROBE_HEADER: probe_header(secret, function, run, clock())}, content=b"{}")

    runs: list[str] = []  # every run that reached the function: its counter rows are deleted

    def fresh_window(needed: float):
        """The first request of a phase under a new run; when the window ends too soon,
        wait and start over under another (the first one's row is cleaned up too)."""
        runs.append(secrets.token_hex(8))
        first = hit(runs[-1])
        left = _field(first.headers.get("RateLimit"), "t")
        if left is not None and left < needed and left <= window_seconds:
            result.log.append(f"waiting {left + 1} s for the next window")
            sleep(left + 1)
            runs.append(secrets.token_hex(8))
            first = hit(runs[-1])
        return runs[-1], first

    try:
        needed = 5 + limit * 0.2
        run, first = fresh_window(needed)
        answers = [first] + [hit(run) for _ in range(limit - 1)]
        refused = [i + 1 for i, a in enumerate(answers) if a.status_code == 429]
        if refused:
            result.problems.append(f"phase 1: request {refused[0]} of {limit} was refused (429) though the limit is "
                                   f"{limit} per {window_seconds} s")
        remaining = [_field(a.headers.get("RateLimit"), "r") for a in answers]
        if None in remaining:
            result.problems.append("phase 1: an answer had no RateLimit header (\"default\";r=<remaining>;t=<reset>)")
        elif any(b >= a for a, b in zip(remaining, remaining[1:])):
            result.problems.append(f"phase 1: RateLimit remaining did not go down: {remaining}")
        extra = hit(run)
        if extra.status_code != 429:
            result.problems.append(f"phase 2: request {limit + 1} got {extra.status_code}, not 429: the limit "
                                   "does not hold")
        else:
            retry = extra.headers.get("Retry-After")
            if retry is None or not retry.isdigit() or not 0 < int(retry) <= window_seconds:
                result.problems.append(f"phase 2: the 429 had Retry-After {retry!r}, not seconds in 1..{window_seconds}")
        run, first = fresh_window(needed)
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            rest = list(pool.map(lambda _: hit(run), range(limit + concurrency - 1)))
        statuses = [first.status_code] + [a.status_code for a in rest]
        allowed = sum(s != 429 for s in statuses)
        if allowed != limit:
            result.problems.append(f"phase 3: {limit + concurrency} requests at once, {allowed} allowed instead of "
                                   f"{limit}: the counter is not shared (per-isolate memory?)")
        if db_url:
            _cross_check(db_url, function, run, limit + concurrency, result)
    finally:
        if client is not None:
            client.close()
        if db_url and runs:
            _clean(db_url, function, runs)
    return result


def _cross_check(db_url: str, function: str, run: str, expected: int, result: ProbeResult) -> None:
    from supagate.postgres.connect import connect

    with connect(db_url) as conn:
        row = conn.execute("select sum(request_count) from ops.rate_counters where key = %s",
                           (f"{function}:probe:{run}",)).fetchone()
    counted = int(row[0] or 0)
    if counted != expected:
        result.problems.append(f"phase 4: the database counted {counted} probe requests, not {expected}")


def _clean(db_url: str, function: str, runs: list[str]) -> None:
    from supagate.postgres.connect import connect

    with connect(db_url) as conn:
        conn.execute("delete from ops.rate_counters where key = any(%s)",
                     ([f"{function}:probe:{r}" for r in runs],))
