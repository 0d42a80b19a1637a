"""Rate limits that hold across isolates, and the probe that proves it after a deploy: the
SQL counter under 20 concurrent sessions; the shared Deno helper served by real `deno`
behind a gateway that appends the client's address (tests/ops/edge_gateway.py) passes the
probe, which spends no real caller's quota; a probe header binds one request to one
function and method (replayed, or sent elsewhere, it buys nothing); an in-memory limiter in
two processes behind a round-robin proxy, a 429 without Retry-After, a 500 instead of a
429 and an off-by-one limit each fail it."""

from __future__ import annotations

import itertools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from supagate.delivery.rate_probe import probe, probe_header
from tests.loopback import LoopbackServer, QuietHandler, serve_deno
from tests.ops.edge_gateway import PROBE_SECRET, client, counters, edge, policy

LIMIT, WINDOW = 5, 60


@pytest.fixture(scope="module")
def functions_url(ops_cluster, tmp_path_factory):
    with edge(ops_cluster.url, tmp_path_factory.mktemp("edge")) as url:
        yield url


def test_the_counter_is_atomic_across_sessions(ops_url):
    policy(ops_url, "atomic-fn", limit=7)

    def one(_):
        with psycopg.connect(ops_url, autocommit=True) as conn:
            return conn.execute("select allowed from ops.hit_rate_limit('atomic-fn', 'ip:9.9.9.9')").fetchone()[0]

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(one, range(20)))
    assert answers.count(True) == 7
    with psycopg.connect(ops_url) as conn:  # 20 racing first hits of one key hold one place of the window
        assert conn.execute("select keys from ops.rate_windows where function = 'atomic-fn'").fetchone() == (1,)


IN_MEMORY = """// The limiter users write first: a Map in this isolate's memory.
const counts = new Map<string, number>();
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT")), onListen() {} }, (req) => {
  const key = req.headers.get("x-supagate-probe")?.split(".")[0] ?? "anon";
  const n = (counts.get(key) ?? 0) + 1;
  counts.set(key, n);
  const headers = { "ratelimit": `"default";r=${Math.max(5 - n, 0)};t=50`, "retry-after": "50" };
  return new Response(n > 5 ? "slow down" : "ok", { status: n > 5 ? 429 : 202, headers });
});
"""


def test_the_shared_helper_passes_the_probe_and_spares_real_callers(ops_url, functions_url):
    policy(ops_url, "probe-fn", LIMIT, window=WINDOW)
    with client("127.0.0.1") as caller:
        real = caller.post(f"{functions_url}/probe-fn")
        assert real.status_code == 202 and real.headers["ratelimit-policy"] == '"default";q=5;w=60'
        # A forged probe header is ignored: it counts against the caller's own address.
        forged = caller.post(f"{functions_url}/probe-fn",
                             headers={"X-Supagate-Probe": probe_header("wrong-secret", "probe-fn", "abcdef0123",
                                                                       time.time())})
        assert forged.status_code == 202
    # The real caller's two requests, under the address the gateway saw.
    assert counters(ops_url, "probe-fn") == {"probe-fn:ip:127.0.0.1": 2}
    result = probe(f"{functions_url}/probe-fn", "probe-fn", LIMIT, WINDOW, PROBE_SECRET, concurrency=3, db_url=ops_url)
    assert result.ok, (result.problems, result.log)
    assert result.requests <= 2 * LIMIT + 3 + 1 + 2  # bounded (+2 if a window boundary forced a restart)
    # The probe's rows are gone; the caller's stay, unless the probe waited for a new window
    # (whose first key clears the ended ones).
    waited = any("waiting" in line for line in result.log)
    assert counters(ops_url, "probe-fn") == ({} if waited else {"probe-fn:ip:127.0.0.1": 2})


def test_a_probe_header_is_good_once_on_its_own_function_and_method(ops_url, functions_url):
    """Attack: a probe header captured from a log was good for 60 s on any function, as
    often as one liked. Now the signature covers function, method, nonce and time: a replay
    is refused (429) in every isolate, and a header signed for another function or method
    buys nothing (the request counts against the sender's own address)."""
    for fn in ("bound-a", "bound-b"):
        policy(ops_url, fn, limit=3)
    header = probe_header(PROBE_SECRET, "bound-a", "run0000001", time.time())
    with client("127.0.0.4") as attacker:
        first = attacker.post(f"{functions_url}/bound-a", headers={"X-Supagate-Probe": header})
        replays = [attacker.post(f"{functions_url}/bound-a", headers={"X-Supagate-Probe": header}).status_code
                   for _ in range(3)]
        elsewhere = attacker.post(f"{functions_url}/bound-b", headers={"X-Supagate-Probe": header})
        as_get = attacker.get(f"{functions_url}/bound-a", headers={
            "X-Supagate-Probe": probe_header(PROBE_SECRET, "bound-a", "run0000001", time.time(), method="POST")})
        stale = attacker.post(f"{functions_url}/bound-a", headers={
            "X-Supagate-Probe": probe_header(PROBE_SECRET, "bound-a", "run0000001", time.time() - 61)})
    assert first.status_code == 202 and replays == [429, 429, 429]
    assert elsewhere.status_code == 202 and as_get.status_code == 202 and stale.status_code == 202
    assert counters(ops_url, "bound-a") == {"bound-a:probe:run0000001": 1, "bound-a:ip:127.0.0.4": 2}
    assert counters(ops_url, "bound-b") == {"bound-b:ip:127.0.0.4": 1}
    # The safe twin: fresh headers of the same run each count once under the run's key.
    with client("127.0.0.4") as prober:
        fresh = [prober.post(f"{functions_url}/bound-a", headers={
            "X-Supagate-Probe": probe_header(PROBE_SECRET, "bound-a", "run0000001", time.time())}).status_code
            for _ in range(3)]
    assert fresh == [202, 202, 429]  # the run's quota: 3, one spent above


def test_a_phase_restarted_at_a_window_boundary_leaves_no_probe_rows(ops_url):
    """The first answer says the window ends in 2 s: the probe waits, starts over under a
    new run, and still deletes the abandoned run's counter row (it once stayed)."""
    policy(ops_url, "boundary-fn", LIMIT, window=WINDOW)
    waits, answers = [], itertools.count()

    def post(url, headers, content):  # the function's counting, straight against ops.hit_rate_limit
        run, nonce = headers["X-Supagate-Probe"].split(".")[:2]
        with psycopg.connect(ops_url, autocommit=True) as conn:
            allowed, remaining, reset_at, _, window = conn.execute(
                "select * from ops.hit_rate_limit('boundary-fn', %s, %s)", (f"probe:{run}", nonce)).fetchone()
        left = 2 if next(answers) == 0 else window
        return httpx.Response(202 if allowed else 429, headers={
            "RateLimit": f'"default";r={remaining};t={left}', **({} if allowed else {"Retry-After": str(left)})})

    result = probe("http://function.invalid", "boundary-fn", LIMIT, WINDOW, PROBE_SECRET, concurrency=3,
                   db_url=ops_url, post=post, sleep=waits.append)
    assert result.ok, result.problems
    assert waits == [3] and any("waiting" in line for line in result.log)
    with psycopg.connect(ops_url) as conn:
        assert conn.execute("select count(*) from ops.rate_counters where key like 'boundary-fn:%'").fetchone() == (0,)


def test_an_in_memory_limiter_behind_two_isolates_fails_the_probe(tmp_path):
    upstreams = [serve_deno(tmp_path, IN_MEMORY, {}, f"isolate{i}") for i in range(2)]
    turn = itertools.cycle([u for _, u in upstreams])

    class RoundRobin(QuietHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = httpx.post(next(turn), content=body, headers={k: v for k, v in self.headers.items()
                                                                 if k.lower() != "host"})
            self.send_response(answer.status_code)
            for name in ("ratelimit", "retry-after"):
                if name in answer.headers:
                    self.send_header(name, answer.headers[name])
            self.end_headers()

    proxy = LoopbackServer(RoundRobin)
    try:
        result = probe(proxy.url, "probe-fn", LIMIT, WINDOW, PROBE_SECRET, concurrency=3)
    finally:
        proxy.close()
        for proc, _ in upstreams:
            proc.kill()
    assert not result.ok
    assert any(p.startswith(("phase 2", "phase 3")) for p in result.problems), result.problems


def _fake(mode: str) -> LoopbackServer:
    """A correct fixed-window limiter per probe nonce, broken one way."""
    counts: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(QuietHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            nonce = (self.headers.get("X-Supagate-Probe") or "x").split(".")[0]
            with lock:
                counts[nonce] = counts.get(nonce, 0) + 1
                n = counts[nonce]
            allowed_up_to = LIMIT + 1 if mode == "off-by-one" else LIMIT
            refused = n > allowed_up_to
            self.send_response((500 if mode == "500" else 429) if refused else 202)
            self.send_header("RateLimit", f'"default";r={max(allowed_up_to - n, 0)};t=50')
            if refused and mode != "no-retry-after":
                self.send_header("Retry-After", "50")
            self.end_headers()

    return LoopbackServer(Handler)


@pytest.mark.parametrize("mode, phase", [("no-retry-after", "phase 2: the 429 had Retry-After None"),
                                         ("500", "phase 2: request 6 got 500, not 429"),
                                         ("off-by-one", "phase 2: request 6 got 202, not 429")])
def test_broken_limiters_fail_the_probe(mode, phase):
    server = _fake(mode)
    try:
        result = probe(server.url, "probe-fn", LIMIT, WINDOW, PROBE_SECRET, concurrency=3)
    finally:
        server.close()
    assert any(p.startswith(phase) for p in result.problems), result.problems
    if mode == "off-by-one":
        assert any(p.startswith("phase 3:") and "6 allowed instead of 5" in p for p in result.problems)


def test_verify_rate_limit_proves_the_stacks_limit(ops_url, functions_url):
    """The command the deploy runs: the test app's staging stack declares webhook-terra at
    100 per minute with probe: true; the function is served locally and found by --functions-url."""
    from tests.cli.test_cli import supagate
    from tests.conftest import APP

    policy(ops_url, "webhook-terra", limit=100, window=60)
    done = supagate("verify", "--stack", "staging", "--stack-file", str(APP / "Pulumi.staging.yaml"),
                    "--no-health", "--rate-limit", "--functions-url", functions_url, "--format", "json",
                    env={"SUPABASE_DB_URL": ops_url, "RATE_LIMIT_PROBE_SECRET": PROBE_SECRET})
    missing = supagate("verify", "--stack", "staging", "--stack-file", str(APP / "Pulumi.staging.yaml"),
                       "--no-health", "--rate-limit", "--functions-url", functions_url,
                       env={"SUPABASE_DB_URL": ops_url, "RATE_LIMIT_PROBE_SECRET": ""})
    check = next(c for c in json.loads(done.stdout)["checks"] if c["check"] == "rate-limit:webhook-terra")
    assert check["ok"] is True and "100 per 60 s holds" in check["detail"]
    assert missing.returncode == 2 and "needs RATE_LIMIT_PROBE_SECRET" in missing.stderr
    assert PROBE_SECRET not in done.stdout + done.stderr
