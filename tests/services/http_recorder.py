"""A local HTTP server that records every request and answers from a script.

Stands in for an SMS/voice gateway or a webhook: real sockets and real HTTP, so the channels'
encoding, headers and error handling are tested against what actually crosses the wire. Each
request takes the next scripted :class:`Reply` (then the default, 200 ``{}``); a reply may be
delayed to test client timeouts. Runs a stdlib ``ThreadingHTTPServer`` on a free loopback
port in a background thread.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Recorded:
    """One request as received."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value, by name in any case."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON (fails the test when it is not valid JSON)."""
        return json.loads(self.body.decode("utf-8"))

    def form(self, encoding: str = "utf-8") -> dict[str, str]:
        """The body parsed as a URL-encoded form."""
        return dict(parse_qsl(self.body.decode("ascii"), strict_parsing=True, encoding=encoding))

    def query(self) -> dict[str, str]:
        """The URL's query string parsed."""
        return dict(parse_qsl(urlsplit(self.path).query))


@dataclass(frozen=True)
class Reply:
    """What to answer to one request."""

    status: int = 200
    body: bytes | str = b"{}"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content_type: str = "application/json; charset=utf-8"


class HttpRecorder:
    """Records requests; ``script(...)`` queues replies. Use ``with`` or ``start``/``stop``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str = "/") -> str:
        """``http://127.0.0.1:PORT/path``."""
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._lock:
            self._replies.extend(replies)

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving; a delayed reply in progress is cut short."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> HttpRecorder:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _next(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            return self._replies.popleft() if self._replies else Reply()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = recorder._next(Recorded(self.command, self.path, headers, body))
                if reply.delay_s and recorder._stopping.wait(reply.delay_s):
                    return
                payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (a timeout test); nothing to answer to

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads ``requests`` instead."""

        return Handler
