"""The runner's spool writer thread: the loop queues, the thread stores, then acknowledges.

Real spool and alert store (SQLite files). A second connection holding the spool's write lock
stands for a slow disk or the drain deleting a large batch: the loop side must not wait.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerting.store import AlertStore
from earlywarn.model import Change, Level, Reading
from earlywarn.registry import Registry
from earlywarn.storage_feed import AlertFeed, ReadingFeed, SiteSnapshots
from earlywarn.storage_wiring import SpoolWriter
from storage.spool import Spool
from tests.alerting.test_lifecycle import event
from tests.storage.lineparse import parse

T101 = "huaxin-chem/tank-farm-1/T101-LT"


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool.db", max_bytes=10**9) as s:
        yield s


@pytest.fixture
def store(tmp_path: Path) -> AlertStore:
    return AlertStore(tmp_path / "alerts.db")


def measurements(spool: Spool) -> list[str]:
    return [parse(line).measurement for line in spool.peek(100_000).lines]


def test_alarm_points_and_readings_are_stored_before_the_acknowledgement(
    spool: Spool, store: AlertStore, registry: Registry
) -> None:
    writer = SpoolWriter(spool, ReadingFeed(spool, registry))
    feed = AlertFeed(spool, store, append=writer.events)
    seen: list[tuple[int, int]] = []
    store.apply_event(event(Change.RAISED, Level.RED, None, 1_000, start_ms=1_000), 1_000)
    writer.put([Reading(T101, 1_000, 18.0)])
    assert feed.step() == 1
    writer.then(lambda: seen.append((spool.depth(), spool.cursor(AlertFeed.CURSOR))))
    writer.start()
    writer.stop()
    assert seen == [(2, store.audit_head()[0])]
    assert measurements(spool) == ["reading", "alarm"]


def test_the_loop_side_never_waits_for_the_spool(
    tmp_path: Path, spool: Spool, store: AlertStore, registry: Registry
) -> None:
    """While another connection holds the write lock, steps return at once; nothing is lost."""
    writer = SpoolWriter(spool, ReadingFeed(spool, registry))
    feed = AlertFeed(spool, store, append=writer.events)
    sites = SiteSnapshots(spool, registry, store, append=writer.events)
    feed.step()  # reads the spool's cursor once, before the lock is taken
    writer.start()
    blocker = sqlite3.connect(tmp_path / "spool.db", isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(5.0, blocker.rollback)
    release.start()
    try:
        started = time.monotonic()
        for i in range(3):
            ts = 1_000 + i
            e = event(Change.RAISED, Level.ORANGE, None, ts, start_ms=ts, rule=f"r{i}")
            store.apply_event(e, ts)
            writer.put([Reading(T101, ts, 17.0)])
            assert feed.step() == 1
            assert sites.write(ts) > 0
        elapsed = time.monotonic() - started
        # The writer is still waiting for the lock (read through another connection: the
        # spool object's own lock is held by the waiting writer).
        assert blocker.execute("SELECT count(*) FROM line").fetchone()[0] == 0
    finally:
        release.cancel()
        blocker.rollback()
        blocker.close()
    writer.stop()
    assert elapsed < 1.0
    kinds = measurements(spool)
    assert (kinds.count("reading"), kinds.count("alarm")) == (3, 3)
    assert spool.cursor(AlertFeed.CURSOR) == store.audit_head()[0]


def test_points_the_spool_could_not_take_are_exported_again(
    spool: Spool, store: AlertStore, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SpoolWriter(spool, ReadingFeed(spool, registry))
    feed = AlertFeed(spool, store, append=writer.events)
    store.apply_event(event(Change.RAISED, Level.RED, None, 1_000, start_ms=1_000), 1_000)
    real_append = spool.append
    failures = iter([OSError("disk full")])

    def append_once_failing(*args: object, **kwargs: object) -> int:
        for failure in failures:
            raise failure
        return real_append(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(spool, "append", append_once_failing)
    writer.start()
    assert feed.step() == 1
    stored = threading.Event()
    writer.then(stored.set)
    assert stored.wait(10)
    assert spool.depth() == 0
    assert spool.cursor(AlertFeed.CURSOR) == 0
    # The next step starts again from the spool's cursor: the alarm is not skipped.
    assert feed.step() == 1
    writer.stop()
    assert measurements(spool) == ["alarm"]
    assert spool.cursor(AlertFeed.CURSOR) == store.audit_head()[0]
