"""Start and stop a real InfluxDB 1.x (Debian's ``influxd``) on free loopback ports.

The dashboards' InfluxQL is only trusted once the real query engine has run it, so the tests
start the server Debian ships (1.6.7 today): its own meta, data and WAL directories under the
test's temporary directory, the HTTP API and the RPC port both on loopback, and usage
reporting and the ``_internal`` monitor off so nothing leaves the machine and nothing else
writes. Lines go in over ``/write`` with millisecond precision, queries over ``/query``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from tests.services.process import ServerProcess, find_binary, free_port

CANDIDATES = ("/usr/bin/influxd", "/usr/local/bin/influxd")


def find_influxd() -> str | None:
    """Path of the influxd binary, or ``None`` when it is not installed."""
    return find_binary("influxd", CANDIDATES)


class InfluxQueryError(RuntimeError):
    """InfluxDB answered a query with an error (the statement's message is kept)."""


class InfluxDB1(ServerProcess):
    """One influxd process with an HTTP API on ``url``."""

    name = "influxd"

    def __init__(self, workdir: Path, *, binary: str | None = None) -> None:
        found = binary or find_influxd()
        if found is None:
            msg = "influxd is not installed (apt-get install influxdb)"
            raise FileNotFoundError(msg)
        self.binary = found
        self.workdir = workdir
        self.port = free_port()
        self.rpc_port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir / "influxd.log")
        self.config = workdir / "influxdb.conf"
        self.config.write_text(
            "reporting-enabled = false\n"
            f'bind-address = "127.0.0.1:{self.rpc_port}"\n'
            "[meta]\n"
            f'  dir = "{workdir}/meta"\n'
            "[data]\n"
            f'  dir = "{workdir}/data"\n'
            f'  wal-dir = "{workdir}/wal"\n'
            "  query-log-enabled = false\n"
            "[monitor]\n"
            "  store-enabled = false\n"
            "[http]\n"
            f'  bind-address = "127.0.0.1:{self.port}"\n'
            "  log-enabled = false\n"
            "[logging]\n"
            '  level = "warn"\n'
            "  suppress-logo = true\n"
        )
        self.session = requests.Session()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> None:
        """Start and wait until ``/ping`` answers 204."""
        self._launch(
            [self.binary, "-config", str(self.config)],
            lambda: self.session.get(f"{self.url}/ping", timeout=0.5).status_code == 204,
            timeout_s,
            0.1,
            f"did not answer /ping on port {self.port}",
        )

    def stop(self) -> None:
        """Terminate, wait, and close the HTTP session."""
        super().stop()
        self.session.close()

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE`` (idempotent in InfluxDB)."""
        self._post_query(f'CREATE DATABASE "{name}"')

    def write(self, db: str, lines: list[str]) -> None:
        """Write line protocol with millisecond timestamps; raises with InfluxDB's message."""
        response = self.session.post(
            f"{self.url}/write",
            params={"db": db, "precision": "ms"},
            data="\n".join(lines).encode(),
            timeout=30,
        )
        if response.status_code != 204:
            msg = f"write refused ({response.status_code}): {response.text}"
            raise InfluxQueryError(msg)

    def query(self, db: str, statement: str) -> list[dict[str, Any]]:
        """Run one InfluxQL statement; return its series (``name``, ``tags``, ``columns``,
        ``values``), empty when it matched nothing. Timestamps come back as epoch ms."""
        response = self.session.get(
            f"{self.url}/query",
            params={"db": db, "q": statement, "epoch": "ms"},
            timeout=30,
        )
        body = response.json()
        if response.status_code != 200 or "error" in body:
            msg = f"{body.get('error', response.text)} in: {statement}"
            raise InfluxQueryError(msg)
        results = body.get("results", [])
        if len(results) != 1:
            msg = f"expected one result, got {len(results)} for: {statement}"
            raise InfluxQueryError(msg)
        result = results[0]
        if "error" in result:
            msg = f"{result['error']} in: {statement}"
            raise InfluxQueryError(msg)
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def _post_query(self, statement: str) -> None:
        response = self.session.post(f"{self.url}/query", params={"q": statement}, timeout=10)
        body = response.json()
        if response.status_code != 200 or any("error" in r for r in body.get("results", [])):
            msg = f"{statement}: {body}"
            raise InfluxQueryError(msg)
