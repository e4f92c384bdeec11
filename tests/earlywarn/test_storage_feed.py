"""The feeds into the storage spool: readings, the alert store's audit log, site snapshots.

Real alert store, real spool (both SQLite files); the lines are read back with the tests'
line-protocol parser, which follows the InfluxDB reference.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from alerting.holds import Scope, Window, WindowKind
from alerting.store import AlertStore
from earlywarn.model import AlarmEvent, Change, Level, Reading
from earlywarn.registry import Registry
from earlywarn.storage_feed import AlertFeed, ReadingFeed, SiteSnapshots, drill_windows
from storage.spool import Spool
from tests.alerting.test_lifecycle import event
from tests.storage.lineparse import Point, parse

T101 = "huaxin-chem/tank-farm-1/T101-LT"
H = 3_600_000


def spooled(spool: Spool) -> list[Point]:
    return [parse(line) for line in spool.peek(100_000).lines]


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool.db", max_bytes=10**9)


@pytest.fixture
def store(tmp_path: Path) -> AlertStore:
    return AlertStore(tmp_path / "alerts.db")


def offline(sensor: str, ts: int) -> AlarmEvent:
    e = event(Change.RAISED, Level.YELLOW, None, ts, start_ms=ts, sensor=sensor, rule="offline")
    return replace(e, rule_kind="offline")


def test_readings_become_reading_points_with_their_sensor_tags(
    spool: Spool, registry: Registry
) -> None:
    feed = ReadingFeed(spool, registry)
    feed([Reading(T101, 1_000, 12.5), Reading(T101, 2_000, 12.75, quality=3)])
    points = spooled(spool)
    assert [(p.fields["value"], p.fields["quality"], p.ts) for p in points] == [
        (12.5, 0, 1_000),
        (12.75, 3, 2_000),
    ]
    assert points[0].measurement == "reading"
    assert points[0].tags == {
        "enterprise": "huaxin-chem",
        "site": "tank-farm-1",
        "sensor": "T101-LT",
        "kind": "tank_level",
    }


def test_readings_in_a_drill_window_carry_the_drill_tag(
    spool: Spool, store: AlertStore, registry: Registry
) -> None:
    window = Window(WindowKind.DRILL, Scope.SITE, "huaxin-chem/tank-farm-1", 0, H, "zhou", "drill")
    store.add_window(window, 0)
    feed = ReadingFeed(spool, registry)
    feed.drill_windows = drill_windows(store, 10)
    other_sensor = restaurant(registry, 0)
    feed([Reading(T101, 1_000, 12.5), Reading(T101, H + 1, 12.5), Reading(other_sensor, 1_000, 1)])
    # A reading its publisher marked as drill data is one, window or not.
    feed([Reading(other_sensor, 2_000, 1, drill=True)])
    assert [p.tags.get("drill") for p in spooled(spool)] == ["true", None, None, "true"]


def test_the_audit_log_becomes_alarm_and_notification_points_once(
    tmp_path: Path, spool: Spool, store: AlertStore
) -> None:
    raised = event(Change.RAISED, Level.ORANGE, None, 1_000, start_ms=1_000)
    store.apply_event(raised, 1_000)
    store.record_attempt(
        alarm_id=raised.alarm_id,
        person="hx-ops-zhou",
        channel="sms",
        address="+8613800000000",
        outcome="sent",
        detail="ok",
        attempt=1,
        now_ms=1_500,
    )
    store.ack(raised.alarm_id, "hx-ops-zhou", "web", "valve closed", 2_000)
    store.apply_event(event(Change.CLEARED, None, Level.ORANGE, 3_000, start_ms=1_000), 3_000)

    feed = AlertFeed(spool, store)
    assert feed.catch_up() > 0
    points = spooled(spool)
    alarms = [p for p in points if p.measurement == "alarm"]
    assert [(p.fields["state"], p.tags["level"], p.fields["severity"], p.ts) for p in alarms] == [
        ("active-unacked", "orange", 3, 1_000),
        ("active-acked", "orange", 3, 2_000),
        ("cleared", "none", 0, 3_000),
    ]
    assert alarms[1].fields["acked_by"] == "hx-ops-zhou"
    assert "acked_by" not in alarms[0].fields
    assert alarms[0].tags == {
        "enterprise": "huaxin-chem",
        "site": "tank-farm-1",
        "sensor": "T101-LT",
        "kind": "tank_level",
        "rule": "tank_level_high",
        "level": "orange",
    }
    assert alarms[0].fields["alarm_id"] == raised.alarm_id
    assert alarms[0].fields["value"] == 17.6
    (sms,) = [p for p in points if p.measurement == "notification"]
    assert sms.tags == {
        "alarm_id": raised.alarm_id,
        "enterprise": "huaxin-chem",
        "site": "tank-farm-1",
        "person": "hx-ops-zhou",
        "channel": "sms",
    }
    assert (sms.fields, sms.ts) == ({"outcome": "sent", "attempt": 1}, 1_500)

    # Caught up: nothing more now, and a new spool object on the same file knows it too.
    assert feed.step() == 0
    again = Spool(tmp_path / "spool.db", max_bytes=10**9)
    assert AlertFeed(again, store).catch_up() == 0
    assert again.depth() == len(points)


def test_the_cursor_moves_only_with_the_points(
    spool: Spool, store: AlertStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spool that cannot take the points keeps the cursor where it was: nothing skipped."""
    store.apply_event(event(Change.RAISED, Level.RED, None, 1_000, start_ms=1_000), 1_000)
    feed = AlertFeed(spool, store)

    def full(*_args: object, **_kwargs: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(spool, "append", full)
    with pytest.raises(OSError, match="disk full"):
        feed.step()
    monkeypatch.undo()
    assert spool.cursor(AlertFeed.CURSOR) == 0
    assert feed.catch_up() > 0
    assert [p.fields["state"] for p in spooled(spool)] == ["active-unacked"]


def test_a_new_alert_store_is_exported_from_its_start(
    tmp_path: Path, spool: Spool, store: AlertStore
) -> None:
    for i in range(3):
        e = event(Change.RAISED, Level.BLUE, None, 1_000 + i, start_ms=1_000 + i, rule=f"r{i}")
        store.apply_event(e, 1_000 + i)
    AlertFeed(spool, store).catch_up()
    fresh = AlertStore(tmp_path / "other.db")
    fresh.apply_event(event(Change.RAISED, Level.RED, None, 9_000, start_ms=9_000), 9_000)
    before = spool.depth()
    AlertFeed(spool, fresh).catch_up()
    assert spool.depth() == before + 1


def test_site_snapshots_colour_each_located_site(
    spool: Spool, store: AlertStore, registry: Registry
) -> None:
    store.apply_event(event(Change.RAISED, Level.YELLOW, None, 1_000, start_ms=1_000), 1_000)
    store.apply_event(
        event(Change.RAISED, Level.RED, None, 1_000, start_ms=1_000, rule="tank_level_hh"),
        1_000,
    )
    drill = event(
        Change.RAISED, Level.RED, None, 1_000, start_ms=1_000, sensor=restaurant(registry, 0)
    )
    store.apply_event(drill, 1_000, drill=True)
    site = registry.site("laojie-restaurants", restaurant(registry, 1).split("/")[1])
    assert site is not None
    for sensor in site.sensors:
        store.apply_event(offline(sensor.uid, 2_000), 2_000)

    snapshots = SiteSnapshots(spool, registry, store)
    written = snapshots.write(5_000)
    points = {(p.tags["enterprise"], p.tags["site"]): p for p in spooled(spool)}
    located = sum(
        1 for e in registry.enterprises.values() for s in e.sites if s.location is not None
    )
    assert written == len(points) == located
    farm = points["huaxin-chem", "tank-farm-1"]
    assert (farm.fields["status"], farm.fields["active"], farm.ts) == (4, 2, 5_000)
    assert farm.fields["lat"] == 31.5342
    assert points["laojie-restaurants", site.id].fields["status"] == -1
    drilled = points["laojie-restaurants", restaurant(registry, 0).split("/")[1]]
    assert (drilled.fields["status"], drilled.fields["active"]) == (0, 0), "drills stay off"
    assert all(p.measurement == "site" for p in points.values())


def restaurant(registry: Registry, i: int) -> str:
    """The uid of the first sensor of the i-th restaurant site."""
    return registry.enterprises["laojie-restaurants"].sites[i].sensors[0].uid
