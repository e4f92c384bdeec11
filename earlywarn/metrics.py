"""Prometheus metrics, read at scrape time from the runner's counters and the alert store.

Nothing is counted twice: the runner already counts what it does (:class:`Counters`), and
the alert store already holds every alarm, step and delivery attempt. A custom collector
turns both into metric families when Prometheus asks, on the event loop that owns them,
into a registry of its own (never the process-global one, so two apps in one test process
do not collide).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from earlywarn.counters import Counters

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreStats:
    """Counts from an alert store file, through a read-only connection of its own (the
    store's connection belongs to the service; a reader never blocks its writes in WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _query(self, sql: str) -> list[tuple[str | None, ...]]:
        if self._conn is None:
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1.0)
        return [tuple(row) for row in self._conn.execute(sql).fetchall()]

    def open_alarms(self) -> list[tuple[str, str, int]]:
        """(level, state, count) of alarms not yet cleared-and-acknowledged; a cleared one
        waiting for acknowledgement counts under its peak level."""
        rows = self._query(
            "SELECT COALESCE(level, peak_level), state, COUNT(*) FROM alarms "
            "WHERE state != 'cleared' GROUP BY 1, 2"
        )
        return [(str(lv), str(st), int(str(n))) for lv, st, n in rows]

    def attempts(self) -> list[tuple[str, str, int]]:
        """(channel, outcome, count) of every delivery attempt ever made."""
        rows = self._query("SELECT channel, outcome, COUNT(*) FROM attempts GROUP BY 1, 2")
        return [(str(ch), str(out), int(str(n))) for ch, out, n in rows]

    def steps(self) -> list[tuple[str, int]]:
        """(status, count) of escalation steps."""
        rows = self._query("SELECT status, COUNT(*) FROM steps GROUP BY 1")
        return [(str(status), int(str(n))) for status, n in rows]

    def close(self) -> None:
        """Close the reader."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class EarlywarnCollector(Collector):
    """Metric families from ``counters()``, ``queues()`` and the store at each scrape."""

    def __init__(
        self,
        counters: Callable[[], Counters | None],
        queues: Callable[[], dict[str, int]],
        store: StoreStats | None,
    ) -> None:
        self.counters = counters
        self.queues = queues
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """Build every family now."""
        counters = self.counters()
        if counters is not None:
            yield from _runner_families(counters)
        depth = GaugeMetricFamily(
            "earlywarn_queue_depth", "Items waiting in an internal queue", labels=["queue"]
        )
        for queue, size in sorted(self.queues().items()):
            depth.add_metric([queue], size)
        yield depth
        if self.store is not None:
            yield from _store_families(self.store)


def _runner_families(c: Counters) -> Iterator[Metric]:
    simple = (
        ("earlywarn_messages_received", "MQTT messages taken in", c.received),
        ("earlywarn_readings_accepted", "Readings that passed validation", c.readings),
        ("earlywarn_readings_evaluated", "Readings run through the rules", c.evaluated),
        ("earlywarn_readings_stale", "Readings not newer than the sensor's last", c.stale),
        ("earlywarn_deadletters", "Messages published to the dead-letter topic", c.deadletters),
        ("earlywarn_backpressure_waits", "Times the MQTT thread waited", c.backpressure),
        ("earlywarn_readings_unstored", "Readings the storage spool could not take", c.unstored),
    )
    for name, help_text, value in simple:
        yield CounterMetricFamily(name, help_text, value=value)
    rejected = CounterMetricFamily(
        "earlywarn_rejected", "Rejected messages or elements, by reason", labels=["reason"]
    )
    for reason, count in sorted(c.rejected.items()):
        rejected.add_metric([reason], count)
    yield rejected
    events = CounterMetricFamily(
        "earlywarn_alarm_events",
        "Alarm events raised or changed, by level (clears as 'cleared')",
        labels=["level"],
    )
    for level, count in sorted(c.alarms.items()):
        events.add_metric([level], count)
    yield events


def _store_families(store: StoreStats) -> Iterator[Metric]:
    alarms = GaugeMetricFamily(
        "earlywarn_alarms_open",
        "Alarms not yet cleared and acknowledged",
        labels=["level", "state"],
    )
    for level, state, count in store.open_alarms():
        alarms.add_metric([level, state], count)
    yield alarms
    sends = CounterMetricFamily(
        "earlywarn_notifications",
        "Notification delivery attempts, by channel and outcome",
        labels=["channel", "outcome"],
    )
    for channel, outcome, count in store.attempts():
        sends.add_metric([channel, outcome], count)
    yield sends
    steps = GaugeMetricFamily(
        "earlywarn_escalation_steps", "Escalation steps by status", labels=["status"]
    )
    for status, count in store.steps():
        steps.add_metric([status], count)
    yield steps


def metrics_registry(collector: EarlywarnCollector) -> CollectorRegistry:
    """A registry holding only ``collector``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format."""
    return generate_latest(registry)
