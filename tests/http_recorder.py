"""A real local HTTP server that records requests and answers from a script.

Stands in for third-party endpoints (Slack, Airflow, GitHub, webhook
receivers). Each request is recorded whole; the reply is the next scripted
:class:`Reply` (the last one repeats). A reply may hold the response back
until the test releases it or a bounded delay passes, to provoke client
timeouts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass(frozen=True)
class Reply:
    """One scripted response."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    #: Hold the response this long (seconds) before answering, unless released.
    hold: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


class Recorder:
    """The server's state: the script, the recorded requests, a condition to wait on."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies) or [Reply()]
        self.requests: list[RecordedRequest] = []
        self.changed = threading.Condition()
        self.released = threading.Event()
        self.url = ""

    def script(self, *replies: Reply) -> None:
        """Replace the replies still to come."""
        with self.changed:
            self.replies = list(replies) or [Reply()]

    def next_reply(self) -> Reply:
        """Pop the next reply (the last one repeats)."""
        with self.changed:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def record(self, request: RecordedRequest) -> None:
        """Append a request and wake waiters."""
        with self.changed:
            self.requests.append(request)
            self.changed.notify_all()

    def wait_for(
        self, predicate: Callable[[list[RecordedRequest]], bool], timeout: float = 30.0
    ) -> list[RecordedRequest]:
        """Block until ``predicate(requests)`` holds; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(self.requests):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"condition not met in {timeout} s; {len(self.requests)} requests: "
                        + ", ".join(f"{r.method} {r.path}" for r in self.requests)
                    )
                self.changed.wait(remaining)
            return list(self.requests)

    def wait_for_count(self, count: int, timeout: float = 30.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests arrived."""
        return self.wait_for(lambda requests: len(requests) >= count, timeout)


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorder.record(
                RecordedRequest(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
            )
            reply = recorder.next_reply()
            if reply.hold:
                recorder.released.wait(reply.hold)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        do_GET = do_POST = do_PUT = _serve  # noqa: N815 (http.server names)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def recording_server(
    *replies: Reply, port: int = 0, recorder: Recorder | None = None
) -> Iterator[Recorder]:
    """Serve on a loopback port; ``recorder.url`` is ``http://127.0.0.1:PORT``.

    ``port`` 0 picks a free one. To take an endpoint down (connections
    refused) and bring it back, leave the block and serve again on the same
    ``port`` with the same ``recorder``, which keeps what it recorded.
    """
    if recorder is None:
        recorder = Recorder(list(replies))
    elif replies:
        recorder.script(*replies)
    recorder.released.clear()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(recorder))
    server.daemon_threads = True
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        recorder.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
