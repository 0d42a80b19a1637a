"""The client and providers against a loopback server that misbehaves on purpose: 429
with Retry-After, 500, 503, answers slower than the timeout, malformed JSON. Retries
happen as specified, the final error is clear, nothing is recorded as applied, and the
token and secret values never reach an error, a log line or a plain output."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.providers.function_secrets import FunctionSecretsProvider
from components.providers.project_settings import ProjectSettingsProvider
from supagate.supabase_api.client import ApiError, ManagementApi, RetryPolicy
from supagate.supabase_api.project_settings import SettingsApplyError

REF = "abcdefghijklmnopqrst"
TOKEN = "sbp_fault_token_do_not_leak_42"
SECRET_VALUE = "whsec_fault_value_do_not_leak_17"


class FakeApi:
    """Answers from a script: path -> queue of (status, body, headers, delay)."""

    def __init__(self):
        self.script: dict[str, deque] = {}
        self.requests: list[tuple[str, str, bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?", 1)[0]
                fake.requests.append((self.command, path, body))
                queue = fake.script.get(f"{self.command} {path}")
                status, payload, headers, delay = queue.popleft() if queue and len(queue) > 1 else (
                    queue[0] if queue else (404, {"message": "not scripted"}, {}, 0))
                time.sleep(delay)
                content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for key, value in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, method: str, path: str, *answers) -> None:
        self.script[f"{method} {path}"] = deque(
            a if len(a) == 4 else (*a, *({}, 0)[len(a) - 2:]) for a in answers)

    def sent(self, method: str | None = None) -> list[str]:
        return [f"{m} {p}" for m, p, _ in self.requests if method is None or m == method]


@pytest.fixture
def fake():
    server = FakeApi()
    yield server
    server.server.shutdown()


def client(fake, sleeps: list | None = None, **retry) -> ManagementApi:
    policy = RetryPolicy(**{"attempts": 4, "timeout": 2.0, "total": 30.0, "backoff": 0.2, **retry})
    return ManagementApi(TOKEN, fake.url, policy, sleep=(sleeps.append if sleeps is not None else time.sleep),
                         allow_unlisted_api=True,
                         secrets=(SECRET_VALUE,))


AUTH = f"/v1/projects/{REF}/config/auth"


def test_429_waits_as_long_as_retry_after_says(fake):
    fake.on("GET", AUTH, (429, {"message": "slow down"}, {"Retry-After": "7"}, 0), (200, {"jwt_exp": 3600}))
    sleeps: list[float] = []
    with client(fake, sleeps) as api:
        assert api.get(AUTH) == {"jwt_exp": 3600}
    assert sleeps == [7.0]
    assert fake.sent() == [f"GET {AUTH}"] * 2


def test_5xx_backs_off_exponentially_then_succeeds(fake):
    fake.on("GET", AUTH, (500, {"message": "boom"}), (503, {"message": "busy"}), (200, {"jwt_exp": 60}))
    sleeps: list[float] = []
    with client(fake, sleeps, backoff=1.0) as api:
        assert api.get(AUTH)["jwt_exp"] == 60
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_persistent_503_gives_a_clear_error_after_the_attempts(fake):
    fake.on("GET", AUTH, (503, {"message": "maintenance"}))
    with client(fake, []) as api, pytest.raises(ApiError) as raised:
        api.get(AUTH)
    message = str(raised.value)
    assert f"failed to call GET {AUTH} after 4 attempt(s)" in message and "HTTP 503 maintenance" in message
    assert "nothing was recorded as applied" in message
    assert len(fake.requests) == 4


def test_total_time_bounds_the_retries(fake):
    fake.on("GET", AUTH, (429, {}, {"Retry-After": "20"}, 0))
    with client(fake, [], total=5.0) as api, pytest.raises(ApiError):
        api.get(AUTH)
    assert len(fake.requests) == 1  # a 20 s wait would pass the 5 s budget: stop now


def test_slow_answers_time_out_and_are_retried(fake):
    fake.on("GET", AUTH, (200, {"jwt_exp": 1}, {}, 1.5), (200, {"jwt_exp": 2}))
    with client(fake, [], timeout=0.5) as api:
        assert api.get(AUTH) == {"jwt_exp": 2}
    fake.on("GET", AUTH, (200, {"jwt_exp": 1}, {}, 1.5))
    started = time.monotonic()
    with client(fake, [], timeout=0.3, attempts=2) as api, pytest.raises(ApiError) as raised:
        api.get(AUTH)
    assert "ReadTimeout" in str(raised.value) and time.monotonic() - started < 5


def test_malformed_json_is_an_error_not_a_value(fake):
    fake.on("GET", AUTH, (200, b"{not json", {"Content-Type": "application/json"}, 0))
    with client(fake, []) as api, pytest.raises(ApiError) as raised:
        api.get(AUTH)
    assert "not JSON" in str(raised.value) and len(fake.requests) == 1


def test_4xx_is_not_retried_and_says_what_to_do(fake):
    fake.on("GET", AUTH, (401, {"message": "invalid token"}))
    with client(fake, []) as api, pytest.raises(ApiError) as raised:
        api.get(AUTH)
    assert raised.value.status == 401 and "Access Tokens" in str(raised.value) and len(fake.requests) == 1


def _settings_props(fake, **areas) -> dict:
    return {"project_ref": REF, "api_url": fake.url, "allow_unlisted_api": True, "access_token": TOKEN,
            "allow_restart": False,
            "retry": {"attempts": 2, "timeout": 2.0, "total": 10.0, "backoff": 0.01}, "health_timeout": 2, **areas}


HEALTHY = [{"name": s, "status": "ACTIVE_HEALTHY", "healthy": True} for s in ("db", "auth", "rest")]


def test_settings_send_only_declared_keys_after_waiting_for_health(fake):
    base = f"/v1/projects/{REF}"
    fake.on("GET", AUTH, (200, {"jwt_exp": 86400, "site_url": "https://old.example", "smtp_pass": "x"}))
    fake.on("GET", f"{base}/health", (200, [{"name": "auth", "status": "COMING_UP"}]), (200, HEALTHY))
    fake.on("PATCH", AUTH, (200, {}))
    props = _settings_props(fake, auth={"jwt_exp": 3600, "site_url": "https://old.example"}, health_interval=0.05)
    ProjectSettingsProvider().create(props)
    patches = [json.loads(body) for method, path, body in fake.requests if method == "PATCH"]
    assert patches == [{"jwt_exp": 3600, "site_url": "https://old.example"}]  # smtp_pass never touched
    assert fake.sent().count(f"GET {base}/health") == 2  # waited for auth to come up


def test_services_that_never_come_up_stop_the_change_before_it_is_sent(fake):
    base = f"/v1/projects/{REF}"
    fake.on("GET", AUTH, (200, {"jwt_exp": 86400}))
    fake.on("GET", f"{base}/health", (200, [{"name": "auth", "status": "UNHEALTHY"}]))
    with pytest.raises(ApiError) as raised:
        ProjectSettingsProvider().create(_settings_props(fake, auth={"jwt_exp": 3600}, health_interval=0.2))
    assert "auth (UNHEALTHY)" in str(raised.value) and "Nothing was changed" in str(raised.value)
    assert fake.sent("PATCH") == []


def test_a_restart_is_refused_before_any_change_is_sent(fake):
    base = f"/v1/projects/{REF}"
    fake.on("GET", f"{base}/config/database/postgres", (200, {"max_connections": 60, "work_mem": "4MB"}))
    props = _settings_props(fake, postgres={"max_connections": 200, "work_mem": "8MB"})
    with pytest.raises(SettingsApplyError) as raised:
        ProjectSettingsProvider().create(props)
    assert "max_connections" in str(raised.value) and "allowRestart" in str(raised.value)
    assert fake.sent("PUT") == [] and fake.sent("PATCH") == []


def test_a_failing_area_stops_the_update_and_records_nothing(fake):
    base = f"/v1/projects/{REF}"
    fake.on("GET", AUTH, (200, {"jwt_exp": 86400}))
    fake.on("GET", f"{base}/postgrest", (200, {"db_schema": "public", "max_rows": 1000}))
    fake.on("GET", f"{base}/health", (200, HEALTHY))
    fake.on("PATCH", AUTH, (500, {"message": f"internal error for token {TOKEN}"}))
    props = _settings_props(fake, auth={"jwt_exp": 3600}, postgrest={"max_rows": 500})
    provider = ProjectSettingsProvider()
    with pytest.raises(SettingsApplyError) as raised:
        provider.update(REF, {**props, "auth": {"jwt_exp": 86400}}, props)
    assert TOKEN not in str(raised.value) and "***" in str(raised.value)
    # It says exactly what was and was not applied, and stops there.
    assert "Applied: nothing. Not applied: auth, postgrest." in str(raised.value)
    # The update raised, so the engine keeps the old state: nothing is recorded as applied.
    assert f"PATCH {base}/postgrest" not in fake.sent()


def test_secret_values_and_token_never_reach_errors_or_logs(fake, capsys):
    base = f"/v1/projects/{REF}/secrets"
    fake.on("GET", base, (200, []))
    echo = {"message": f"rejected {SECRET_VALUE} with Bearer {TOKEN}"}
    fake.on("POST", base, (400, echo))
    props = {"project_ref": REF, "api_url": fake.url, "allow_unlisted_api": True, "access_token": TOKEN,
             "retry": {"attempts": 1, "timeout": 2.0, "total": 5.0}, "secrets": {"TERRA_WEBHOOK_SECRET": SECRET_VALUE}}
    provider = FunctionSecretsProvider()
    with pytest.raises(ApiError) as raised:
        provider.create(props)
    provider.diff("x", {**props, "secrets": {"TERRA_WEBHOOK_SECRET": "old"}}, props)
    captured = capsys.readouterr()
    for text in (str(raised.value), repr(raised.value), captured.out, captured.err):
        assert SECRET_VALUE not in text and TOKEN not in text
    # The value only ever travelled in the upsert body.
    posted = [json.loads(body) for method, _, body in fake.requests if method == "POST"]
    assert posted == [[{"name": "TERRA_WEBHOOK_SECRET", "value": SECRET_VALUE}]]
