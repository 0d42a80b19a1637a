"""The shared rate limiter as it runs on the platform: real Deno serving
supagate/ops/deno/rate_limit.ts (the function's name is the path's last segment), behind a
gateway that APPENDS the address that connected to it to X-Forwarded-For, as Cloudflare in
front of hosted Supabase and Kong in front of `supabase start` do. Its Data API call is
answered by a PostgREST-shaped shim over the embedded database. Clients get distinct
addresses by binding to 127.0.0.x."""

from __future__ import annotations

import json
from contextlib import contextmanager

import httpx
import psycopg

from tests.conftest import ROOT
from tests.loopback import LoopbackServer, QuietHandler, serve_deno

SERVICE_KEY = "service-role-key-for-tests"
PROBE_SECRET = "probe-secret-7f3a"
LIMITER = ROOT / "supagate" / "ops" / "deno" / "rate_limit.ts"
ROUTED = """import { rateLimit } from "%s";
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT")), onListen() {} }, async (req) => {
  const limited = await rateLimit(req, new URL(req.url).pathname.split("/").pop() ?? "");
  if (limited instanceof Response) return limited;
  return new Response("ok", { status: 202, headers: limited });
});
"""


def policy(url: str, function: str, limit: int, window: int = 3600, max_keys: int = 10000) -> None:
    """An hour-long window by default: a test crossing a window boundary would see its quota reset."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into ops.rate_limit_policies (function, max_requests, window_seconds, probe, max_keys) "
                     "values (%s, %s, %s, true, %s) on conflict (function) do update set max_requests = "
                     "excluded.max_requests, window_seconds = excluded.window_seconds, max_keys = excluded.max_keys",
                     (function, limit, window, max_keys))


def counters(url: str, function: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return dict(conn.execute("select key, sum(request_count)::int from ops.rate_counters where function = %s "
                                 "group by key", (function,)).fetchall())


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
                                   "from public.supagate_hit_rate_limit(%s, %s, %s)",
                                   (body["p_function"], body["p_subject"], body.get("p_nonce"))).fetchone()
            self.send_json(200, [{"allowed": row[0], "remaining": row[1], "reset_at": row[2].isoformat(),
                                  "max_requests": row[3], "window_seconds": row[4]}])

    return LoopbackServer(Handler)


def gateway(upstream: str) -> LoopbackServer:
    """Forwards every request, appending its peer's address to X-Forwarded-For
    (nginx's $proxy_add_x_forwarded_for); whatever the client sent stays on the left."""
    class Handler(QuietHandler):
        def _forward(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            sent = self.headers.get_all("X-Forwarded-For") or []
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "content-length", "x-forwarded-for")}
            headers["X-Forwarded-For"] = ", ".join([*sent, self.client_address[0]])
            answer = httpx.request(self.command, upstream + self.path, content=body, headers=headers, timeout=15)
            self.send_response(answer.status_code)
            for name in ("ratelimit", "ratelimit-policy", "retry-after"):
                if name in answer.headers:
                    self.send_header(name, answer.headers[name])
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = _forward

    return LoopbackServer(Handler)


def client(address: str) -> httpx.Client:
    """A client whose connections come from `address` (any 127.0.0.x reaches loopback)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=15)


@contextmanager
def edge(db_url: str, tmp_path):
    """Yields the gateway's URL; a function `fn` is at `<url>/<fn>`."""
    shim = postgrest_shim(db_url)
    env = {"SUPABASE_URL": shim.url, "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY, "RATE_LIMIT_PROBE_SECRET": PROBE_SECRET}
    proc, url = serve_deno(tmp_path, ROUTED % LIMITER.as_uri(), env, "routed")
    front = gateway(url)
    try:
        yield front.url
    finally:
        front.close()
        proc.kill()
        shim.close()
