"""One deadline for a whole Management API call, enforced at the deadline itself.

httpx bounds each socket operation, never a request: a header or body that trickles in a
byte at a time never times out, and closing a socket from another thread does not wake a
recv() blocked on it (Linux). So each try runs on a worker thread, and the caller waits for
it until the deadline and not a moment longer. At the deadline the caller cuts the try:
it shuts its socket down (shutdown(), unlike close(), wakes a blocked recv), so the worker
ends too, and a try still resolving the host name never sends its request afterwards.

httpcore's `trace` extension hands over each socket as it connects; the client keeps no
connection alive between requests, so every try opens the socket it can be cut from."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, TypeVar

import httpx

Result = TypeVar("Result")
_CONNECTED = (".connect_tcp.complete", ".connect_unix_socket.complete")


class DeadlineExceeded(httpx.TimeoutException):
    """The call's time ran out (a timeout to the retry loop, which then stops)."""

    def __init__(self, message: str = "the call's time ran out"):
        super().__init__(message)


class _Try:
    """One try's sockets, cut together at the deadline."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._cut = False
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if not event.endswith(_CONNECTED):
            return
        # A duplicate of the descriptor: TLS wraps (and detaches) the original socket object,
        # and shutting down either one ends the connection under both.
        handle = info["return_value"].get_extra_info("socket").dup()
        with self._lock:
            self._sockets.append(handle)
            cut = self._cut
        if cut:  # connected after the caller gave up: send nothing
            _shut(handle)
            raise DeadlineExceeded("the call's time ran out before the request was sent")

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            for handle in self._sockets:
                _shut(handle)

    def release(self) -> None:
        with self._lock:
            for handle in self._sockets:
                handle.close()
            self._sockets.clear()


def _shut(handle: socket.socket) -> None:
    try:
        handle.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side or by httpcore


def run_until(deadline: float, send: Callable[[Callable[[str, dict], None]], Result]) -> Result:
    """`send(trace)` (one HTTP try; pass `trace` as httpx's trace extension) on a worker
    thread: its result or its exception, or DeadlineExceeded at `deadline` (monotonic)."""
    if deadline - time.monotonic() <= 0:
        raise DeadlineExceeded()
    attempt = _Try()

    def work() -> None:
        try:
            attempt.result = send(attempt.trace)
        except BaseException as exc:  # handed to the caller, who re-raises it
            attempt.error = exc
        finally:
            attempt.release()
            attempt.done.set()

    threading.Thread(target=work, name="supagate-api-try", daemon=True).start()
    if not attempt.done.wait(max(deadline - time.monotonic(), 0.0)):
        attempt.cut()
        raise DeadlineExceeded()
    if attempt.error is not None:
        raise attempt.error
    return attempt.result
