"""The runner's synchronous core without a broker: messages in, events and publishes out."""

from __future__ import annotations

import json

import pytest

from earlywarn.clock import ManualClock
from earlywarn.model import AlarmEvent, Change, Level
from earlywarn.pipeline import Pipeline
from earlywarn.registry import Registry
from ingest.mqtt import Inbound

NOW = 1_795_284_000_000
GAS = "ew/v1/laojie-restaurants/r-03/G1/up"
TANK = "ew/v1/huaxin-chem/tank-farm-1/T101/up"


class Recorder:
    """Records events (a sink) and publishes (the injected publish function)."""

    def __init__(self) -> None:
        self.events: list[AlarmEvent] = []
        self.published: list[tuple[str, dict[str, object], bool]] = []

    def emit(self, event: AlarmEvent) -> None:
        self.events.append(event)

    def publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self.published.append((topic, json.loads(payload), retain))


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def pipeline(registry: Registry, rec: Recorder) -> Pipeline:
    return Pipeline(registry, ManualClock(NOW), [rec], rec.publish)


def msg(topic: str, doc: object, ts_offset_ms: int = 0) -> Inbound:
    if isinstance(doc, dict) and "ts" not in doc:
        doc = {"ts": NOW + ts_offset_ms, **doc}
    return Inbound(topic, json.dumps(doc).encode(), 1, 1, NOW)


def test_a_gas_leak_rises_and_clears_as_one_alarm(pipeline: Pipeline, rec: Recorder) -> None:
    for i, v in enumerate([3, 27, 52, 30, 12]):
        pipeline.handle(msg(GAS, {"v": v}, i * 1000))
    assert [(e.change, e.level) for e in rec.events] == [
        (Change.RAISED, Level.ORANGE),
        (Change.LEVEL_CHANGED, Level.RED),
        (Change.LEVEL_CHANGED, Level.ORANGE),
        (Change.CLEARED, None),
    ]
    assert len({e.alarm_id for e in rec.events}) == 1
    first = rec.events[0]
    assert first.enterprise_name and first.site_name and first.sensor_name
    assert first.message.endswith("超过一级报警 25.0 %LEL（橙色）")
    assert pipeline.counters.alarms == {"orange": 2, "red": 1, "cleared": 1}


def test_the_message_reads_like_the_duty_officer_would_say_it(
    pipeline: Pipeline, rec: Recorder
) -> None:
    pipeline.handle(msg(TANK, {"values": {"level": 17.62}}))
    assert rec.events[0].message == "罐区一 T101甲醇储罐液位 17.62 m，超过高高限 17.50 m（红色）"


def test_retained_alarm_state_carries_the_highest_active_level(
    pipeline: Pipeline, rec: Recorder
) -> None:
    pipeline.handle(msg(GAS, {"v": 60}))
    pipeline.handle(msg(GAS, {"v": 0}, 1000))
    retained = [(t, d) for t, d, retain in rec.published if retain]
    assert [t for t, _ in retained] == ["ew/v1/laojie-restaurants/r-03/G1/alarm"] * 2
    assert retained[0][1]["level"] == "red" and len(retained[0][1]["active"]) == 1  # type: ignore[arg-type]
    assert retained[1][1]["level"] is None and retained[1][1]["active"] == []


def test_duplicates_and_late_readings_raise_nothing(pipeline: Pipeline, rec: Recorder) -> None:
    pipeline.handle(msg(GAS, {"v": 60}, 1000))
    pipeline.handle(msg(GAS, {"v": 60}, 1000))  # redelivered duplicate
    pipeline.handle(msg(GAS, {"v": 0}, 0))  # older than what we have seen
    assert len(rec.events) == 1
    assert pipeline.counters.stale == 2


def test_bad_messages_go_to_the_deadletter_and_processing_goes_on(
    pipeline: Pipeline, rec: Recorder
) -> None:
    pipeline.handle(Inbound(GAS, b"\x00garbage", 1, 1, NOW))
    pipeline.handle(msg(GAS, {"v": 55}))
    deadletters = [d for t, d, _ in rec.published if t == "ew/v1/deadletter"]
    assert [d["reason"] for d in deadletters] == ["bad_json"]
    assert pipeline.counters.rejected == {"bad_json": 1}
    assert [e.level for e in rec.events] == [Level.RED]


def test_a_failing_sink_does_not_stop_the_others(registry: Registry, rec: Recorder) -> None:
    class Broken:
        def emit(self, event: AlarmEvent) -> None:
            raise RuntimeError("channel down")

    pipeline = Pipeline(registry, ManualClock(NOW), [Broken(), rec], rec.publish)
    pipeline.handle(msg(GAS, {"v": 55}))
    assert [e.level for e in rec.events] == [Level.RED]


def test_an_internal_error_is_dead_lettered_not_raised(
    pipeline: Pipeline, rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: object) -> None:
        raise ZeroDivisionError

    monkeypatch.setattr(pipeline, "evaluate_many", explode)
    pipeline.handle(msg(GAS, {"v": 55}))
    assert pipeline.counters.rejected == {"internal_error": 1}
    assert [d["reason"] for t, d, _ in rec.published if t == "ew/v1/deadletter"] == [
        "internal_error"
    ]


def test_clock_ticks_raise_offline_for_sensors_never_heard_and_a_reading_clears(
    registry: Registry, rec: Recorder
) -> None:
    clock = ManualClock(NOW)
    pipeline = Pipeline(registry, clock, [rec], rec.publish)
    assert pipeline.tick(NOW) == []  # the watch starts
    assert pipeline.tick(NOW + 14_999) == []
    raised = pipeline.tick(NOW + 15_000)  # 3 x the gas detectors' 5 s interval
    gas_sensors = {s.uid for s in registry.sensors.values() if s.interval_s == 5}
    assert {e.sensor for e in raised} == gas_sensors
    assert all(e.rule == "offline" and e.level is Level.YELLOW for e in raised)
    assert "没有数据" in raised[0].message

    clock.set(NOW + 16_000)
    pipeline.handle(msg(GAS, {"v": 1}, 16_000))
    cleared = [e for e in rec.events if e.sensor.endswith("r-03/G1") and e.rule == "offline"]
    assert [e.change for e in cleared] == [Change.RAISED, Change.CLEARED]
    assert pipeline.tick(NOW + 17_000) == [], "nothing new: the others are still offline"


def test_offline_judges_arrival_not_the_device_clock(registry: Registry, rec: Recorder) -> None:
    """A device whose clock lags a minute, or a fast replay, is alive while data arrives."""
    clock = ManualClock(NOW)
    pipeline = Pipeline(registry, clock, [rec], rec.publish)
    pipeline.watch_only({"laojie-restaurants/r-03/G1"})
    for i in range(60):
        clock.set(NOW + i * 1000)
        pipeline.handle(msg(GAS, {"ts": NOW - 60_000 + i * 1000, "v": 1}))
        pipeline.tick(NOW + i * 1000)
    assert [e for e in rec.events if e.rule == "offline"] == []
    pipeline.tick(NOW + 59_000 + 15_000)  # now it really goes quiet: 15 s of no arrival
    assert [e.change for e in rec.events if e.rule == "offline"] == [Change.RAISED]


def _event_keys(events: list[AlarmEvent]) -> list[tuple[object, ...]]:
    return [(e.alarm_id, e.change, e.level, e.ts_ms, e.value, e.flapping) for e in events]


def test_a_batch_gives_what_the_same_messages_give_one_by_one(registry: Registry) -> None:
    """The runner hands over whatever arrived; batching must not change an event or its order
    (zone alarms, late and duplicate readings and bad messages included)."""
    north = "ew/v1/huaxin-chem/tank-farm-1/{}/up"
    script = [
        msg(GAS, {"v": 3}, 0),
        msg(north.format("GD-01"), {"v": 27}, 0),
        msg(GAS, {"v": 52}, 1000),
        msg(north.format("GD-02"), {"v": 26}, 1000),
        msg(GAS, {"v": 52}, 1000),  # duplicate
        Inbound(GAS, b"not json", 1, 1, NOW),
        msg(north.format("GD-01"), {"v": 2}, 500),  # late: ignored
        msg(TANK, {"values": {"level": 17.6}}, 2000),
        msg(north.format("GD-01"), {"v": 3}, 2000),
        msg(GAS, {"v": 12}, 3000),
    ]
    one, many = Recorder(), Recorder()
    single = Pipeline(registry, ManualClock(NOW), [one], one.publish)
    for m in script:
        single.handle(m)
    batched = Pipeline(registry, ManualClock(NOW), [many], many.publish)
    batched.handle_batch(script[:4])
    batched.handle_batch(script[4:])
    assert _event_keys(many.events) == _event_keys(one.events)
    assert any(e.sensor_id == "tank-farm-1-north" for e in many.events)
    assert many.published == one.published
    assert batched.counters.snapshot() == single.counters.snapshot()
