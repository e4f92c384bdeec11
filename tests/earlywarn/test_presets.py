"""Each preset against the tables of the standards, through the example registry's sensors.

Readings go through the same engine the runners use, so a preset that loads but alarms at the
wrong number fails here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from earlywarn.registry import Registry
from rules import engine
from rules.events import RuleEvent
from rules.levels import Level

T0 = 1_795_284_000_000
MIN = 60_000

GAS = "laojie-restaurants/r-03/G1"
TOXIC = "huaxin-chem/tank-farm-1/TD-01"
RAIN = "qingjiang-water/p1/RG-P1"
RIVER = "qingjiang-water/h1/WL-H1"
TANK = "huaxin-chem/tank-farm-1/T101-LT"


def run(registry: Registry, sensor: str, readings: Iterable[tuple[int, float]]) -> list[RuleEvent]:
    rules = registry.sensors[sensor].rules
    state: dict[str, Any] = {}
    events: list[RuleEvent] = []
    for ts, value in readings:
        state, new = engine.evaluate_sensor(rules, state, ts, value)
        events.extend(new)
    return events


def final_levels(events: list[RuleEvent]) -> dict[str, Level | None]:
    """The last level each rule reported."""
    out: dict[str, Level | None] = {}
    for e in events:
        out[e.rule_id] = e.level
    return out


@pytest.mark.parametrize(
    ("value", "level", "label"),
    [
        (24.9, None, None),
        (25.0, Level.ORANGE, "一级报警"),
        (26.0, Level.ORANGE, "一级报警"),
        (50.0, Level.RED, "二级报警"),
    ],
)
def test_combustible_gas_gb_t_50493(
    registry: Registry, value: float, level: Level | None, label: str | None
) -> None:
    events = run(registry, GAS, [(T0, 0.0), (T0 + 1000, value)])
    gas = [e for e in events if e.rule_id == "combustible_gas"]
    assert [e.level for e in gas] == ([level] if level else [])
    if label:
        assert gas[0].setpoint_label == label


def test_toxic_gas_100_and_200_percent_oel(registry: Registry) -> None:
    events = run(registry, TOXIC, [(T0, 10), (T0 + 1000, 100), (T0 + 2000, 200)])
    assert [e.level for e in events if e.rule_id == "toxic_gas"] == [Level.ORANGE, Level.RED]


def test_tank_high_high_is_red(registry: Registry) -> None:
    events = run(registry, TANK, [(T0, 12.0), (T0 + 1000, 16.6), (T0 + 2000, 17.62)])
    high = [e for e in events if e.rule_id == "tank_level_high"]
    assert [(e.level, e.setpoint_label) for e in high] == [
        (Level.ORANGE, "高限"),
        (Level.RED, "高高限"),
    ]


def rain(total_mm: float, minutes: int, start: int = T0) -> list[tuple[int, float]]:
    """``total_mm`` spread evenly over 5-minute interval reports lasting ``minutes``."""
    reports = minutes // 5
    return [(start + (i + 1) * 5 * MIN, total_mm / reports) for i in range(reports)]


def test_52_mm_in_5_h_40_min_is_a_yellow_rainstorm(registry: Registry) -> None:
    levels = final_levels(run(registry, RAIN, rain(52.0, 340)))
    assert levels["rainstorm_cma"] is Level.YELLOW
    assert "flash_flood" not in levels, "52 mm over 6 h is below every critical rainfall"


def test_100_mm_in_3_h_is_a_red_rainstorm(registry: Registry) -> None:
    events = run(registry, RAIN, rain(100.0, 180))
    assert final_levels(events)["rainstorm_cma"] is Level.RED
    red = next(e for e in events if e.rule_id == "rainstorm_cma" and e.level is Level.RED)
    assert red.window_ms == 3 * 60 * MIN and red.setpoint == 100
    assert red.setpoint_label == "暴雨红色预警"


def test_26_mm_in_1_h_then_dry_raises_no_signal(registry: Registry) -> None:
    dry = [(T0 + 65 * MIN + i * 5 * MIN, 0.0) for i in range(30)]
    assert run(registry, RAIN, rain(26.0, 60) + dry) == []


@pytest.mark.parametrize(
    ("total", "minutes", "level"),
    [
        (36.0, 60, Level.BLUE),
        (46.0, 60, Level.YELLOW),
        (60.0, 60, Level.ORANGE),
        (80.0, 60, Level.RED),
        (56.0, 180, Level.BLUE),
    ],
)
def test_flash_flood_critical_rainfall_table(
    registry: Registry, total: float, minutes: int, level: Level
) -> None:
    levels = final_levels(run(registry, RAIN, rain(total, minutes)))
    assert levels["flash_flood"] is level


def test_water_level_set_points_rise_rate_and_projection(registry: Registry) -> None:
    # 102.0 m rising 1 m/h for 2 h, a reading every 5 minutes.
    readings = [(T0 + i * 5 * MIN, 102.0 + i * 5 / 60) for i in range(25)]
    events = run(registry, RIVER, readings)
    levels = final_levels(events)
    assert levels["water_level"] is Level.YELLOW  # 103.5 警戒 reached after 1 h
    assert levels["water_level_rise"] is Level.ORANGE  # 1 m/h ≥ 0.5 m/h
    projection = [e for e in events if e.rule_id == "water_level_projection"]
    # Trends are judged once the readings cover half the window (30 min): at 102.5 m, an hour
    # before 警戒水位 103.5 m.
    assert projection[0].level is Level.ORANGE, "≈ 60 min before 警戒水位"
    assert projection[0].ts_ms == T0 + 30 * MIN
    assert projection[0].setpoint_label.startswith("警戒水位 103.5")


def test_noise_over_a_few_seconds_is_not_a_trend(registry: Registry) -> None:
    """Readings a second apart with a few centimetres of noise would fit a slope of metres per
    hour; the registry's default min_span (half the window) keeps such 'trends' unjudged."""
    noise = [0.0, 0.03, -0.02, 0.04, -0.03, 0.02, 0.05, -0.04] * 4
    readings = [(T0 + i * 1000, 102.0 + n) for i, n in enumerate(noise)]
    events = run(registry, RIVER, readings)
    assert [e for e in events if e.rule_id in ("water_level_rise", "water_level_projection")] == []
