"""Start and stop a real Mosquitto broker on a free loopback port.

Used by the pytest fixtures and by ``bench/``. Persistence is on, so a restarted broker keeps
the runner's persistent session and its queued QoS 1 messages, as in production.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or ``None`` when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in CANDIDATES if os.access(p, os.X_OK)), None)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    """One broker process; ``start``/``stop`` may be called repeatedly (same port, same data)."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        max_inflight: int = 100,
        max_queued: int = 100_000,
        tcp_nodelay: bool = False,
        binary: str | None = None,
    ) -> None:
        found = binary or find_mosquitto()
        if found is None:
            msg = "mosquitto is not installed (apt-get install mosquitto)"
            raise FileNotFoundError(msg)
        self.binary = found
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            f"max_inflight_messages {max_inflight}\n"
            f"max_queued_messages {max_queued}\n"
            f"set_tcp_nodelay {str(tcp_nodelay).lower()}\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start and wait until the port accepts connections."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"mosquitto exited at start: {self.log.read_text(errors='replace')[-2000:]}"
                raise RuntimeError(msg)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        msg = f"mosquitto did not listen on port {self.port} within {timeout_s} s"
        raise RuntimeError(msg)

    def stop(self) -> None:
        """Terminate (SIGTERM, so persistence is written) and wait."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
