"""Just enough of Grafana's HTTP API to push dashboards to, recording every call.

``GET /api/health``, ``GET /api/folders``, ``GET /api/folders/:uid``, ``POST /api/folders``,
``POST /api/dashboards/db``, ``GET /api/dashboards/uid/:uid`` and ``GET /api/search``, with
Grafana's status codes (404 for an unknown folder, 409 for a folder uid taken, 412 for a
dashboard uid taken without ``overwrite``), bearer-token authentication (401 without the
token, 403 when the token is read-only), on a stdlib ``ThreadingHTTPServer`` on a free
loopback port in a background thread.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Call:
    """One request as received."""

    method: str
    path: str
    authorization: str | None
    body: Any


class GrafanaRecorder:
    """A fake Grafana holding folders and dashboards in memory."""

    def __init__(self, token: str, *, read_only: bool = False) -> None:
        self.token = token
        self.read_only = read_only
        self.calls: list[Call] = []
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def calls_to(self, method: str, path_prefix: str) -> list[Call]:
        """The recorded calls of one method whose path starts with the prefix."""
        return [c for c in self.calls if c.method == method and c.path.startswith(path_prefix)]

    def _answer(self, method: str, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        with self._lock:
            self.calls.append(Call(method, path, auth, body))
            if path == "/api/health":
                return 200, {"database": "ok", "version": "11.6.0"}
            if auth != f"Bearer {self.token}":
                return 401, {"message": "Unauthorized"}
            if method == "POST" and self.read_only:
                return 403, {
                    "message": "You'll need additional permissions to perform this action."
                }
            return self._route(method, path, body)

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/api/folders":
            return 200, list(self.folders.values())
        if method == "GET" and parts[:2] == ["api", "folders"] and len(parts) == 3:
            folder = self.folders.get(parts[2])
            return (200, folder) if folder else (404, {"message": "folder not found"})
        if method == "POST" and path == "/api/folders":
            uid = body.get("uid")
            if uid in self.folders:
                return 409, {"message": "a folder with the same uid already exists"}
            self.folders[uid] = {"uid": uid, "title": body["title"], "id": len(self.folders) + 1}
            return 200, self.folders[uid]
        if method == "POST" and path == "/api/dashboards/db":
            board = body["dashboard"]
            uid = board["uid"]
            if uid in self.dashboards and not body.get("overwrite"):
                return 412, {"message": "A dashboard with the same uid already exists"}
            if body.get("folderUid") not in self.folders:
                return 400, {"message": "folder not found"}
            version = self.dashboards.get(uid, {}).get("version", 0) + 1
            self.dashboards[uid] = {**body, "version": version}
            return 200, {"status": "success", "uid": uid, "version": version}
        if method == "GET" and parts[:3] == ["api", "dashboards", "uid"] and len(parts) == 4:
            stored = self.dashboards.get(parts[3])
            return (200, stored) if stored else (404, {"message": "Dashboard not found"})
        if method == "GET" and path == "/api/search":
            return 200, [
                {"uid": uid, "title": d["dashboard"]["title"], "folderUid": d["folderUid"]}
                for uid, d in self.dashboards.items()
            ]
        return 404, {"message": "Not found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                path = urlsplit(self.path).path
                status, answer = recorder._answer(
                    self.command, path, self.headers.get("Authorization"), body
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve  # noqa: N815 (http.server's naming)
            do_POST = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the calls are recorded instead."""

        return Handler
