"""What goes into the storage spool: readings, alarm history, notifications, site status.

Three feeds, all writing line protocol (:mod:`storage.schema`) into the durable spool, from
where the drain sends it to InfluxDB:

- :class:`ReadingFeed` takes each batch of accepted readings from the pipeline, in one spool
  transaction, before the runner acknowledges the MQTT messages.
- :class:`AlertFeed` tails the alert store's audit log (transitions, acknowledgements, delivery
  attempts) and records how far it got *in the same spool transaction* as the points it made.
  The audit log is already durable and ordered, so this is an outbox: a crash at any moment
  neither loses an alarm point nor writes one twice, and the history in InfluxDB is exactly
  what the audit log says happened — acknowledgements included, which the monitoring
  centre's table shows.
- :class:`SiteSnapshots` writes, every minute, each located site's status (highest active
  level, or offline) for the monitoring centre's map, which InfluxQL alone cannot compute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from alerting.holds import Window, WindowKind
from alerting.lifecycle import AlarmRecord, State
from alerting.store import AlertStore
from alerting.store_audit import AuditEntry, AuditKind
from earlywarn.model import Level, Reading
from earlywarn.registry import Registry
from storage.schema import alarm_line, notification_line, reading_line, site_line
from storage.spool import Klass, Spool

log = logging.getLogger(__name__)


class EventAppend(Protocol):
    """Where event lines go: straight into the spool, or queued for the runner's writer
    thread (:class:`earlywarn.storage_wiring.SpoolWriter`), which calls ``failed`` if it could
    not store them."""

    def __call__(
        self,
        lines: Sequence[str],
        cursor: tuple[str, int] | None = None,
        failed: Callable[[], None] | None = None,
    ) -> None: ...


def spool_events(spool: Spool) -> EventAppend:
    """An :class:`EventAppend` that stores at once, in the caller's thread (tests, tools)."""

    def append(
        lines: Sequence[str],
        cursor: tuple[str, int] | None = None,
        failed: Callable[[], None] | None = None,
    ) -> None:
        try:
            spool.append(lines, klass=Klass.EVENT, cursor=cursor)
        except Exception:
            if failed is not None:
                failed()
            raise

    return append


ACTIVE = (State.ACTIVE_UNACKED, State.ACTIVE_ACKED)
OFFLINE_RULE_KIND = "offline"


class ReadingFeed:
    """Accepted readings → ``reading`` points, one spool transaction per batch.

    Readings of a site or enterprise under a drill window carry the ``drill`` tag, so drill
    data can be told from real data in InfluxDB (``drill_windows`` is refreshed by the
    runtime from the alert store).
    """

    def __init__(self, spool: Spool, registry: Registry) -> None:
        self.spool = spool
        self.sensors = registry.sensors
        self.drill_windows: list[Window] = []

    def __call__(self, readings: Sequence[Reading]) -> None:
        windows = self.drill_windows
        lines = [
            reading_line(
                self.sensors[r.sensor],
                r,
                drill=r.drill
                or (bool(windows) and any(w.covers(r.sensor, r.ts_ms) for w in windows)),
            )
            for r in readings
        ]
        self.spool.append(lines, klass=Klass.READING)


class AlertFeed:
    """The alert store's audit log → ``alarm`` and ``notification`` points (an outbox)."""

    CURSOR = "alert-audit"

    def __init__(
        self,
        spool: Spool,
        store: AlertStore,
        *,
        batch: int = 1000,
        append: EventAppend | None = None,
    ) -> None:
        self.spool = spool
        self.store = store
        self.batch = batch
        self.append = append or spool_events(spool)
        self._records: dict[str, AlarmRecord] = {}
        # How far the export has got, lines queued included: the spool's cursor is read once
        # here and again only after an append failed (see ``_rewind``), so a step never
        # waits for the spool's lock.
        self._position: int | None = None

    def _rewind(self) -> None:
        """The queued lines were not stored: continue from the spool's cursor next step."""
        self._position = None

    def step(self) -> int:
        """Export the next audit rows; return how many were read (0: caught up)."""
        if self._position is None:
            self._position = self.spool.cursor(self.CURSOR)
        stored = since = self._position
        head = self.store.audit_head()[0]
        if since > head:
            # A new, empty alert store beside an old spool: start again from its first row.
            # Points exported twice are the same points (same tags and time), so harmless.
            log.warning(
                "the alert store's audit log ends at row %s but the spool had exported up to "
                "row %s: a different alert store? exporting it from the start",
                head,
                since,
            )
            since = 0
        rows = self.store.audit(since_seq=since, limit=self.batch)
        if not rows:
            if since != stored:
                self._position = since
                self.append([], (self.CURSOR, since), self._rewind)
            return 0
        lines: list[str] = []
        for row in rows:
            lines.extend(self._lines(row))
        self._position = rows[-1].seq
        self.append(lines, (self.CURSOR, rows[-1].seq), self._rewind)
        return len(rows)

    def catch_up(self) -> int:
        """Export everything there is now (at start and at stop); return the rows read."""
        total = 0
        while n := self.step():
            total += n
        return total

    def _record(self, alarm_id: str) -> AlarmRecord | None:
        record = self._records.get(alarm_id)
        if record is None:
            record = self.store.get(alarm_id)
            if record is not None:
                if len(self._records) > 10_000:
                    self._records.clear()
                self._records[alarm_id] = record
        return record

    def _lines(self, row: AuditEntry) -> list[str]:
        if row.alarm_id is None:
            return []
        if row.kind in (AuditKind.TRANSITION, AuditKind.ACK):
            return self._alarm_lines(row, row.alarm_id)
        if row.kind == AuditKind.ATTEMPT:
            record = self._record(row.alarm_id)
            if record is None:
                return []
            d = row.detail
            return [
                notification_line(
                    alarm_id=row.alarm_id,
                    enterprise=record.enterprise,
                    site=record.site,
                    person=str(d["person"]),
                    channel=str(d["channel"]),
                    outcome=str(d["outcome"]),
                    attempt=int(d["attempt"]),
                    ts_ms=row.ts_ms,
                    drill=record.drill,
                )
            ]
        return []

    def _alarm_lines(self, row: AuditEntry, alarm_id: str) -> list[str]:
        d = row.detail
        record = self._record(alarm_id)
        event: dict[str, Any] = d.get("event") or {}
        if record is None and not event:
            log.warning(
                "audit row %s: alarm %s is not in the store; not exported", row.seq, alarm_id
            )
            return []
        state = State(d["to_state"])
        level = Level[str(d["to_level"]).upper()] if d.get("to_level") else None

        def fact(key: str, fallback: object) -> Any:
            value = event.get(key)
            return fallback if value is None else value

        value = fact("value", record.value if record else float("nan"))
        return [
            alarm_line(
                enterprise=str(fact("enterprise", record.enterprise if record else "")),
                site=str(fact("site", record.site if record else "")),
                sensor=str(fact("sensor_id", record.sensor_id if record else "")),
                kind=str(fact("kind", record.kind if record else "")),
                rule=str(fact("rule", record.rule if record else "")),
                rule_kind=str(fact("rule_kind", record.rule_kind if record else "")),
                level=level,
                state=state.value,
                severity=int(level) if state.active and level is not None else 0,
                value=float(value),
                message=str(fact("message", record.message if record else "")),
                alarm_id=alarm_id,
                ts_ms=int(d.get("ts_ms") or row.ts_ms),
                acked_by=str(d["by"]) if row.kind == AuditKind.ACK and d.get("by") else None,
                drill=record.drill if record else False,
            )
        ]


class SiteSnapshots:
    """Each located site's status now, for the monitoring centre's map.

    ``status`` is -1 when every sensor of the site is offline (grey on the map), else the
    highest level among its active alarms (1 blue … 4 red), 0 when none. Drill alarms do
    not colour the map: it shows the real state of the county. Sites without a ``location``
    in the registry cannot be placed on a map and are skipped.
    """

    def __init__(
        self,
        spool: Spool,
        registry: Registry,
        store: AlertStore | None,
        *,
        append: EventAppend | None = None,
    ) -> None:
        self.append = append or spool_events(spool)
        self.registry = registry
        self.store = store
        self.unplaced = [
            f"{s.enterprise}/{s.id}"
            for e in registry.enterprises.values()
            for s in e.sites
            if s.location is None
        ]

    def lines(self, now_ms: int) -> list[str]:
        """The snapshot lines of every located site at ``now_ms``."""
        records = (
            self.store.list_alarms(states=ACTIVE, drill=False, limit=1_000_000)
            if self.store is not None
            else []
        )
        levels: dict[tuple[str, str], int] = {}
        active: dict[tuple[str, str], int] = {}
        offline: dict[tuple[str, str], set[str]] = {}
        for r in records:
            key = (r.enterprise, r.site)
            active[key] = active.get(key, 0) + 1
            if r.level is not None:
                levels[key] = max(levels.get(key, 0), int(r.level))
            if r.rule_kind == OFFLINE_RULE_KIND:
                offline.setdefault(key, set()).add(r.sensor)
        lines = []
        for enterprise in self.registry.enterprises.values():
            for site in enterprise.sites:
                if site.location is None:
                    continue
                key = (enterprise.id, site.id)
                down = len(offline.get(key, ()))
                everything_down = bool(site.sensors) and down >= len(site.sensors)
                lines.append(
                    site_line(
                        enterprise=enterprise.id,
                        site=site.id,
                        name=site.name,
                        lat=site.location[0],
                        lon=site.location[1],
                        status=-1 if everything_down else levels.get(key, 0),
                        active=active.get(key, 0),
                        offline=down,
                        sensors=len(site.sensors),
                        ts_ms=now_ms,
                    )
                )
        return lines

    def write(self, now_ms: int) -> int:
        """Spool (or queue) the snapshot; return how many sites it holds."""
        lines = self.lines(now_ms)
        if lines:
            self.append(lines)
        return len(lines)


def drill_windows(store: AlertStore, now_ms: int) -> list[Window]:
    """The drill windows in force now."""
    return [w for w in store.windows(at_ms=now_ms) if w.kind is WindowKind.DRILL]
