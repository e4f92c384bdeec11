"""The drain's own process: it drains, reports, stops on request, and never outlives the
runner that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from earlywarn.settings import StorageSettings
from earlywarn.storage_drain import DrainProcess
from storage.spool import Klass, ReadingsAtLimit, Spool
from tests.services.victoria import VictoriaMetrics

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (ended, not yet reaped by its parent) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


def _wait(condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_the_drain_process_sends_the_spool_and_reports(
    tmp_path: Path, victoria: VictoriaMetrics
) -> None:
    path = tmp_path / "spool.db"
    with Spool(path, max_bytes=10**9) as spool:
        spool.append(
            [f"reading,sensor=s{i} value={i}.5 {1_795_000_000_000 + i}" for i in range(2_000)],
            klass=Klass.READING,
        )
    settings = StorageSettings(influx_url=victoria.url, spool_path=str(path))
    drain = DrainProcess(settings, ReadingsAtLimit.KEEP)
    drain.start()
    try:
        assert _wait(lambda: (drain.poll(time.monotonic()), drain.stats)[1] is not None, 20)
        assert _wait(
            lambda: (drain.poll(time.monotonic()), drain.stats and drain.stats.written)[1] == 2_000,
            20,
        )
    finally:
        drain.stop(10)
    assert drain.pid is not None and not _alive(drain.pid)
    # Newly registered series can take a moment to be searchable: wait, then compare exactly.
    _wait(lambda: len(victoria.points('{__name__="reading_value"}')) >= 2_000, 20)
    assert len(victoria.points('{__name__="reading_value"}')) == 2_000
    with Spool(path, max_bytes=10**9) as spool:
        assert spool.depth() == 0


def test_the_drain_ends_when_its_runner_is_killed(tmp_path: Path) -> None:
    # InfluxDB unreachable: the child sits in its backoff, the longest wait it has.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.storage.drain_parent",
            str(tmp_path / "s.db"),
            "http://127.0.0.1:9",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _wait(lambda: _alive(child), 10)
        time.sleep(1.5)  # into the backoff after the first refused connection
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait(lambda: not _alive(child), 5), "the drain outlived its runner"
    finally:
        parent.kill()
        parent.wait(10)
