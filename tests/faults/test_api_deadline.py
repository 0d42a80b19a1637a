"""One deadline for the whole API call, held at the deadline: against a real loopback server
that trickles a body or its headers a byte at a time, loses a write's answer and then
trickles the read-back, or is reached only after the call gave up. Before the fix a
trickle was cut only when the next byte came (total=1.0 took 1.44 s) and a read-back got a
fresh budget of its own (total=2.0 took 2.74 s, and the error named the GET)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from supagate.supabase_api.client import ApiError, ManagementApi, RetryPolicy
from tests.loopback import LoopbackServer, QuietHandler

TOKEN = "sbp_deadline_token_0123456789"
MARGIN = 0.3  # scheduling slack on a shared 2-core machine; a byte comes every 0.45 s
BYTE_EVERY = 0.45


class Server:
    """GET /trickle-body, /trickle-headers, /trickle-short (3 bytes): a byte every 0.45 s;
    GET /quick: at once;
    PATCH /lose: applies, then closes the connection without an answer."""

    def __init__(self):
        self.received: list[str] = []
        server_self = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _trickle(self, data: bytes) -> None:
                try:
                    for byte in data:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(BYTE_EVERY)
                except OSError:
                    self.close_connection = True  # the client cut it: that is the point

            def do_GET(self):  # noqa: N802
                server_self.received.append(f"GET {self.path}")
                body = b"[1]" if self.path == "/trickle-short" else b'{"jwt_exp": 3600, "padding": "........"}'
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                if self.path == "/trickle-headers":
                    return self._trickle(head.encode() + body)
                self.wfile.write(head.encode())
                self.wfile.flush()
                if self.path in ("/trickle-body", "/trickle-short"):
                    return self._trickle(body)
                self.wfile.write(body)

            def do_PATCH(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server_self.received.append(f"PATCH {self.path}")
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        self.loopback = LoopbackServer(Handler)
        self.port = self.loopback.server.server_port
        self.url = self.loopback.url


@pytest.fixture
def server():
    running = Server()
    yield running
    running.loopback.close()


def _client(url: str, total: float) -> ManagementApi:
    return ManagementApi(TOKEN, url, RetryPolicy(attempts=5, timeout=30, total=total, backoff=0.01),
                         allow_unlisted_api=True)


def _tries_alive() -> int:
    return sum(t.name == "supagate-api-try" and t.is_alive() for t in threading.enumerate())


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-headers"])
def test_a_trickle_is_cut_at_the_deadline_not_at_the_next_byte(server, path):
    for total in (1.0, 1.2, 0.7):  # deadlines that fall between two bytes
        with _client(server.url, total) as api:
            started = time.monotonic()
            with pytest.raises(ApiError) as raised:
                api.get(path)
            elapsed = time.monotonic() - started
        assert elapsed <= total + MARGIN, f"a {total} s call took {elapsed:.2f} s"
        assert f"failed to call GET {path}" in str(raised.value) and "time ran out" in str(raised.value)
        assert TOKEN not in str(raised.value)
    time.sleep(BYTE_EVERY + 0.2)
    assert _tries_alive() == 0  # the cut socket ended each try's thread too


def test_an_answer_that_trickles_in_within_the_deadline_is_read_whole(server):
    """The safe twin: a trickle that ends before the deadline is not cut."""
    with _client(server.url, 3.0) as api:
        assert api.get("/trickle-short") == [1]
        assert api.get("/quick")["jwt_exp"] == 3600


def test_a_lost_write_answer_reads_back_within_the_same_deadline_and_names_the_write(server):
    """The PATCH's answer is lost; the read-back trickles. The whole call, read-back
    included, ends at the one deadline, and the error names the PATCH the user made."""
    for total in (1.0, 2.0):
        with _client(server.url, total) as api:
            started = time.monotonic()
            with pytest.raises(ApiError) as raised:
                api.request("PATCH", "/lose", json_body={"jwt_exp": 3600},
                            applied=lambda: api.get("/trickle-body")["jwt_exp"] == 3600)
            elapsed = time.monotonic() - started
        assert elapsed <= total + MARGIN, f"a {total} s call took {elapsed:.2f} s"
        message = str(raised.value)
        assert message.startswith("failed to call PATCH /lose: its answer was lost"), message
        assert "GET /trickle-body" in message and "It may have been applied" in message
    assert server.received.count("PATCH /lose") == 2  # once per call: never sent again


def test_a_lost_write_answer_read_back_in_time_returns(server):
    """The safe twin: a quick read-back that finds the write applied ends the call, once."""
    with _client(server.url, 5.0) as api:
        assert api.request("PATCH", "/lose", json_body={}, applied=lambda: api.get("/quick") is not None) is None
    assert server.received == ["PATCH /lose", "GET /quick"]


def test_a_try_that_connects_after_the_deadline_sends_nothing(server, monkeypatch):
    """A host name that resolves only after the call gave up (a stuck resolver cannot be
    made on loopback, so the lookup is slowed): the late try connects and sends no request."""
    real = socket.getaddrinfo

    def slow_lookup(host, *args, **kwargs):
        if host == "localhost":
            time.sleep(1.0)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    with _client(f"http://localhost:{server.port}", 0.4) as api:
        started = time.monotonic()
        with pytest.raises(ApiError) as raised:
            api.request("PATCH", "/lose", json_body={"jwt_exp": 1})
        assert time.monotonic() - started <= 0.4 + MARGIN
    assert "time ran out" in str(raised.value)
    time.sleep(1.2)
    assert server.received == []  # the write never reached the server
