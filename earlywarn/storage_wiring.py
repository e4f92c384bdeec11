"""Storage for the embedded runner: the spool, its writer thread, the drain process to
InfluxDB, and the feeds.

The runner's event loop never waits for the disk or the network: it reads the alert store
and queues lines; a writer thread appends them to the spool (a local SQLite file) and a drain
process sends the spool to InfluxDB, so neither a slow disk nor a slow or absent InfluxDB
delays a reading or an alarm. While InfluxDB is down the spool grows; when it is back the
backlog drains in order; after a restart the drain resumes from the spool.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alerting.store import AlertStore
from earlywarn.clock import Clock
from earlywarn.model import Reading
from earlywarn.registry import Registry
from earlywarn.settings import StorageSettings
from earlywarn.storage_drain import DrainProcess
from earlywarn.storage_feed import AlertFeed, ReadingFeed, SiteSnapshots, drill_windows
from storage.spool import Klass, ReadingsAtLimit, Spool

log = logging.getLogger(__name__)

POLICIES = {
    "keep": ReadingsAtLimit.KEEP,
    "drop-oldest": ReadingsAtLimit.DROP_OLDEST,
    "drop-new": ReadingsAtLimit.DROP_NEW,
}


@dataclass(frozen=True, slots=True)
class _Events:
    """Event lines (alarms, notifications, site status) and the exporter cursor they carry."""

    lines: list[str]
    cursor: tuple[str, int] | None
    failed: Callable[[], None] | None


class SpoolWriter:
    """Every append to the spool, on a thread of its own; then the acknowledgements.

    An append is fsynced (a few milliseconds, and tens when the drain is deleting sent lines
    or SQLite checkpoints its log). Done on the event loop it delayed the alarms of the
    readings behind it: ``bench/e2e.py --storage`` measured p99 reading → alarm going from 8
    to 58 ms at 5,000 msg/s with readings appended on the loop, and still about 200 ms over
    15 s while the alarm history and the site snapshots were. Here the loop only queues.

    The thread takes everything queued at once: all readings in one transaction (group
    commit: under load one fsync serves many batches), each event append in its own (it may
    carry an exporter's cursor), and only then runs the callbacks queued after them, in order
    (the runner's hand the acknowledgements back to its loop). So a message is acknowledged
    to the broker only once its readings are on disk: a crash before that makes the broker
    redeliver it. The unacknowledged messages are
    bounded by the broker's in-flight window, which also bounds this queue.
    """

    def __init__(self, spool: Spool, readings: ReadingFeed) -> None:
        self.spool = spool
        self.feed = readings
        self.unstored = 0
        self._queue: queue.SimpleQueue[list[Reading] | _Events | Callable[[], object] | None]
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="earlywarn-spool", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def put(self, readings: Sequence[Reading]) -> None:
        """Queue readings (from the loop; returns at once)."""
        self._queue.put(list(readings))

    def events(
        self,
        lines: Sequence[str],
        cursor: tuple[str, int] | None = None,
        failed: Callable[[], None] | None = None,
    ) -> None:
        """Queue event lines and the cursor to store with them; ``failed`` runs (on this
        thread) if they could not be stored, so the exporter reads them again."""
        self._queue.put(_Events(list(lines), cursor, failed))

    def then(self, done: Callable[[], object]) -> None:
        """Run ``done`` on this thread once everything queued before it is in the spool."""
        self._queue.put(done)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Store what is queued, run its acknowledgements, and end the thread."""
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._store_readings([r for item in items if isinstance(item, list) for r in item])
            for item in items:
                if isinstance(item, _Events):
                    self._store_events(item)
            for item in items:
                if callable(item):
                    try:
                        item()
                    except Exception:
                        log.exception("internal error while acknowledging stored readings")
            if None in items:
                return

    def _store_readings(self, readings: list[Reading]) -> None:
        if not readings:
            return
        try:
            self.feed(readings)
        except Exception:
            # The alarms were already raised; a broken spool must not hold back the
            # acknowledgements (the broker would only redeliver what was evaluated).
            self.unstored += len(readings)
            log.exception(
                "could not spool %d readings for InfluxDB (alarms are not affected)",
                len(readings),
            )

    def _store_events(self, events: _Events) -> None:
        try:
            self.spool.append(events.lines, klass=Klass.EVENT, cursor=events.cursor)
        except Exception:
            log.exception(
                "could not spool %d alarm, notification or site points for InfluxDB; "
                "they are exported again from the alert store",
                len(events.lines),
            )
            if events.failed is not None:
                events.failed()


@dataclass(frozen=True, slots=True)
class StorageStatus:
    """What the operator wants to know about storage, in one look."""

    backlog: int
    spool_bytes: int
    written: int
    last_error: str | None


class StorageRuntime:
    """Owns the spool, the writer thread, the drain process and the feeds; ``step`` is called
    every second on the runner's loop."""

    def __init__(
        self,
        settings: StorageSettings,
        registry: Registry,
        clock: Clock,
        store: AlertStore | None = None,
    ) -> None:
        if settings.influx_url is None:
            msg = "storage needs an InfluxDB URL (--influx or EARLYWARN_INFLUX_URL)"
            raise ValueError(msg)
        self.settings = settings
        self.clock = clock
        self.store = store
        self.spool = self._open_spool()
        self.readings = ReadingFeed(self.spool, registry)
        self.writer = SpoolWriter(self.spool, self.readings)
        self.alerts = (
            AlertFeed(self.spool, store, append=self.writer.events) if store is not None else None
        )
        self.sites = SiteSnapshots(self.spool, registry, store, append=self.writer.events)
        self.drain = DrainProcess(settings, POLICIES[settings.readings_at_limit])
        self._next_sites_ms = 0
        if self.sites.unplaced:
            log.info(
                "sites without a location are not on the monitoring centre's map: %s",
                ", ".join(self.sites.unplaced),
            )

    def _open_spool(self) -> Spool:
        return Spool(
            self.settings.spool_path,
            max_bytes=self.settings.spool_max_bytes,
            readings_at_limit=POLICIES[self.settings.readings_at_limit],
        )

    def start(self) -> None:
        """Export what the alert store holds that the spool has not seen; start draining."""
        self.step(self.clock.now_ms())
        self.writer.start()
        self.drain.start()
        log.info(
            "storage: spool %s (%s points waiting), draining to %s bucket %s",
            self.settings.spool_path,
            self.spool.depth(),
            self.settings.influx_url,
            self.settings.influx_bucket,
        )

    def step(self, now_ms: int) -> None:
        """Feed the spool: new audit rows, the drill windows, and a site snapshot when due or
        when the alarms changed; read the drain's counters, restart it if it died."""
        if self.store is not None:
            self.readings.drill_windows = drill_windows(self.store, now_ms)
        exported = self.alerts.catch_up() if self.alerts is not None else 0
        # The map changes colour within a second of an alarm, not at the next snapshot.
        if exported or now_ms >= self._next_sites_ms:
            self.sites.write(now_ms)
            self._next_sites_ms = now_ms + int(self.settings.site_every_s * 1000)
        self.drain.poll(time.monotonic())

    def status(self) -> StorageStatus:
        """Backlog and progress (the drain's counters as of its last report)."""
        stats = self.drain.stats
        return StorageStatus(
            backlog=self.spool.depth(),
            spool_bytes=self.spool.size_bytes(),
            written=stats.written if stats else 0,
            last_error=(stats.last_error or None) if stats else None,
        )

    def catch_up(self) -> None:
        """Export the audit rows written since the last step (at stop, on the loop thread:
        the alert store belongs to it)."""
        if self.alerts is not None:
            self.alerts.catch_up()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Store the queued readings, stop the drain (what it has not sent stays in the spool
        for the next start); may run on another thread than the loop's."""
        self.writer.stop(timeout_s)
        self.drain.stop(timeout_s)
        stats = self.spool.stats
        drained = self.drain.stats
        log.info(
            "storage: %s points spooled and %s sent to InfluxDB this run; %s stay in the spool "
            "for the next start",
            stats.appended,
            drained.written if drained else 0,
            self.spool.depth(),
        )
        lost = stats.dropped_readings + stats.refused_readings
        rejected = drained.rejected if drained else 0
        if lost or rejected:
            log.warning(
                "storage: %s readings not stored because the spool was full (policy %s); "
                "%s lines refused by InfluxDB (kept in the spool's rejected table)",
                lost,
                self.settings.readings_at_limit,
                rejected,
            )
        self.spool.close()
