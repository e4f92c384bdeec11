"""The projection rule: minutes until the trend reaches a target, levels, gaps, state."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import engine
from rules.events import Change, RuleEvent
from rules.levels import Level
from rules.projection import (
    MAX_MINUTES,
    ProjectionRule,
    ProjectionState,
    evaluate,
    minutes_to_target,
    target_text,
)
from rules.threshold import Direction, Setpoint

T0 = 1_795_000_000_000
MIN = 60_000
HOUR = 3_600_000

LEVELS = (
    Setpoint(Level.YELLOW, 120, 150, "2小时内"),
    Setpoint(Level.ORANGE, 60, 75, "1小时内"),
    Setpoint(Level.RED, 30, 40, "30分钟内"),
)
WARNING = ProjectionRule("to_warning", 103.5, "警戒水位", Direction.HIGH, LEVELS, window_ms=HOUR)
# Two samples per 5-minute window: the trend is exactly the last step.
QUICK = ProjectionRule(
    "to_warning_quick", 103.5, "警戒水位", Direction.HIGH, LEVELS, window_ms=5 * MIN, min_points=2
)
DRAIN = ProjectionRule(
    "to_low_low",
    1.0,
    "低低限",
    Direction.LOW,
    (Setpoint(Level.ORANGE, 60, 75), Setpoint(Level.RED, 30, 40)),
    window_ms=5 * MIN,
    min_points=2,
)


def run(
    rule: ProjectionRule,
    readings: list[tuple[int, float]],
    state: ProjectionState | None = None,
) -> tuple[ProjectionState, list[RuleEvent]]:
    """Feed (ts_ms, value) readings; return the final state and every event."""
    state = state or rule.initial()
    events = []
    for ts, v in readings:
        state, event = evaluate(rule, state, ts, v)
        if event is not None:
            events.append(event)
    return state, events


def pairs(*values: float, step_ms: int = 5 * MIN) -> list[tuple[int, float]]:
    return [(T0 + i * step_ms, v) for i, v in enumerate(values)]


def changes(events: list[RuleEvent]) -> list[tuple[Change, Level | None]]:
    return [(e.change, e.level) for e in events]


def test_rising_1_m_an_hour_30_cm_below_the_target_is_red_at_30_minutes() -> None:
    """A level at 103.0 m rising 1 m/h reaches 警戒水位 103.5 m in 30 minutes."""
    rule = ProjectionRule(
        "to_warning", 103.5, "警戒水位", Direction.HIGH, (LEVELS[2],), window_ms=HOUR
    )
    readings = [(T0 + i * 5 * MIN, 103.0 - (12 - i) / 12) for i in range(13)]
    _, events = run(rule, readings)
    assert changes(events) == [(Change.RAISED, Level.RED)]
    event = events[0]
    assert event.ts_ms == readings[-1][0]
    assert event.value == 30.0 and event.setpoint == 30
    assert event.kind == "projection" and event.direction == "high"
    assert event.setpoint_label == "警戒水位 103.50"
    assert event.window_ms == HOUR


def test_minutes_equal_to_the_set_point_alarm_and_one_more_does_not() -> None:
    rule = QUICK
    # 0.05 m in 5 min = 0.6 m/h; 0.30 m to go = 30 min exactly.
    assert minutes_to_target(rule, pairs(103.15, 103.2)) == 30.0
    _, events = run(rule, pairs(103.15, 103.2))
    assert events[-1].level is Level.RED
    # 0.305 m to go = 30.5 min: orange, not red.
    _, events = run(rule, pairs(103.145, 103.195))
    assert [e.level for e in events] == [Level.ORANGE]


def test_levels_rise_with_the_trend_and_fall_as_one_alarm() -> None:
    _, events = run(
        QUICK,
        pairs(
            102.0,
            102.05,  # 0.6 m/h, 1.45 m to go: 145 min, nothing
            102.15,  # 1.2 m/h, 1.35 m: 67.5 min → yellow
            102.35,  # 2.4 m/h, 1.15 m: 28.75 min → red
            102.45,  # 1.2 m/h, 1.05 m: 52.5 min → orange (red released past 40)
            102.45,  # flat: never reaches → cleared
        ),
    )
    assert changes(events) == [
        (Change.RAISED, Level.YELLOW),
        (Change.LEVEL_CHANGED, Level.RED),
        (Change.LEVEL_CHANGED, Level.ORANGE),
        (Change.CLEARED, None),
    ]
    assert len({e.start_ms for e in events}) == 1
    assert [e.setpoint for e in events] == [120, 30, 40, 75]
    assert events[-1].value == MAX_MINUTES, "a trend that never arrives reports one week"


def test_hysteresis_holds_until_past_the_clear_minutes() -> None:
    _, events = run(
        QUICK,
        pairs(
            102.0,
            102.6,  # 7.2 m/h, 0.9 m: 7.5 min → red
            102.9,  # 3.6 m/h, 0.6 m: 10 min
            102.95,  # 0.6 m/h, 0.55 m: 55 min: red released (40), orange held (75)
            103.0,  # 0.6 m/h, 0.5 m: 50 min
            103.01,  # 0.12 m/h, 0.49 m: 245 min: released
        ),
    )
    assert changes(events) == [
        (Change.RAISED, Level.RED),
        (Change.LEVEL_CHANGED, Level.ORANGE),
        (Change.CLEARED, None),
    ]
    assert events[1].value == pytest.approx(55.0) and events[1].setpoint == 40
    assert events[2].value == pytest.approx(245.0) and events[2].setpoint == 75


def test_at_or_past_the_target_is_zero_minutes() -> None:
    assert minutes_to_target(QUICK, pairs(103.0, 103.5)) == 0.0
    assert minutes_to_target(QUICK, pairs(104.0, 103.9)) == 0.0, "over the target, falling"
    _, events = run(QUICK, pairs(103.6, 103.6))
    assert changes(events) == [(Change.RAISED, Level.RED)] and events[0].value == 0.0


def test_a_flat_or_receding_trend_never_reaches() -> None:
    assert minutes_to_target(QUICK, pairs(103.0, 103.0)) == math.inf
    assert minutes_to_target(QUICK, pairs(103.0, 102.9)) == math.inf
    _, events = run(QUICK, pairs(103.4, 103.4, 103.3, 103.2))
    assert events == []


def test_low_direction_mirrors_high() -> None:
    # A tank draining towards its low-low level at 1.0 m.
    _, events = run(
        DRAIN,
        pairs(
            3.0,
            2.9,  # 1.2 m/h, 1.9 m to go: 95 min, nothing
            2.7,  # 2.4 m/h, 1.7 m: 42.5 min → orange
            2.4,  # 3.6 m/h, 1.4 m: 23.3 min → red
            2.35,  # 0.6 m/h, 1.35 m: 135 min → cleared
        ),
    )
    assert changes(events) == [
        (Change.RAISED, Level.ORANGE),
        (Change.LEVEL_CHANGED, Level.RED),
        (Change.CLEARED, None),
    ]
    assert [e.value for e in events] == pytest.approx([42.5, 70 / 3, 135.0])
    assert all(e.direction == "low" for e in events)
    assert events[0].setpoint_label == "低低限 1.00"


def test_a_gap_neither_raises_nor_clears() -> None:
    state, events = run(QUICK, pairs(103.0, 103.3))
    assert changes(events) == [(Change.RAISED, Level.RED)]
    later = T0 + 5 * HOUR
    state, event = evaluate(QUICK, state, later, 90.0)  # alone in its window
    assert event is None and state.latch.level == Level.RED
    state, event = evaluate(QUICK, state, later + 5 * MIN, 90.0)
    assert event is not None and event.change is Change.CLEARED


def test_stale_and_duplicate_readings_change_nothing() -> None:
    state, events = run(QUICK, pairs(103.0, 103.3))
    last = T0 + 5 * MIN
    assert evaluate(QUICK, state, last, 0.0) == (state, None)
    assert evaluate(QUICK, state, last - 1, 200.0) == (state, None)
    assert len(events) == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_ignored(bad: float) -> None:
    state, _ = run(QUICK, pairs(103.0, 103.3))
    assert evaluate(QUICK, state, T0 + HOUR, bad) == (state, None)


@pytest.mark.parametrize(
    ("label", "target", "text"),
    [
        ("警戒水位", 103.5, "警戒水位 103.50"),
        ("保证水位", 105.0, "保证水位 105.00"),
        ("", 2.25, "2.25"),
        ("阈值", 0.125, "阈值 0.125"),
        ("低限", -3.0, "低限 -3.00"),
    ],
)
def test_the_target_is_written_with_at_least_two_decimals(
    label: str, target: float, text: str
) -> None:
    assert target_text(label, target) == text


def test_the_rule_follows_the_protocol_and_the_engine() -> None:
    assert QUICK.kind == "projection"
    state = QUICK.initial()
    assert QUICK.tick(state, T0) == (state, None)
    sensor: dict[str, object] = {}
    events: list[RuleEvent] = []
    for ts, v in pairs(103.0, 103.3):
        sensor, new = engine.evaluate_sensor([QUICK], sensor, ts, v)
        events += new
    assert changes(events) == [(Change.RAISED, Level.RED)]
    data = json.loads(json.dumps(engine.state_to_dict(sensor)))
    assert engine.state_from_dict([QUICK], data) == sensor


def test_state_round_trips_through_json() -> None:
    rule = ProjectionRule(
        "p", 103.5, "警戒水位", Direction.HIGH, LEVELS, window_ms=HOUR, on_delay_ms=HOUR
    )
    state, _ = run(rule, pairs(102.0, 102.3, 102.6))
    assert state.latch.pending and len(state.samples) == 3
    data = json.loads(json.dumps(state.to_dict()))
    assert rule.state_from_dict(data) == state


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"setpoints": ()}, "a projection rule needs at least one level"),
        ({"setpoints": (Setpoint(Level.RED, 30, 20),)}, "clear set-point 20 is below"),
        (
            {"setpoints": (Setpoint(Level.ORANGE, 30, 40), Setpoint(Level.RED, 60, 70))},
            "red set-point 60 must be below orange set-point 30",
        ),
        ({"setpoints": (Setpoint(Level.RED, -1, 10),)}, "minutes between 0 and 10080"),
        ({"setpoints": (Setpoint(Level.RED, 30, 20_000),)}, "minutes between 0 and 10080"),
        ({"setpoints": (Setpoint(Level.RED, 30, math.inf),)}, "finite"),
        ({"target": math.nan}, "target must be a finite number"),
        ({"window_ms": -5}, "window must be longer than zero"),
        ({"min_points": 0}, "at least two readings"),
        ({"off_delay_ms": -1}, "must not be negative"),
    ],
)
def test_invalid_rules_are_refused_in_plain_words(kwargs: dict[str, object], words: str) -> None:
    args: dict[str, object] = {
        "rule_id": "p",
        "target": 103.5,
        "target_label": "警戒水位",
        "direction": Direction.HIGH,
        "setpoints": (Setpoint(Level.RED, 30, 40),),
        "window_ms": HOUR,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=words):
        ProjectionRule(**args)  # type: ignore[arg-type]


DELAYED = ProjectionRule(
    "delayed",
    103.5,
    "警戒水位",
    Direction.HIGH,
    LEVELS,
    window_ms=30 * MIN,
    min_points=2,
    on_delay_ms=10 * MIN,
    off_delay_ms=10 * MIN,
)
steps = st.lists(
    st.tuples(
        st.integers(min_value=-2 * MIN, max_value=20 * MIN),  # ≤ 0: duplicate or late
        st.one_of(st.floats(min_value=-0.3, max_value=0.3), st.just(math.nan)),
    ),
    max_size=60,
)


def readings_from(series: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Cumulative timestamps (steps may go back) and a random-walk level (NaN passes through)."""
    ts, level, out = T0, 102.5, []
    for dt, change in series:
        ts += dt
        if not math.isnan(change):
            level += change
        out.append((ts, change if math.isnan(change) else level))
    return out


@given(steps, st.data())
def test_a_json_round_trip_mid_series_changes_nothing(
    series: list[tuple[int, float]], data: st.DataObject
) -> None:
    readings = readings_from(series)
    split = data.draw(st.integers(min_value=0, max_value=len(readings)))
    whole_state, whole = run(DELAYED, readings)
    state, first = run(DELAYED, readings[:split])
    state = DELAYED.state_from_dict(json.loads(json.dumps(state.to_dict())))
    end_state, rest = run(DELAYED, readings[split:], state)
    assert first + rest == whole
    assert end_state == whole_state


@given(steps)
def test_events_alternate_carry_finite_minutes_and_replays_add_none(
    series: list[tuple[int, float]],
) -> None:
    readings = readings_from(series)
    state, events = run(DELAYED, readings)
    previous = 0
    for event in events:
        assert (event.previous or 0) == previous != (event.level or 0)
        assert 0 <= event.value <= MAX_MINUTES
        previous = event.level or 0
    json.dumps([e.value for e in events], allow_nan=False)
    _, again = run(DELAYED, readings, state)
    assert again == []
