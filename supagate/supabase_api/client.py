"""A small client for the Supabase Management API (https://api.supabase.com/v1).

Bearer token from a stack secret; a timeout per request; retries with exponential backoff
on 429 and 5xx (honouring `Retry-After`) and on connection errors and timeouts, within a
bounded total time. Errors name the method, the endpoint and the status, and never carry
the token or a request body (which may hold secret values).
"""

from __future__ import annotations

from supagate.errors import Failed

import email.utils
import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import httpx

from supagate.secrets import redact
from supagate.supabase_api.deadline import run_until
from supagate.supabase_api.endpoint import DEFAULT_URL, refusal

RETRY_STATUSES = {429, 500, 502, 503, 504}


class ApiError(Failed):
    """A request that failed for good; `status` is None when no response came back."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # at most this many tries of one request
    timeout: float = 30.0  # seconds per try (connect, read, write)
    total: float = 120.0  # seconds for all tries of one request, sleeps included
    backoff: float = 0.5  # first sleep; doubles each try, with jitter
    max_sleep: float = 30.0


class ManagementApi:
    """Use as a context manager; one per provider call (providers hold no client)."""

    def __init__(self, token: str, base_url: str = DEFAULT_URL, retry: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], None] = time.sleep, secrets: tuple[str, ...] = (),
                 allow_unlisted_api: bool = False):
        refused = refusal(base_url, allow_unlisted_api)
        if refused:  # before the token goes anywhere
            raise ApiError(f"managementApiUrl: {refused}.")
        if not token:
            raise ApiError("no Supabase access token\nSet it with "
                           "`pulumi config set --secret supabaseAccessToken sbp_...` (Account > Access Tokens).")
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in token):
            # Never echoed: a header library would print it, escaped, in its own error.
            raise ApiError("the Supabase access token contains whitespace or control characters (a pasted line "
                           "end?)\nSet it again without them: `pulumi config set --secret supabaseAccessToken sbp_...`.")
        self._token = token
        self._secrets = tuple(s for s in (token, *secrets) if s)
        self.retry, self._sleep = retry, sleep
        self._call = threading.local()  # the deadline of the call under way on this thread
        # No connection is kept alive: each try opens the socket its deadline can cut.
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=retry.timeout,
                                  limits=httpx.Limits(max_keepalive_connections=0),
                                  headers={"Authorization": f"Bearer {token}", "User-Agent": "supagate"})

    def __enter__(self) -> "ManagementApi":
        return self

    def __exit__(self, *exc) -> None:
        self._http.close()

    # ------------------------------------------------------------ transport

    def request(self, method: str, path: str, *, json_body: Any = None, params: dict | None = None,
                files: list | None = None, data: dict | None = None, ok: tuple[int, ...] = (),
                applied: Callable[[], bool] | None = None) -> Any:
        """The decoded JSON of a 2xx response (None when empty). `ok` lists other statuses
        that are answers, not errors (404 when asking whether something exists).

        `retry.total` bounds the whole call, slow answers, sleeps and read-backs included,
        and is enforced when it runs out (see deadline.py). A write whose answer was lost (no
        response, or a 5xx after the request went out) may have been applied: before sending
        it again, `applied()` reads the state back within the same deadline, and when it says
        the write took effect the call returns None instead of writing twice."""
        outer = getattr(self._call, "deadline", None)  # a read-back runs inside its write's call
        self._call.deadline = outer if outer is not None else time.monotonic() + self.retry.total
        try:
            return self._request(f"{method} {path}", self._call.deadline, method, path, applied, ok,
                                 dict(json=json_body, params=params, files=files, data=data))
        finally:
            self._call.deadline = outer

    def _request(self, where: str, deadline: float, method: str, path: str, applied: Callable[[], bool] | None,
                 ok: tuple[int, ...], content: dict) -> Any:
        last = "no attempt made"
        for attempt in range(1, self.retry.attempts + 1):
            if attempt > 1 and applied is not None and self._read_back(where, applied):
                return None  # the lost answer's write took effect
            try:
                response = run_until(deadline, lambda trace: self._http.request(
                    method, path, timeout=min(self.retry.timeout, max(deadline - time.monotonic(), 0.001)),
                    extensions={"trace": trace}, **content))
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{type(exc).__name__.replace('Exception', '')}: {self._clean(str(exc)) or 'no response'}"
                delay = self._delay(attempt, None)
            else:
                if response.status_code < 300 or response.status_code in ok:
                    return self._decode(response, where)
                if response.status_code not in RETRY_STATUSES:
                    raise ApiError(f"failed to call {where}: HTTP {response.status_code} {self._detail(response)}"
                                   f"\n{_hint(response.status_code)}", response.status_code)
                last = f"HTTP {response.status_code} {self._detail(response)}"
                delay = self._delay(attempt, response.headers.get("Retry-After"))
            if attempt == self.retry.attempts or time.monotonic() + delay >= deadline:
                break
            self._sleep(delay)
        raise ApiError(f"failed to call {where} after {attempt} attempt(s) within the call's "
                       f"{self.retry.total:g} s: {last}\nThe Supabase API is unavailable or rate limited; nothing "
                       "was recorded as applied. Run again later.")

    def _read_back(self, where: str, applied: Callable[[], bool]) -> bool:
        """Whether the write `where`, whose answer was lost, took effect. A failed read-back
        is reported as the failure of the write the user asked for."""
        try:
            return applied()
        except ApiError as exc:
            reason = str(exc).splitlines()[0].removeprefix("failed to call ")
            raise ApiError(f"failed to call {where}: its answer was lost, and reading the state back to see "
                           f"whether it took effect failed ({reason})\nIt may have been applied; nothing was "
                           "recorded as applied. Run again: the state is read before anything is sent.",
                           exc.status) from None

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            seconds = _retry_after_seconds(retry_after)
            if seconds is not None:
                return min(max(seconds, 0.0), self.retry.max_sleep)
        base = self.retry.backoff * (2 ** (attempt - 1))
        return min(base * (0.5 + random.random() / 2), self.retry.max_sleep)

    def _decode(self, response: httpx.Response, where: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(f"failed to call {where}: HTTP {response.status_code} with a body that is not JSON "
                           f"({response.headers.get('content-type', 'no content type')})\n"
                           "Check the API URL (managementApiUrl) points at the Supabase Management API.",
                           response.status_code) from None

    def _detail(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = response.text
        message = body
        if isinstance(body, dict):
            message = body.get("message") or body.get("error") or body.get("detail") or ""
        return self._clean(str(message))[:300]

    def _clean(self, text: str) -> str:
        return redact(text, *self._secrets)

    # ------------------------------------------------------------ endpoints

    def get(self, path: str, **kwargs) -> Any:
        return self.request("GET", path, **kwargs)

    def health(self, ref: str, services: list[str]) -> list[dict]:
        return self.get(f"/v1/projects/{ref}/health", params={"services": services}) or []

    def wait_healthy(self, ref: str, services: list[str], timeout: float = 300.0, interval: float = 5.0) -> None:
        """Wait (bounded) until every service reports ACTIVE_HEALTHY."""
        deadline = time.monotonic() + timeout
        while True:
            states = {s.get("name"): s.get("status") or ("ACTIVE_HEALTHY" if s.get("healthy") else "UNHEALTHY")
                      for s in self.health(ref, services)}
            waiting = sorted(name for name in services if states.get(name) != "ACTIVE_HEALTHY")
            if not waiting:
                return
            if time.monotonic() + interval > deadline:
                raise ApiError(f"failed to change project {ref}: services not healthy after {timeout:.0f} s: "
                               + ", ".join(f"{n} ({states.get(n, 'no answer')})" for n in waiting)
                               + "\nNothing was changed. Check the project in the dashboard and run again.")
            self._sleep(interval)


def _retry_after_seconds(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own backoff


def _hint(status: int) -> str:
    return {
        401: "The access token is invalid or expired: create a new one (Account > Access Tokens) and "
             "`pulumi config set --secret supabaseAccessToken ...`.",
        403: "The token's owner may not change this project: use a token of an organisation owner or admin.",
        404: "Check projectRef: no such project, or the token cannot see it.",
        422: "The API refused the values: check the setting named above against the Management API docs.",
    }.get(status, "Nothing was recorded as applied; fix the cause and run again.")


def from_inputs(props: dict[str, Any], secrets: tuple[str, ...] = ()) -> ManagementApi:
    """The client a provider method opens from its resource's inputs (providers hold none)."""
    retry = RetryPolicy(**(props.get("retry") or {}))
    return ManagementApi(props.get("access_token") or "", props.get("api_url") or DEFAULT_URL, retry,
                         secrets=secrets, allow_unlisted_api=bool(props.get("allow_unlisted_api")))
