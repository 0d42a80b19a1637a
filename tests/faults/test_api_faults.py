"""The Management API client under injected faults, against a stateful fake API that can
apply a write and then lose its answer, fail before applying, or trickle a body byte by
byte. Invariants: no write is applied twice, the remote state converges to the desired one,
the call's time bound holds, and no secret reaches an error."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.providers.function_secrets import FunctionSecretsProvider
from supagate.supabase_api import edge_functions
from supagate.supabase_api.client import ApiError, ManagementApi, RetryPolicy
from supagate.supabase_api.function_secrets import digest

REF = "abcdefghijklmnopqrst"
TOKEN = "sbp_fault_token_0123456789"
RNG = random.Random(7)


class StatefulApi:
    """Secrets, auth settings and functions, with a queue of faults for the next writes:
    "lose" (apply, then close the connection with no answer), "fail" (503, nothing applied)."""

    def __init__(self):
        self.secrets: dict[str, str] = {}
        self.auth = {"jwt_exp": 86400}
        self.functions: dict[str, int] = {}  # slug -> version
        self.applied: list[str] = []  # every write that took effect
        self.faults: list[str] = []
        self.trickle = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, status: int, payload) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if api.trickle:
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.3)
                else:
                    self.wfile.write(body)

            def _lose(self) -> None:
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

            def do_GET(self):  # noqa: N802
                path = self.path.split("?", 1)[0]
                if path.endswith("/secrets"):
                    return self._reply(200, [{"name": n, "value": digest(v)} for n, v in api.secrets.items()])
                if path.endswith("/config/auth"):
                    return self._reply(200, api.auth)
                if "/functions/" in path:
                    slug = path.rsplit("/", 1)[1]
                    if slug in api.functions:
                        return self._reply(200, {"slug": slug, "id": slug, "version": api.functions[slug],
                                                 "verify_jwt": True})
                    return self._reply(404, {"message": "not found"})
                return self._reply(200, [])

            def _write(self, apply) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = api.faults.pop(0) if api.faults else None
                if fault == "fail":
                    return self._reply(503, {"message": "try again"})
                result = apply(body)
                if fault == "lose":
                    return self._lose()
                return self._reply(201, result)

            def do_POST(self):  # noqa: N802
                path = self.path.split("?", 1)[0]
                if path.endswith("/secrets"):
                    def upsert(body):
                        for item in json.loads(body):
                            api.secrets[item["name"]] = item["value"]
                            api.applied.append(f"secret {item['name']}")
                        return {}
                    return self._write(upsert)
                if path.endswith("/functions/deploy"):
                    slug = self.path.split("slug=", 1)[1]

                    def deploy(_body):
                        api.functions[slug] = api.functions.get(slug, 0) + 1
                        api.applied.append(f"deploy {slug}")
                        return {"slug": slug, "id": slug, "version": api.functions[slug], "verify_jwt": True}
                    return self._write(deploy)

            def do_DELETE(self):  # noqa: N802
                def remove(body):
                    for name in json.loads(body):
                        if api.secrets.pop(name, None) is not None:
                            api.applied.append(f"delete {name}")
                    return {}
                return self._write(remove)

            def do_PATCH(self):  # noqa: N802
                def patch(body):
                    api.auth.update(json.loads(body))
                    api.applied.append("auth")
                    return api.auth
                return self._write(patch)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def api():
    server = StatefulApi()
    yield server
    server.server.shutdown()


RETRY = {"attempts": 4, "timeout": 5, "total": 20, "backoff": 0.01, "max_sleep": 0.05}


def test_lost_answers_never_apply_a_secret_twice(api):
    """40 rounds of random faults on the secrets upsert: each change is applied once."""
    provider, previous = FunctionSecretsProvider(), {}
    for round_ in range(40):
        desired = {f"SECRET_{n}": f"value-{round_}-{n}" for n in RNG.sample(range(6), 3)}
        api.faults = [RNG.choice(["lose", "fail", None]) for _ in range(2)]
        api.applied.clear()
        props = {"project_ref": REF, "api_url": api.url, "allow_unlisted_api": True, "access_token": TOKEN,
                 "secrets": desired, "retry": RETRY}
        if previous:
            provider.update(f"{REF}-secrets", {**props, "secrets": previous}, props)
        else:
            provider.create(props)
        assert {k: v for k, v in api.secrets.items() if k in desired} == desired
        assert not set(api.secrets) & (set(previous) - set(desired))  # dropped names were deleted
        written = [a for a in api.applied if a.startswith("secret ")]
        assert len(written) == len(set(written)), f"round {round_}: a write was applied twice: {written}"
        previous = desired


def test_a_lost_settings_answer_is_not_sent_again(api):
    from supagate.supabase_api.project_settings import apply

    api.faults = ["lose"]
    with ManagementApi(TOKEN, api.url, RetryPolicy(**RETRY), allow_unlisted_api=True) as client:
        client.wait_healthy = lambda *a, **k: None
        apply(client, REF, {"auth": {"jwt_exp": 3600}}, {"auth": {"jwt_exp": (86400, 3600)}}, allow_restart=False)
    assert api.auth["jwt_exp"] == 3600 and api.applied == ["auth"]


def test_a_lost_deploy_answer_does_not_deploy_again(api):
    api.faults = ["lose"]
    props = {"slug": "health-check", "entrypoint": "health-check/index.ts", "verify_jwt": True,
             "files": {"health-check/index.ts": "Deno.serve(() => new Response('ok'));"}}
    with ManagementApi(TOKEN, api.url, RetryPolicy(**RETRY), allow_unlisted_api=True) as client:
        deployed = edge_functions.deploy(client, REF, props)
    assert api.applied == ["deploy health-check"] and deployed["version"] == 1


def test_the_time_bound_holds_against_a_trickling_body(api):
    api.trickle = True  # a few bytes a second: every read succeeds, the whole never arrives in time
    started = time.monotonic()
    with ManagementApi(TOKEN, api.url, RetryPolicy(attempts=5, timeout=30, total=2, backoff=0.01),
                       allow_unlisted_api=True) as client:
        with pytest.raises(ApiError) as raised:
            client.get(f"/v1/projects/{REF}/config/auth")
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, f"a 2 s bound took {elapsed:.1f} s"
    assert TOKEN not in str(raised.value)


@pytest.mark.parametrize("token", [TOKEN + "\n", " " + TOKEN, TOKEN + "\t", TOKEN[:5] + "\x00" + TOKEN[5:]])
def test_a_token_with_whitespace_or_control_characters_is_refused_unseen(api, token):
    with pytest.raises(ApiError) as raised:
        ManagementApi(token, api.url, allow_unlisted_api=True)
    assert "whitespace or control characters" in str(raised.value)
    assert TOKEN[4:] not in str(raised.value) and TOKEN[6:] not in str(raised.value)
