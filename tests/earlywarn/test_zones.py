"""Zones: reading ``zones:`` from the registry, and zone alarms raised by the pipeline.

The pipeline tests use the shipped example: the north side of 华信化工's tank farm
(GD-01, GD-02) raises a red zone alarm when both detectors are at orange or above; GD-03 and
GD-04 are on the south side. The registry tests write the small inline registry of
``test_registry`` with one more detector and a zone, changed one line at a time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from earlywarn.clock import ManualClock
from earlywarn.model import AlarmEvent, Change, Level, Reading
from earlywarn.pipeline import Pipeline
from earlywarn.registry import Registry, load_registry
from earlywarn.yamlsource import Problem
from earlywarn.zones import Zone
from ingest.mqtt import Inbound
from rules.composite import CompositeRule
from tests.earlywarn.test_registry import (
    ACME,
    edit,
    expect,
    line_no,
    only,
    problems_of,
    write_registry,
)

NOW = 1_795_284_000_000
NORTH = "huaxin-chem/tank-farm-1/tank-farm-1-north"
NORTH_TOPIC = "ew/v1/huaxin-chem/tank-farm-1/tank-farm-1-north/alarm"


def topic(detector: str) -> str:
    return f"ew/v1/huaxin-chem/tank-farm-1/{detector}/up"


class Recorder:
    """Records events (a sink) and publishes (the injected publish function)."""

    def __init__(self) -> None:
        self.events: list[AlarmEvent] = []
        self.published: list[tuple[str, dict[str, object], bool]] = []

    def emit(self, event: AlarmEvent) -> None:
        self.events.append(event)

    def publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self.published.append((topic, json.loads(payload), retain))

    def zone_events(self) -> list[AlarmEvent]:
        return [e for e in self.events if e.kind == "zone"]


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def pipeline(registry: Registry, rec: Recorder) -> Pipeline:
    return Pipeline(registry, ManualClock(NOW), [rec], rec.publish)


def gas(pipeline: Pipeline, detector: str, value: float, offset_ms: int) -> None:
    """One reading of a gas detector of tank farm 1 through the whole pipeline (MQTT in)."""
    doc = {"ts": NOW + offset_ms, "v": value}
    pipeline.handle(Inbound(topic(detector), json.dumps(doc).encode(), 1, 1, NOW))


# --- the example registry -------------------------------------------------------------------


def test_the_example_has_a_north_zone_of_two_detectors(registry: Registry) -> None:
    zone = registry.zones[NORTH]
    assert (zone.enterprise, zone.site, zone.id, zone.name) == (
        "huaxin-chem",
        "tank-farm-1",
        "tank-farm-1-north",
        "罐区一北区",
    )
    assert zone.members == ("huaxin-chem/tank-farm-1/GD-01", "huaxin-chem/tank-farm-1/GD-02")
    (rule,) = zone.rules
    assert rule == CompositeRule(
        "two_detectors",
        zone.members,
        2,
        Level.ORANGE,
        Level.RED,
        member_rule="combustible_gas",
    )
    assert registry.zones_of("huaxin-chem/tank-farm-1/GD-01") == (zone,)
    assert registry.zones_of("huaxin-chem/tank-farm-1/GD-03") == ()
    # Sensor.zone still says where a sensor is, declared zone or not.
    assert registry.sensors["huaxin-chem/tank-farm-1/GD-01"].zone == "tank-farm-1-north"
    assert registry.sensors["huaxin-chem/tank-farm-1/GD-03"].zone == "tank-farm-1-south"
    assert registry.summary().zones == 1
    assert registry.summary().rules_by_kind["composite"] == 1


# --- the pipeline ---------------------------------------------------------------------------


def test_two_north_detectors_raise_the_zone_alarm_and_one_falling_clears_it(
    pipeline: Pipeline, rec: Recorder
) -> None:
    gas(pipeline, "GD-01", 27, 0)
    assert rec.zone_events() == [], "one detector alone raises only its own alarm"
    gas(pipeline, "GD-02", 26, 1000)
    (raised,) = rec.zone_events()
    assert (raised.change, raised.level, raised.previous) == (Change.RAISED, Level.RED, None)
    assert raised.sensor == NORTH
    assert (raised.enterprise, raised.site, raised.sensor_id) == (
        "huaxin-chem",
        "tank-farm-1",
        "tank-farm-1-north",
    )
    assert raised.enterprise_name == "安县华信化工有限公司"
    assert (raised.site_name, raised.sensor_name) == ("罐区一", "罐区一北区")
    assert (raised.kind, raised.rule, raised.rule_kind) == ("zone", "two_detectors", "composite")
    assert (raised.value, raised.setpoint, raised.unit) == (2.0, 2.0, "个")
    assert raised.setpoint_label == "2/2 探测器≥橙色"
    assert raised.ts_ms == raised.start_ms == NOW + 1000
    assert raised.alarm_id == f"{NORTH}/two_detectors@{NOW + 1000}"
    assert raised.message == "罐区一北区 2 个探测器达到橙色及以上（2/2），区域报警（红色）"
    # The detector's own event comes first, then the zone's.
    assert [(e.sensor_id, e.change) for e in rec.events] == [
        ("GD-01", Change.RAISED),
        ("GD-02", Change.RAISED),
        ("tank-farm-1-north", Change.RAISED),
    ]

    gas(pipeline, "GD-01", 3, 2000)
    cleared = rec.zone_events()[-1]
    assert (cleared.change, cleared.level, cleared.previous) == (Change.CLEARED, None, Level.RED)
    assert cleared.alarm_id == raised.alarm_id
    assert (cleared.value, cleared.setpoint) == (1.0, 2.0)
    assert cleared.message == "罐区一北区 达到橙色及以上的探测器降至 1 个（1/2），区域报警解除"
    assert pipeline.active.of_sensor(NORTH) == []


def test_the_zone_alarm_is_published_retained_on_the_zone_topic(
    pipeline: Pipeline, rec: Recorder
) -> None:
    gas(pipeline, "GD-01", 30, 0)
    gas(pipeline, "GD-02", 30, 1000)
    gas(pipeline, "GD-02", 0, 2000)
    zone = [(doc, retain) for t, doc, retain in rec.published if t == NORTH_TOPIC]
    assert [retain for _, retain in zone] == [True, True]
    assert zone[0][0]["level"] == "red" and zone[0][0]["sensor"] == NORTH
    assert zone[1][0]["level"] is None and zone[1][0]["active"] == []


def test_a_detector_of_the_south_zone_does_not_count(pipeline: Pipeline, rec: Recorder) -> None:
    gas(pipeline, "GD-01", 40, 0)
    gas(pipeline, "GD-03", 40, 1000)
    gas(pipeline, "GD-04", 60, 2000)
    assert [e.sensor_id for e in rec.events] == ["GD-01", "GD-03", "GD-04"]
    assert rec.zone_events() == []


def test_below_orange_does_not_count_and_red_does(pipeline: Pipeline, rec: Recorder) -> None:
    gas(pipeline, "GD-01", 24.9, 0)
    gas(pipeline, "GD-02", 55, 1000)
    assert rec.zone_events() == []
    gas(pipeline, "GD-01", 25, 2000)  # equality alarms
    assert [(e.change, e.level) for e in rec.zone_events()] == [(Change.RAISED, Level.RED)]


def test_members_moving_between_orange_and_red_do_not_repeat_the_zone_alarm(
    pipeline: Pipeline, rec: Recorder
) -> None:
    gas(pipeline, "GD-01", 30, 0)
    gas(pipeline, "GD-02", 30, 1000)
    gas(pipeline, "GD-01", 55, 2000)  # GD-01 to red
    gas(pipeline, "GD-02", 60, 3000)  # GD-02 to red
    gas(pipeline, "GD-01", 30, 4000)  # GD-01 back to orange
    assert [(e.change, e.level) for e in rec.zone_events()] == [(Change.RAISED, Level.RED)]


def test_evaluate_returns_the_zone_events_too(registry: Registry, rec: Recorder) -> None:
    pipeline = Pipeline(registry, ManualClock(NOW), [rec])
    pipeline.evaluate(Reading("huaxin-chem/tank-farm-1/GD-01", NOW, 30.0))
    events = pipeline.evaluate(Reading("huaxin-chem/tank-farm-1/GD-02", NOW + 1, 30.0))
    assert [(e.sensor_id, e.kind) for e in events] == [
        ("GD-02", "combustible_gas"),
        ("tank-farm-1-north", "zone"),
    ]
    assert events == rec.events[1:]
    assert pipeline.counters.alarms["red"] == 1


def test_zone_messages_in_english(registry: Registry, rec: Recorder) -> None:
    pipeline = Pipeline(registry, ManualClock(NOW), [rec], language="en")
    gas(pipeline, "GD-01", 30, 0)
    gas(pipeline, "GD-02", 30, 1000)
    gas(pipeline, "GD-02", 0, 2000)
    raised, cleared = rec.zone_events()
    assert raised.message == "罐区一北区: 2 detectors at orange or above (2/2); zone alarm (red)"
    assert raised.setpoint_label == "2/2 detectors ≥ orange"
    assert cleared.message == "罐区一北区: 1 detector at orange or above (1/2); zone alarm cleared"


def test_zone_state_lives_in_the_pipeline(pipeline: Pipeline) -> None:
    gas(pipeline, "GD-01", 30, 0)
    state = pipeline.zone_states[NORTH]["two_detectors"]
    assert state.member_levels == {"huaxin-chem/tank-farm-1/GD-01": Level.ORANGE}
    assert state.latch.level == 0


# --- member_rule: which alarms of a member count -----------------------------------------

ZONED = edit(
    ACME,
    "        - id: TD-01\n",
    """\
        - id: GD-02
          name: 罐区可燃气体探测器2
          kind: combustible_gas
          unit: "%LEL"
          range: [0, 100]
          interval: 5s
          zone: north
          rules:
            - preset: combustible_gas
        - id: TD-01
""",
) + (
    """\
      zones:
        - id: north
          name: 罐区北区
          rules:
            - id: two_detectors
              kind: composite
              min_count: 2
              at_level: orange
              level: red
              member_rule: combustible_gas
"""
)
"""The inline registry with a second detector in zone ``north`` and a composite rule."""


def write(root: Path, enterprise: str = ZONED) -> Path:
    """Write the inline registry with ``enterprise`` as its enterprise file into ``root``."""
    return write_registry(root, enterprise=enterprise)


@pytest.mark.parametrize(("member_rule", "counts"), [(True, False), (False, True)])
def test_with_member_rule_only_that_rule_counts(
    tmp_path: Path, rec: Recorder, member_rule: bool, counts: bool
) -> None:
    # Both detectors report a fault (NaN) with their out-of-range alarm raised at orange: with
    # member_rule the gas rule is what counts, and it has no alarm.
    orange_faults = "          zone: north\n          out_of_range: {level: orange}\n"
    text = ZONED.replace("          zone: north\n", orange_faults)
    if not member_rule:
        text = edit(text, "              member_rule: combustible_gas\n", "")
    registry = load_registry(write(tmp_path, text))
    pipeline = Pipeline(registry, ManualClock(NOW), [rec])
    pipeline.evaluate(Reading("acme/tanks/GD-01", NOW, math.nan))
    pipeline.evaluate(Reading("acme/tanks/GD-02", NOW + 1, math.nan))
    assert [e.rule_kind for e in rec.events if e.kind != "zone"] == ["out_of_range"] * 2
    assert bool(rec.zone_events()) is counts


# --- registry: zones read and checked ------------------------------------------------------


def test_zone_members_default_to_the_sensors_of_that_zone(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path))
    zone = registry.zones["acme/tanks/north"]
    assert zone == Zone(
        "acme/tanks/north",
        "acme",
        "tanks",
        "north",
        "罐区北区",
        ("acme/tanks/GD-01", "acme/tanks/GD-02"),
        zone.rules,
    )
    assert zone.rules[0].members == zone.members
    assert registry.zones_of("acme/tanks/GD-02") == (zone,)


def test_zone_members_listed_explicitly(tmp_path: Path) -> None:
    # Any sensors of the site, in the order listed, whatever their own 'zone' says.
    text = edit(
        ZONED,
        "          name: 罐区北区\n",
        "          name: 罐区北区\n          sensors: [TD-01, GD-01]\n",
    )
    text = edit(text, "              member_rule: combustible_gas\n", "")
    registry = load_registry(write(tmp_path, text))
    zone = registry.zones["acme/tanks/north"]
    assert zone.members == ("acme/tanks/TD-01", "acme/tanks/GD-01")
    assert registry.zones_of("acme/tanks/GD-02") == ()
    assert registry.zones_of("acme/tanks/TD-01") == (zone,)
    assert registry.sensors["acme/tanks/TD-01"].zone is None


def test_a_site_without_zones_has_none(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, ACME))
    assert registry.zones == {}
    assert registry.zones_of("acme/tanks/GD-01") == ()
    assert registry.summary().zones == 0


def _problems(tmp_path: Path, old: str, new: str) -> tuple[list[Problem], Path, str]:
    """The problems of the zoned registry with one passage replaced, its file and its text."""
    text = edit(ZONED, old, new)
    root = write(tmp_path, text)
    return problems_of(root), root / "acme.yaml", text


def test_unknown_sensor_in_a_zone(tmp_path: Path) -> None:
    problems, file, text = _problems(
        tmp_path,
        "          name: 罐区北区\n",
        "          name: 罐区北区\n          sensors:\n            - GD-01\n            - GD-09\n",
    )
    only(problems, file, line_no(text, "- GD-09"), "zone north", "unknown sensor 'GD-09'")


def test_a_sensor_listed_twice_in_a_zone(tmp_path: Path) -> None:
    problems, file, text = _problems(
        tmp_path,
        "          name: 罐区北区\n",
        "          name: 罐区北区\n          sensors: [GD-01, GD-01]\n",
    )
    expect(problems, file, line_no(text, "sensors: [GD-01"), "listed twice")


def test_fewer_members_than_min_count(tmp_path: Path) -> None:
    problems, file, text = _problems(tmp_path, "min_count: 2", "min_count: 3")
    only(problems, file, line_no(text, "min_count: 3"), "rule two_detectors", "only 2 sensors")


@pytest.mark.parametrize("bad", ["0", "two", "true", "1.5"])
def test_min_count_must_be_a_whole_number(tmp_path: Path, bad: str) -> None:
    problems, file, text = _problems(tmp_path, "min_count: 2", f"min_count: {bad}")
    only(problems, file, line_no(text, f"min_count: {bad}"), "'min_count' must be a whole number")


def test_unknown_level_in_a_zone_rule(tmp_path: Path) -> None:
    problems, file, text = _problems(tmp_path, "at_level: orange", "at_level: purple")
    only(problems, file, line_no(text, "at_level: purple"), "unknown level 'purple'")


def test_zone_level_below_at_level(tmp_path: Path) -> None:
    problems, file, text = _problems(
        tmp_path, "              level: red\n", "              level: blue\n"
    )
    only(problems, file, line_no(text, "  level: blue"), "below at_level orange")


def test_missing_fields_of_a_zone_rule(tmp_path: Path) -> None:
    problems, file, text = _problems(tmp_path, "              at_level: orange\n", "")
    only(problems, file, line_no(text, "- id: two_detectors"), "missing", "'at_level'")


def test_duplicate_zone_ids(tmp_path: Path) -> None:
    text = ZONED + "        - id: north\n          name: 又一个北区\n"
    root = write(tmp_path, text)
    problems = problems_of(root)
    only(problems, root / "acme.yaml", line_no(text, "又一个北区") - 1, "duplicate zone id 'north'")


def test_unknown_field_in_a_zone(tmp_path: Path) -> None:
    problems, file, text = _problems(
        tmp_path,
        "          name: 罐区北区\n",
        "          name: 罐区北区\n          sensor: [GD-01]\n",
    )
    only(problems, file, line_no(text, "sensor: [GD-01]"), "unknown field 'sensor'", "a zone")


def test_unknown_field_in_a_zone_rule(tmp_path: Path) -> None:
    problems, file, text = _problems(
        tmp_path, "min_count: 2", "min_count: 2\n              delay: 5s"
    )
    only(problems, file, line_no(text, "delay: 5s"), "unknown field 'delay'")


def test_unknown_zone_rule_kind(tmp_path: Path) -> None:
    problems, file, text = _problems(tmp_path, "kind: composite", "kind: voting")
    only(problems, file, line_no(text, "kind: voting"), "unknown zone rule kind 'voting'")


def test_member_rule_missing_on_a_member(tmp_path: Path) -> None:
    problems, file, text = _problems(tmp_path, "member_rule: combustible_gas", "member_rule: toxic")
    only(
        problems, file, line_no(text, "member_rule: toxic"), "'toxic' is not a rule of GD-01, GD-02"
    )


def test_zone_id_clashing_with_a_sensor_id(tmp_path: Path) -> None:
    text = edit(ZONED, "        - id: north\n", "        - id: TD-01\n").replace(
        "zone: north", "zone: TD-01"
    )
    root = write(tmp_path, text)
    only(problems_of(root), root / "acme.yaml", _zone_line(text), "also the id of a sensor")


def _zone_line(text: str) -> int:
    """Line of the zone's ``- id:`` (the one after ``zones:``)."""
    lines = text.splitlines()
    return lines.index("      zones:") + 2


def test_a_zone_needs_at_least_two_sensors(tmp_path: Path) -> None:
    # GD-02 (the last sensor in zone north) leaves it: GD-01 is alone.
    text = "".join(ZONED.rsplit("          zone: north\n", 1))
    root = write(tmp_path, text)
    only(
        problems_of(root),
        root / "acme.yaml",
        _zone_line(text),
        "zone north has 1 sensor",
        "at least 2",
    )


def test_a_member_with_its_own_mistake_is_reported_once(tmp_path: Path) -> None:
    # GD-02's preset is unknown: the sensor is reported, the zone naming it is not.
    text = ZONED.replace(
        "            - preset: combustible_gas\n        - id: TD-01",
        "            - preset: no_such_preset\n        - id: TD-01",
    )
    root = write(tmp_path, text)
    only(problems_of(root), root / "acme.yaml", line_no(text, "no_such_preset"), "unknown preset")


def test_zones_must_be_a_list(tmp_path: Path) -> None:
    text = ZONED.split("      zones:\n")[0] + "      zones: {north: [GD-01]}\n"
    root = write(tmp_path, text)
    only(problems_of(root), root / "acme.yaml", line_no(text, "zones:"), "'zones' must be a list")
