"""A drainer process killed mid-drain, twice, then run to the end: every point arrives exactly
once by (series, timestamp).

Lines leave the spool only after the server took them, so a kill can never lose one. A kill
after the server took a batch but before the spool dropped it makes the next run send that
batch again: the same points (same series, timestamps and values) twice. InfluxDB keeps one
point per series and timestamp, the second write overwriting the first with identical values,
so that duplicate is harmless; the VictoriaMetrics here is started with deduplication
(``-dedup.minScrapeInterval=1ms``) to have the same semantics. The first kill lands exactly in
that window (the child hangs after a write, before the removal), and the server's own counter
of received samples shows the batch really was sent twice; the second kill lands wherever
the drain happens to be.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.spool import Klass, Spool
from tests.services.victoria import VictoriaMetrics
from tests.storage.test_victoria import expected_points

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LINES = 50_000
BATCH = 5000
T0 = 1_700_000_000_000


def lines() -> list[str]:
    return [
        f"reading,enterprise=chem,kind=level,sensor=LT-{i % 50},site=tank-farm"
        f" value={i * 0.5},quality={i % 3}i {T0 + i * 10}"
        for i in range(LINES)
    ]


def child(spool: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.storage.drain_child",
            str(spool),
            url,
            "--batch",
            str(BATCH),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


def depth(path: Path) -> int:
    with Spool(path, max_bytes=10**10) as spool:
        return spool.depth()


def test_killed_mid_drain_every_point_arrives_exactly_once(
    victoria_dedup: VictoriaMetrics, tmp_path: Path
) -> None:
    path = tmp_path / "spool.db"
    written = lines()
    with Spool(path, max_bytes=10**10) as spool:
        for start in range(0, LINES, 1000):
            spool.append(written[start : start + 1000], klass=Klass.READING)

    # 1. Killed between a successful write and the removal of that batch.
    first = child(path, victoria_dedup.url, "--hang-after", "3")
    assert first.stdout is not None
    assert first.stdout.readline().strip() == "started"
    assert first.stdout.readline().strip() == "hanging"
    kill(first)
    assert depth(path) == LINES - 2 * BATCH  # the third batch is in the server and the spool

    # 2. Killed wherever it happens to be.
    second = child(path, victoria_dedup.url)
    deadline = time.monotonic() + 60
    while depth(path) > LINES // 2:
        assert second.poll() is None, "the child finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    kill(second)
    left = depth(path)
    assert 0 < left <= LINES // 2

    # 3. Run to the end.
    third = child(path, victoria_dedup.url)
    out, _ = third.communicate(timeout=60)
    assert third.returncode == 0, out
    assert depth(path) == 0

    # A series the server has just registered can take a moment to be searchable, even
    # after a flush (seen once on a loaded CI host): wait for it, then compare exactly.
    deadline = time.monotonic() + 20
    while len(points := victoria_dedup.points('{__name__=~"reading_.*"}')) < 2 * LINES:
        assert time.monotonic() < deadline, f"{len(points)} of {2 * LINES} samples visible"
        time.sleep(0.2)
    assert len(points) == 2 * LINES  # value and quality: one sample per series and timestamp
    assert points == expected_points(written)
    # The server received more samples than it keeps: the batch in flight at the first kill
    # (and maybe one at the second) was sent twice, and deduplicated.
    received = victoria_dedup.metric('vm_rows_inserted_total{type="influx"}')
    assert received >= 2 * (LINES + BATCH)
