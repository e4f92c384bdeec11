"""Sample data over the example registry, written with :mod:`storage.schema`.

Six hours of readings for every sensor (thirty for rain gauges, so that a 24 h rolling sum is
full from the first point on screen), alarms raised, acknowledged, escalated and cleared,
notifications, and per-site snapshots including a site whose only sensor is offline. The
expected answers are kept beside the data so the tests compare queries with them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from earlywarn.model import Level, Reading, Sensor
from earlywarn.registry import Registry
from storage.schema import alarm_line, notification_line, reading_line, site_line

MINUTE_MS = 60_000
BUCKET_MS = 5 * MINUTE_MS
HOUR_MS = 60 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class ExpectedAlarm:
    """An alarm that must be listed as not cleared."""

    enterprise: str
    site: str
    sensor: str
    rule: str
    state: str
    severity: int
    alarm_id: str
    acked_by: str | None


@dataclass
class Sample:
    """The lines to write and what the queries must answer."""

    start_ms: int
    end_ms: int
    lines: list[str] = field(default_factory=list)
    readings: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    active: list[ExpectedAlarm] = field(default_factory=list)
    site_status: dict[tuple[str, str], int] = field(default_factory=dict)
    notifications: dict[tuple[str, str, str], tuple[str, int]] = field(default_factory=dict)
    raises_per_level: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def read(self, sensor: Sensor, ts_ms: int, value: float, *, drill: bool = False) -> None:
        """A reading, written with the storage schema and remembered (not drills)."""
        self.lines.append(reading_line(sensor, Reading(sensor.uid, ts_ms, value), drill=drill))
        if not drill:
            self.readings[sensor.uid].append((ts_ms, value))


def _value(sensor: Sensor, step: int) -> float:
    """A deterministic value inside the sensor's range that moves every step."""
    low, high = sensor.range
    span = high - low
    return round(low + span * (0.2 + 0.1 * ((step * 7 + len(sensor.id)) % 5) / 5), 3)


RAIN_PATTERN = (0.0, 0.5, 2.0, 0.0, 1.5, 3.0, 0.0, 0.0, 4.5, 1.0, 0.0)


def build_sample(registry: Registry, end_ms: int) -> Sample:
    """The sample ending at ``end_ms`` (a multiple of five minutes)."""
    start_ms = end_ms - 6 * HOUR_MS
    sample = Sample(start_ms=start_ms, end_ms=end_ms)
    sensors = registry.sensors
    offline_uid = "laojie-restaurants/r-04/G1"
    for uid in sorted(sensors):
        sensor = sensors[uid]
        if sensor.kind == "rainfall":
            # Interval gauge: rain since the last report, every 5 min for 30 h, with dry gaps
            # (no reading at all) and a second report in some buckets.
            first = end_ms - 30 * HOUR_MS
            for step, ts in enumerate(range(first, end_ms, BUCKET_MS)):
                if step % 13 == 5:
                    continue
                rain = RAIN_PATTERN[(step + len(uid)) % len(RAIN_PATTERN)]
                sample.read(sensor, ts + 60_000, rain)
                if step % 4 == 0:
                    sample.read(sensor, ts + 180_000, 0.5)
        elif sensor.kind == "water_level":
            low, _high = sensor.range
            for step, ts in enumerate(range(start_ms - HOUR_MS, end_ms, BUCKET_MS)):
                sample.read(sensor, ts, round(low + 4 + 0.02 * step + 0.05 * (step % 3), 3))
        else:
            stop = end_ms - 2 * HOUR_MS if uid == offline_uid else end_ms
            for step, ts in enumerate(range(start_ms - HOUR_MS, stop, 150_000)):
                sample.read(sensor, ts, _value(sensor, step))
    # A drill reading far above anything real: it must never show.
    sample.read(sensors["huaxin-chem/tank-farm-1/GD-01"], end_ms - 30 * MINUTE_MS, 99.0, drill=True)
    _alarms(sample, registry)
    _snapshots(sample, registry)
    return sample


def _alarm(
    sample: Sample,
    sensor: Sensor,
    rule: str,
    rule_kind: str,
    level: Level | None,
    state: str,
    alarm_id: str,
    ts_ms: int,
    acked_by: str | None = None,
    *,
    drill: bool = False,
) -> None:
    sample.lines.append(
        alarm_line(
            enterprise=sensor.enterprise,
            site=sensor.site,
            sensor=sensor.id,
            kind=sensor.kind,
            rule=rule,
            rule_kind=rule_kind,
            level=level,
            state=state,
            severity=int(level) if level is not None and state.startswith("active") else 0,
            value=float("nan") if rule_kind == "offline" else 30.0,
            message=f"{sensor.name} {state}",
            alarm_id=alarm_id,
            ts_ms=ts_ms,
            acked_by=acked_by,
            drill=drill,
        )
    )
    in_range = sample.start_ms <= ts_ms <= sample.end_ms
    if state == "active-unacked" and level is not None and in_range and not drill:
        sample.raises_per_level[level.label] += 1


def _alarms(sample: Sample, registry: Registry) -> None:
    s = registry.sensors
    e = sample.end_ms
    m = MINUTE_MS
    gd01 = s["huaxin-chem/tank-farm-1/GD-01"]
    # An earlier occurrence of the same alarm, acknowledged by someone else and cleared.
    _alarm(
        sample,
        gd01,
        "combustible_gas",
        "threshold",
        Level.ORANGE,
        "active-unacked",
        "a0",
        e - 300 * m,
    )
    _alarm(
        sample,
        gd01,
        "combustible_gas",
        "threshold",
        Level.ORANGE,
        "active-acked",
        "a0",
        e - 290 * m,
        "hx-tech-li",
    )
    _alarm(sample, gd01, "combustible_gas", "threshold", None, "cleared", "a0", e - 280 * m)
    # The current one: orange, acknowledged, then red: acked_by must come from the ack point.
    _alarm(
        sample,
        gd01,
        "combustible_gas",
        "threshold",
        Level.ORANGE,
        "active-unacked",
        "a1",
        e - 60 * m,
    )
    _alarm(
        sample,
        gd01,
        "combustible_gas",
        "threshold",
        Level.ORANGE,
        "active-acked",
        "a1",
        e - 55 * m,
        "hx-ops-zhou",
    )
    _alarm(
        sample, gd01, "combustible_gas", "threshold", Level.RED, "active-acked", "a1", e - 50 * m
    )
    sample.active.append(
        ExpectedAlarm(
            "huaxin-chem",
            "tank-farm-1",
            "GD-01",
            "combustible_gas",
            "active-acked",
            4,
            "a1",
            "hx-ops-zhou",
        )
    )
    # A drill alarm: never listed.
    _alarm(
        sample,
        s["huaxin-chem/tank-farm-1/GD-02"],
        "combustible_gas",
        "threshold",
        Level.RED,
        "active-unacked",
        "drill-1",
        e - 40 * m,
        drill=True,
    )
    # Returned to normal but not acknowledged: still listed.
    gd11 = s["huaxin-chem/loading-bay/GD-11"]
    _alarm(
        sample,
        gd11,
        "combustible_gas",
        "threshold",
        Level.ORANGE,
        "active-unacked",
        "a2",
        e - 120 * m,
    )
    _alarm(sample, gd11, "combustible_gas", "threshold", None, "cleared-unacked", "a2", e - 110 * m)
    sample.active.append(
        ExpectedAlarm(
            "huaxin-chem",
            "loading-bay",
            "GD-11",
            "combustible_gas",
            "cleared-unacked",
            0,
            "a2",
            None,
        )
    )
    # An offline detector at the loading bay, active.
    gd12 = s["huaxin-chem/loading-bay/GD-12"]
    _alarm(sample, gd12, "offline", "offline", Level.YELLOW, "active-unacked", "a3", e - 30 * m)
    sample.active.append(
        ExpectedAlarm(
            "huaxin-chem", "loading-bay", "GD-12", "offline", "active-unacked", 2, "a3", None
        )
    )
    # A restaurant alarm raised, cleared, acknowledged: gone.
    r02 = s["laojie-restaurants/r-02/G1"]
    _alarm(
        sample,
        r02,
        "combustible_gas",
        "threshold",
        Level.ORANGE,
        "active-unacked",
        "a4",
        e - 200 * m,
    )
    _alarm(sample, r02, "combustible_gas", "threshold", None, "cleared-unacked", "a4", e - 190 * m)
    _alarm(
        sample, r02, "combustible_gas", "threshold", None, "cleared", "a4", e - 180 * m, "lj-ops-wu"
    )
    # The restaurant whose detector stopped reporting: offline, acknowledged.
    r04 = s["laojie-restaurants/r-04/G1"]
    _alarm(sample, r04, "offline", "offline", Level.YELLOW, "active-unacked", "a5", e - 110 * m)
    _alarm(
        sample,
        r04,
        "offline",
        "offline",
        Level.YELLOW,
        "active-acked",
        "a5",
        e - 100 * m,
        "lj-ops-wu",
    )
    sample.active.append(
        ExpectedAlarm(
            "laojie-restaurants", "r-04", "G1", "offline", "active-acked", 2, "a5", "lj-ops-wu"
        )
    )
    # A rainstorm signal raised 20 h ago and never cleared: listed whatever the time range.
    rg1 = s["qingjiang-water/p1/RG-P1"]
    _alarm(
        sample,
        rg1,
        "rainstorm_cma",
        "accumulation",
        Level.BLUE,
        "active-unacked",
        "a6",
        e - 20 * 60 * m,
    )
    sample.active.append(
        ExpectedAlarm(
            "qingjiang-water", "p1", "RG-P1", "rainstorm_cma", "active-unacked", 1, "a6", None
        )
    )
    wl1 = s["qingjiang-water/h1/WL-H1"]
    _alarm(sample, wl1, "water_level", "threshold", Level.BLUE, "active-unacked", "a7", e - 90 * m)
    _alarm(
        sample,
        wl1,
        "water_level",
        "threshold",
        Level.BLUE,
        "active-acked",
        "a7",
        e - 80 * m,
        "qjw-duty-ma",
    )
    sample.active.append(
        ExpectedAlarm(
            "qingjiang-water", "h1", "WL-H1", "water_level", "active-acked", 1, "a7", "qjw-duty-ma"
        )
    )

    def notify(
        alarm_id: str, sensor: Sensor, person: str, channel: str, outcomes: list[str], ts: int
    ) -> None:
        for attempt, outcome in enumerate(outcomes, start=1):
            sample.lines.append(
                notification_line(
                    alarm_id=alarm_id,
                    enterprise=sensor.enterprise,
                    site=sensor.site,
                    person=person,
                    channel=channel,
                    outcome=outcome,
                    attempt=attempt,
                    ts_ms=ts + attempt * m,
                )
            )
        sample.notifications[(alarm_id, person, channel)] = (outcomes[-1], len(outcomes))

    notify("a1", gd01, "hx-ops-zhou", "sms", ["sent"], e - 59 * m)
    notify("a1", gd01, "hx-tech-li", "voice", ["retry", "permanent"], e - 58 * m)
    notify("a5", r04, "lj-ops-wu", "sms", ["retry", "retry", "sent"], e - 109 * m)
    notify("a7", wl1, "qjw-duty-ma", "dingtalk", ["sent"], e - 89 * m)
    sample.lines.append(
        notification_line(
            alarm_id="drill-1",
            enterprise="huaxin-chem",
            site="tank-farm-1",
            person="hx-ops-zhou",
            channel="sms",
            outcome="sent",
            attempt=1,
            ts_ms=e - 39 * m,
            drill=True,
        )
    )


def _snapshots(sample: Sample, registry: Registry) -> None:
    final = {
        ("huaxin-chem", "tank-farm-1"): 4,
        ("huaxin-chem", "loading-bay"): 2,
        ("laojie-restaurants", "r-04"): -1,
        ("qingjiang-water", "p1"): 1,
        ("qingjiang-water", "h1"): 1,
    }
    for enterprise in registry.enterprises.values():
        for site in enterprise.sites:
            assert site.location is not None
            lat, lon = site.location
            status = final.get((enterprise.id, site.id), 0)
            sample.site_status[(enterprise.id, site.id)] = status
            for ts in range(sample.start_ms, sample.end_ms + 1, 10 * MINUTE_MS):
                # Earlier snapshots differ (status 3), so only last() gives the final status.
                now = status if ts == sample.end_ms else 3
                sample.lines.append(
                    site_line(
                        enterprise=enterprise.id,
                        site=site.id,
                        name=site.name,
                        lat=lat,
                        lon=lon,
                        status=now,
                        active=max(now, 0),
                        offline=1 if now == -1 else 0,
                        sensors=len(site.sensors),
                        ts_ms=ts,
                    )
                )
