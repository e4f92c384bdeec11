"""Start and stop a real Mosquitto broker on a free loopback port.

Used by the pytest fixtures and by ``bench/``. Persistence is on, so a restarted broker keeps
the runner's persistent session and its queued QoS 1 messages, as in production.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from tests.services.process import ServerProcess, find_binary, free_port

__all__ = ["Mosquitto", "find_mosquitto", "free_port"]

CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or ``None`` when it is not installed."""
    return find_binary("mosquitto", CANDIDATES)


class Mosquitto(ServerProcess):
    """One broker process; ``start``/``stop`` may be called repeatedly (same port, same data)."""

    name = "mosquitto"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        max_inflight: int = 100,
        max_queued: int = 100_000,
        tcp_nodelay: bool = False,
        binary: str | None = None,
        password_file: Path | None = None,
        acl_file: Path | None = None,
    ) -> None:
        found = binary or find_mosquitto()
        if found is None:
            msg = "mosquitto is not installed (apt-get install mosquitto)"
            raise FileNotFoundError(msg)
        self.binary = found
        self.workdir = workdir
        self.port = port or free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir / "mosquitto.log")
        self.config = workdir / "mosquitto.conf"
        # With a password file (written by onboarding) nobody gets in without an account,
        # as in production; the ACL then refuses every topic it does not grant.
        auth = "allow_anonymous true\n"
        if password_file is not None:
            auth = f"allow_anonymous false\npassword_file {password_file}\n"
        if acl_file is not None:
            auth += f"acl_file {acl_file}\n"
        if password_file is not None and os.geteuid() == 0:
            # As root, Mosquitto drops to user mosquitto before reading these files, which
            # live under pytest's private (0700) temporary directory.
            auth += "user root\n"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{auth}"
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

    def reload(self) -> None:
        """SIGHUP: re-read the password and ACL files, as ``BrokerReloader`` asks."""
        assert self.proc is not None, "not running"
        self.proc.send_signal(signal.SIGHUP)

    def write_pid_file(self, path: Path) -> Path:
        """Write the running broker's pid to ``path`` (what ``pid_file`` would hold)."""
        assert self.proc is not None, "not running"
        path.write_text(f"{self.proc.pid}\n", encoding="ascii")
        return path

    def start(self, timeout_s: float = 10.0) -> None:
        """Start and wait until the port accepts connections."""

        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True

        self._launch(
            [self.binary, "-c", str(self.config)],
            listening,
            timeout_s,
            0.05,
            f"did not listen on port {self.port}",
        )
