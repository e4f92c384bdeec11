"""A local HTTP server speaking InfluxDB's ``/api/v2/write``, answering as a test scripts it.

Real sockets and real HTTP through the real influxdb-client, at a seam we own: the test says
what to answer (a queue of scripted replies, then a rule that refuses lines containing a
marker with 400, as InfluxDB refuses a line it cannot parse) and reads back every request's
decoded lines. Runs a stdlib ``ThreadingHTTPServer`` on a free loopback port.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Answer:
    """One scripted reply."""

    status: int
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    """Wait this long before answering (a client timeout test); cut short on shutdown."""


@dataclass(frozen=True)
class Request:
    """One write as received: query parameters, headers (lower case) and the lines."""

    query: dict[str, str]
    headers: dict[str, str]
    lines: list[str]
    status: int


class FakeInflux:
    """``with FakeInflux() as server``: ``server.url``, ``script(...)``, ``requests``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.accepted: list[str] = []
        self.refuse_marker: str | None = None
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL for the client."""
        return f"http://127.0.0.1:{self.port}"

    def script(self, *answers: Answer) -> None:
        """Answer the next writes with ``answers`` in order, whatever they contain."""
        with self._lock:
            self._script.extend(answers)

    def __enter__(self) -> FakeInflux:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _answer(self, lines: list[str]) -> Answer:
        with self._lock:
            if self._script:
                return self._script.popleft()
        marker = self.refuse_marker
        bad = [line for line in lines if marker is not None and marker in line]
        if bad:
            return Answer(400, f"unable to parse '{bad[0]}': invalid field format")
        return Answer(204)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                lines = body.decode("utf-8").split("\n") if body else []
                answer = server._answer(lines)
                query = dict(parse_qsl(urlsplit(self.path).query))
                with server._lock:
                    server.requests.append(Request(query, headers, lines, answer.status))
                    if 200 <= answer.status < 300:
                        server.accepted.extend(lines)
                if answer.delay_s and server._stopping.wait(answer.delay_s):
                    return
                payload = b""
                if answer.status >= 300:
                    payload = json.dumps({"code": "invalid", "message": answer.message}).encode()
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    if payload:
                        self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up waiting (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads ``requests``."""

        return Handler
