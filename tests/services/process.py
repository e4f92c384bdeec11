"""What every real server the tests start has in common: finding its binary, starting it with
its output in a log file, waiting until it answers, and stopping it.

Mosquitto, VictoriaMetrics and influxd each add only their command line and how to tell
that they are ready.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from earlywarn.embedded_broker import free_port

__all__ = ["ServerProcess", "find_binary", "free_port"]


def find_binary(name: str, candidates: Sequence[str]) -> str | None:
    """Path of ``name`` on ``PATH`` or at one of ``candidates``; ``None`` when not installed
    (``/usr/sbin`` is not on every user's ``PATH``)."""
    found = shutil.which(name)
    if found:
        return found
    return next((p for p in candidates if os.access(p, os.X_OK)), None)


class ServerProcess:
    """One server process, its output appended to ``log``; ``start``/``stop`` may repeat."""

    name = "server"
    stop_wait_s = 10.0
    """How long a SIGTERM may take (the server writes what it holds) before SIGKILL."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def _launch(
        self,
        argv: Sequence[str],
        ready: Callable[[], bool],
        timeout_s: float,
        poll_s: float,
        not_ready: str,
    ) -> None:
        """Start ``argv`` and poll ``ready`` (an ``OSError`` counts as not yet) until it is
        true; a process that exits, or is not ready within ``timeout_s``, is an error that
        quotes its log."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"{self.name} exited at start: {self.log.read_text(errors='replace')[-2000:]}"
                raise RuntimeError(msg)
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(poll_s)
        self.stop()
        msg = f"{self.name} {not_ready} within {timeout_s} s"
        raise RuntimeError(msg)

    def stop(self) -> None:
        """Terminate (SIGTERM), wait up to ``stop_wait_s``, then kill."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=self.stop_wait_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
