"""Serving the API from the runner's own event loop with uvicorn.

uvicorn's ``Server.serve()`` runs as one more task of the loop that owns the alert store, so
every handler runs there too (see :mod:`earlywarn.api.app`). uvicorn would install its own
SIGINT/SIGTERM handlers when started from the main thread and swallow the service's stop
signal; here the service keeps its handlers and stops the server itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``:8781`` for every interface is not accepted: say ``0.0.0.0:8781``)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        msg = f"expected HOST:PORT such as 127.0.0.1:8781, got {text!r}"
        raise ValueError(msg)
    return host.strip("[]"), int(port)


class ApiServer:
    """``start()`` on the loop, ``stop()`` at shutdown; ``port`` once started."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self.host = host
        self.port = port

    async def start(self) -> int:
        """Start serving; returns the port (the one chosen when ``port`` was 0)."""
        self._task = asyncio.create_task(self._server.serve(), name="earlywarn-api")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
                msg = f"the API server on {self.host}:{self.port} stopped at start"
                raise OSError(msg)
            await asyncio.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("API on http://%s:%s (OpenAPI at /docs)", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        """Finish open requests and stop."""
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None
