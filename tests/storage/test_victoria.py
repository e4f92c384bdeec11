"""The whole write path against a real server: Spool → Drainer → InfluxWriter (influxdb-client,
HTTP, gzip) → VictoriaMetrics, then exported and compared point by point.

VictoriaMetrics stores each numeric field as a series ``<measurement>_<field>`` with the tags as
labels (string fields become zeros, so they are left out of the comparison). The server here
does *not* deduplicate, so a point sent twice would show twice: these tests count exactly.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from earlywarn.model import Level, Reading, Sensor
from storage import schema
from storage.drain import Drainer, SinkState
from storage.spool import Klass, Spool
from storage.writer import InfluxWriter
from tests.services.victoria import VictoriaMetrics
from tests.storage.lineparse import parse

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def sensor(enterprise: str, site: str, sensor_id: str, kind: str) -> Sensor:
    return Sensor(
        uid=f"{enterprise}/{site}/{sensor_id}",
        enterprise=enterprise,
        site=site,
        id=sensor_id,
        kind=kind,
        name="1号储罐",
        unit="m",
        range=(0.0, 20.0),
        interval_s=10.0,
        device=sensor_id,
        channel=None,
        rules=(),
    )


def expected_points(lines: list[str]) -> list[tuple[str, str, int, float]]:
    """What VictoriaMetrics should hold for ``lines``: one sample per numeric field."""
    points = []
    for line in lines:
        point = parse(line)
        labels = ",".join(f"{k}={v}" for k, v in sorted(point.tags.items()))
        for key, value in point.fields.items():
            if isinstance(value, str):
                continue
            points.append((f"{point.measurement}_{key}", labels, point.ts, float(value)))
    return sorted(points)


def numeric(
    points: list[tuple[str, str, int, float]], lines: list[str]
) -> list[tuple[str, str, int, float]]:
    """Leave out the series VictoriaMetrics made of string fields."""
    strings = set()
    for line in lines:
        point = parse(line)
        strings |= {
            f"{point.measurement}_{k}" for k, v in point.fields.items() if isinstance(v, str)
        }
    return [p for p in points if p[0] not in strings]


def drain(drainer: Drainer) -> None:
    for _ in range(10_000):
        if drainer.spool.depth() == 0:
            return
        assert drainer.step() == 0.0 or drainer.spool.depth() == 0
    raise AssertionError("the spool did not drain")


def test_readings_alarms_notifications_and_sites_arrive_exactly(
    victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    odd = sensor("化工 厂,A=1", "tank farm", "LT-101", "level")
    plain = sensor("chem", "gas", "GD-7", "gas")
    readings = [
        schema.reading_line(
            odd, Reading(odd.uid, T0 + i * 1000, round(10 + i * 0.125, 3), quality=i % 2)
        )
        for i in range(200)
    ] + [
        schema.reading_line(plain, Reading(plain.uid, T0 + i * 500, float(i)), drill=i % 10 == 0)
        for i in range(300)
    ]
    events = [
        schema.alarm_line(
            enterprise="chem",
            site="gas",
            sensor="GD-7",
            kind="gas",
            rule="lel",
            rule_kind="threshold",
            level=Level.ORANGE,
            state="active-unacked",
            severity=3,
            value=25.5,
            message="可燃气体浓度 25.5 %LEL,\n请立即处置",
            alarm_id="a-1",
            ts_ms=T0 + 10,
        ),
        schema.alarm_line(
            enterprise="chem",
            site="gas",
            sensor="GD-7",
            kind="gas",
            rule="lel",
            rule_kind="threshold",
            level=None,
            state="cleared",
            severity=0,
            value=float("nan"),
            message="恢复正常",
            alarm_id="a-1",
            ts_ms=T0 + 20,
            acked_by="wang",
            drill=True,
        ),
        schema.notification_line(
            alarm_id="a-1",
            enterprise="chem",
            site="gas",
            person="wang",
            channel="voice",
            outcome="sent",
            attempt=2,
            ts_ms=T0 + 11,
        ),
        schema.site_line(
            enterprise="chem",
            site="gas",
            name="幸福路餐饮街",
            lat=30.5928,
            lon=114.3055,
            status=3,
            active=1,
            offline=0,
            sensors=12,
            ts_ms=T0 + 60_000,
        ),
    ]
    with (
        Spool(tmp_path / "spool.db", max_bytes=10**9) as spool,
        InfluxWriter(victoria.url, "token", "county", "earlywarn") as writer,
    ):
        spool.append(readings[:250], klass=Klass.READING)
        spool.append(events, klass=Klass.EVENT)
        spool.append(readings[250:], klass=Klass.READING)
        drainer = Drainer(spool, writer, batch_lines=128)
        drain(drainer)
        assert drainer.stats.written == len(readings) + len(events)
        assert drainer.stats.rejected == 0
    lines = readings + events
    assert numeric(victoria.points(), lines) == expected_points(lines)
    # spot-check the escaping survived the trip: tag values with space, comma, = and Chinese
    labels = {s.labels["enterprise"] for s in victoria.export('{__name__="reading_value"}')}
    assert labels == {"化工 厂,A=1", "chem"}
    drill = victoria.export('{__name__="reading_value",drill="true"}')
    assert [len(s.timestamps) for s in drill] == [30]


def test_an_outage_loses_nothing_and_duplicates_nothing(
    victoria: VictoriaMetrics, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Stop the server, keep spooling 10,000 readings (appends succeed, the drainer backs off),
    restart it, drain: every point arrives exactly once."""
    caplog.set_level(logging.INFO, logger="storage")
    gauges = [sensor("water", f"st{i}", f"RG-{i}", "rain") for i in range(10)]

    def batch(k: int) -> list[str]:
        return [
            schema.reading_line(g, Reading(g.uid, T0 + (k * 100 + i) * 1000, float(k * 100 + i)))
            for i in range(100)
            for g in gauges
        ]

    clock = Clock()
    with (
        Spool(tmp_path / "spool.db", max_bytes=10**9) as spool,
        InfluxWriter(victoria.url, "token", "county", "earlywarn", timeout_s=2) as writer,
    ):
        drainer = Drainer(spool, writer, batch_lines=5000, now=clock)
        spool.append(batch(0), klass=Klass.READING)
        drain(drainer)  # up: the first thousand are in
        victoria.stop()
        delays = []
        for k in range(1, 11):
            assert spool.append(batch(k), klass=Klass.READING) == 1000
            delay = drainer.step()
            delays.append(delay)
            clock.t += delay
        assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
        assert drainer.stats.state is SinkState.DOWN
        assert spool.depth() == 10_000
        victoria.start()  # same port, same data
        drain(drainer)
        after = drainer.stats
        assert after.state is SinkState.UP
        assert after.written == 11_000
    written = [line for k in range(11) for line in batch(k)]
    points = victoria.points('{__name__=~"reading_.*"}')
    assert len(points) == 2 * 11_000  # value and quality, each exactly once
    assert points == expected_points(written)
    messages = [r.getMessage() for r in caplog.records if r.name == "storage.drain"]
    assert any("unreachable (connection refused); 1,000 points waiting" in m for m in messages)
    assert any("taking writes again" in m for m in messages)
    assert messages[-1].startswith("Spool drained")
