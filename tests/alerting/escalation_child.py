"""A control room in a child process, driven line by line on stdin, so a test can SIGKILL it
between (or during) escalation steps and start another on the same store.

Commands: ``reading <sensor> <value>``, ``at <ms after 02:00>`` (set the clock, send what is
due). Each answers one line ``ok <n>`` on stdout (``n``: sends tried). The clock is the
test's: a ManualClock moved only by ``at``.

Run: ``python -m tests.alerting.escalation_child REGISTRY RECORDER_PORT STORE``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from earlywarn.registry import load_registry
from tests.alerting.night import NIGHT, open_night
from tests.services.http_recorder import HttpRecorder


class _Remote(HttpRecorder):
    """Only the URL of the test's recorder (which runs in the test process)."""

    def __init__(self, port: int) -> None:  # no server of our own
        self.port = port


def main() -> None:
    registry_dir, port, store = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    night = open_night(load_registry(registry_dir), _Remote(port), store, start_ms=NIGHT)
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[0] == "reading":
            night.reading(words[1], float(words[2]))
            print("ok 0", flush=True)
        elif words[0] == "at":
            print(f"ok {night.at(int(words[1]))}", flush=True)


if __name__ == "__main__":
    main()
