"""Rate limits that hold across isolates, and the probe that proves it after a deploy: the
SQL counter under 20 concurrent sessions; the shared Deno helper served by real `deno` on
loopback (its Data API call answered by a PostgREST-shaped shim over the embedded
database) passes the probe, which spends no real caller's quota; an in-memory limiter in
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
from tests.conftest import ROOT
from tests.loopback import LoopbackServer, QuietHandler, serve_deno

SERVICE_KEY = "service-role-key-for-tests"
PROBE_SECRET = "probe-secret-7f3a"
LIMIT, WINDOW = 5, 60


def _policy(url: str, function: str, limit: int = LIMIT, window: int = WINDOW) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into ops.rate_limit_policies (function, max_requests, window_seconds, probe) "
                     "values (%s, %s, %s, true) on conflict (function) do update set max_requests = excluded.max_requests,"
                     " window_seconds = excluded.window_seconds", (function, limit, window))


def test_the_counter_is_atomic_across_sessions(ops_url):
    _policy(ops_url, "atomic-fn", limit=7)

    def one(_):
        with psycopg.connect(ops_url, autocommit=True) as conn:
            return conn.execute("select allowed from ops.hit_rate_limit('atomic-fn', 'ip:9.9.9.9')").fetchone()[0]

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(one, range(20)))
    assert answers.count(True) == 7


def postgrest_shim(db_url: str) -> LoopbackServer:
    """/rest/v1/rpc/supagate_hit_rate_limit as PostgREST answers it, for the service key only."""
    class Handler(QuietHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != "/rest/v1/rpc/supagate_hit_rate_limit" or self.headers.get("apikey") != SERVICE_KEY:
                self.send_response(401)
                self.end_headers()
                return
            with psycopg.connect(db_url, autocommit=True) as conn:
                row = conn.execute("select allowed, remaining, reset_at, max_requests, window_seconds "
                                   "from public.supagate_hit_rate_limit(%s, %s)",
                                   (body["p_function"], body["p_subject"])).fetchone()
            self.send_json(200, [{"allowed": row[0], "remaining": row[1], "reset_at": row[2].isoformat(),
                                  "max_requests": row[3], "window_seconds": row[4]}])

    return LoopbackServer(Handler)


SHARED = """import { rateLimit } from "%s";
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT")), onListen() {} }, async (req) => {
  const limited = await rateLimit(req, "probe-fn");
  if (limited instanceof Response) return limited;
  return new Response("ok", { status: 202, headers: limited });
});
"""
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


def test_the_shared_helper_passes_the_probe_and_spares_real_callers(ops_url, tmp_path):
    _policy(ops_url, "probe-fn")
    shim = postgrest_shim(ops_url)
    env = {"SUPABASE_URL": shim.url, "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY, "RATE_LIMIT_PROBE_SECRET": PROBE_SECRET}
    proc, url = serve_deno(tmp_path, SHARED % (ROOT / "supagate" / "ops" / "deno" / "rate_limit.ts").as_uri(), env,
                           "shared")
    try:
        real = httpx.post(url, headers={"x-forwarded-for": "203.0.113.9"})
        assert real.status_code == 202 and real.headers["ratelimit-policy"] == '"default";q=5;w=60'
        # A forged probe header is ignored: it counts against the caller's own address.
        forged = httpx.post(url, headers={"x-forwarded-for": "203.0.113.9",
                                          "X-Supagate-Probe": probe_header("wrong-secret", "abcdef0123", time.time())})
        assert forged.status_code == 202
        result = probe(url, "probe-fn", LIMIT, WINDOW, PROBE_SECRET, concurrency=3, db_url=ops_url)
    finally:
        proc.kill()
        shim.close()
    assert result.ok, result.problems
    assert result.requests <= 2 * LIMIT + 3 + 1 + 2  # bounded (+2 if a window boundary forced a restart)
    with psycopg.connect(ops_url, autocommit=True) as conn:
        keys = dict(conn.execute("select key, sum(request_count) from ops.rate_counters where key like 'probe-fn:%' "
                                 "group by key").fetchall())
    assert keys == {"probe-fn:ip:203.0.113.9": 2}  # the real caller's two requests; the probe's rows are gone


def test_a_phase_restarted_at_a_window_boundary_leaves_no_probe_rows(ops_url):
    """The first answer says the window ends in 2 s: the probe waits, starts over under a
    new nonce, and still deletes the abandoned nonce's counter row (it once stayed)."""
    _policy(ops_url, "boundary-fn")
    waits, answers = [], itertools.count()

    def post(url, headers, content):  # the function's counting, straight against ops.hit_rate_limit
        nonce = headers["X-Supagate-Probe"].split(".")[0]
        with psycopg.connect(ops_url, autocommit=True) as conn:
            allowed, remaining, reset_at, _, window = conn.execute(
                "select * from ops.hit_rate_limit('boundary-fn', %s)", (f"probe:{nonce}",)).fetchone()
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


def test_verify_rate_limit_proves_the_stacks_limit(ops_url, tmp_path):
    """The command the deploy runs: the test app's staging stack declares webhook-terra at
    100 per minute with probe: true; the function is served locally and found by --functions-url."""
    from tests.cli.test_cli import supagate
    from tests.conftest import APP

    _policy(ops_url, "webhook-terra", limit=100, window=60)
    shim = postgrest_shim(ops_url)
    env = {"SUPABASE_URL": shim.url, "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY, "RATE_LIMIT_PROBE_SECRET": PROBE_SECRET}
    source = (SHARED % (ROOT / "supagate" / "ops" / "deno" / "rate_limit.ts").as_uri()).replace('"probe-fn"',
                                                                                                '"webhook-terra"')
    proc, url = serve_deno(tmp_path, source, env, "terra")
    try:
        done = supagate("verify", "--stack", "staging", "--stack-file", str(APP / "Pulumi.staging.yaml"),
                        "--no-health", "--rate-limit", "--functions-url", url, "--format", "json",
                        env={"SUPABASE_DB_URL": ops_url, "RATE_LIMIT_PROBE_SECRET": PROBE_SECRET})
        missing = supagate("verify", "--stack", "staging", "--stack-file", str(APP / "Pulumi.staging.yaml"),
                           "--no-health", "--rate-limit", "--functions-url", url,
                           env={"SUPABASE_DB_URL": ops_url, "RATE_LIMIT_PROBE_SECRET": ""})
    finally:
        proc.kill()
        shim.close()
    check = next(c for c in json.loads(done.stdout)["checks"] if c["check"] == "rate-limit:webhook-terra")
    assert check["ok"] is True and "100 per 60 s holds" in check["detail"]
    assert missing.returncode == 2 and "needs RATE_LIMIT_PROBE_SECRET" in missing.stderr
    assert PROBE_SECRET not in done.stdout + done.stderr
