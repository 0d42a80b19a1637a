"""Servers the tests stand up on 127.0.0.1: a handler class served from a thread (the
Data API, a health check, a webhook receiver, a broken limiter), and an edge-function
script served by real Deno."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing and answers JSON in one call."""

    def send_json(self, status: int, document, content_type: str | None = "application/json") -> None:
        content = json.dumps(document).encode()
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args):
        pass


class LoopbackServer:
    """`handler` served until close(); `url` is its address plus `path`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], path: str = ""):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}{path}"

    def close(self) -> None:
        self.server.shutdown()


def serve_deno(tmp_path, source: str, env: dict, name: str) -> tuple[subprocess.Popen, str]:
    """`source` (a Deno.serve script listening on $PORT) run by real Deno; returns the process
    and its URL once it accepts connections."""
    from supagate.postgres.embedded import free_port
    from supagate.supabase_api.edge_functions import _deno_env, deno_binary

    script = tmp_path / f"{name}.ts"
    script.write_text(source)
    port = free_port()
    proc = subprocess.Popen([deno_binary(), "run", "--allow-net", "--allow-env", "--allow-read", str(script)],
                            env={**_deno_env(), **env, "PORT": str(port)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode()[-2000:])
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("deno did not start")
