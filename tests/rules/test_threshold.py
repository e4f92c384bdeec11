"""The threshold rule as a pure function: set-points, hysteresis, on-delay, order, state."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import engine
from rules.events import Change, RuleEvent
from rules.levels import Level
from rules.threshold import Direction, Setpoint, ThresholdRule, ThresholdState, evaluate

T0 = 1_795_000_000_000

GAS = ThresholdRule(
    "combustible_gas",
    Direction.HIGH,
    (Setpoint(Level.ORANGE, 25.0, 20.0, "一级报警"), Setpoint(Level.RED, 50.0, 45.0, "二级报警")),
)
LOW = ThresholdRule(
    "tank_level_low",
    Direction.LOW,
    (Setpoint(Level.ORANGE, 1.5, 1.55, "低限"), Setpoint(Level.RED, 1.0, 1.05, "低低限")),
)


def run(
    rule: ThresholdRule,
    values: list[float],
    step_ms: int = 1000,
    state: ThresholdState | None = None,
) -> tuple[ThresholdState, list[RuleEvent]]:
    """Feed values one second apart; return the final state and every event."""
    state = state or ThresholdState()
    events = []
    for i, v in enumerate(values):
        state, event = evaluate(rule, state, T0 + i * step_ms, v)
        if event is not None:
            events.append(event)
    return state, events


def levels(events: list[RuleEvent]) -> list[Level | None]:
    return [e.level for e in events]


def test_reaching_the_set_point_exactly_alarms() -> None:
    _, events = run(GAS, [24.999, 25.0])
    assert levels(events) == [Level.ORANGE]
    assert events[0].change is Change.RAISED
    assert events[0].setpoint == 25.0 and events[0].setpoint_label == "一级报警"


def test_hysteresis_holds_the_alarm_until_the_clear_set_point() -> None:
    _, events = run(GAS, [26, 24, 21, 20.0, 19.99])
    assert [(e.change, e.level) for e in events] == [
        (Change.RAISED, Level.ORANGE),
        (Change.CLEARED, None),
    ]
    assert events[1].value == 19.99 and events[1].setpoint == 20.0


def test_one_alarm_rises_and_falls_through_the_levels() -> None:
    _, events = run(GAS, [30, 55, 47, 44, 30, 10])
    assert [(e.change, e.level) for e in events] == [
        (Change.RAISED, Level.ORANGE),
        (Change.LEVEL_CHANGED, Level.RED),
        (Change.LEVEL_CHANGED, Level.ORANGE),
        (Change.CLEARED, None),
    ]
    assert len({e.start_ms for e in events}) == 1, "all events belong to one alarm"


def test_a_jump_straight_past_every_level_raises_the_highest() -> None:
    _, events = run(GAS, [80])
    assert levels(events) == [Level.RED]
    assert events[0].previous is None


def test_falling_below_every_clear_at_once_clears() -> None:
    _, events = run(GAS, [80, 0])
    assert [e.change for e in events] == [Change.RAISED, Change.CLEARED]
    assert events[1].previous is Level.RED and events[1].setpoint == 45.0


def test_low_direction_mirrors_high() -> None:
    _, events = run(LOW, [3.0, 1.5, 1.0, 1.04, 1.06, 1.56])
    assert [(e.change, e.level) for e in events] == [
        (Change.RAISED, Level.ORANGE),
        (Change.LEVEL_CHANGED, Level.RED),
        (Change.LEVEL_CHANGED, Level.ORANGE),
        (Change.CLEARED, None),
    ]


def test_on_delay_needs_the_breach_to_last() -> None:
    rule = ThresholdRule("gas", Direction.HIGH, GAS.setpoints, on_delay_ms=5000)
    # A 3-second breach does not alarm; one lasting 5 s (from 4 s to 9 s) does.
    _, events = run(rule, [30, 30, 30, 10, 30, 30, 30, 30, 30, 30])
    assert len(events) == 1
    assert events[0].ts_ms == T0 + 9000 and events[0].level is Level.ORANGE


def test_on_delay_applies_to_each_level() -> None:
    rule = ThresholdRule("gas", Direction.HIGH, GAS.setpoints, on_delay_ms=2000)
    _, events = run(rule, [30, 30, 60, 60, 60])
    assert [(e.ts_ms - T0, e.level) for e in events] == [(2000, Level.ORANGE), (4000, Level.RED)]


def test_stale_and_duplicate_readings_change_nothing() -> None:
    state, events = run(GAS, [30])
    again, event = evaluate(GAS, state, T0, 99.0)  # duplicate timestamp
    assert event is None and again == state
    older, event = evaluate(GAS, state, T0 - 1, 0.0)  # late arrival
    assert event is None and older == state
    assert len(events) == 1


def test_nan_is_ignored() -> None:
    state, _ = run(GAS, [30])
    after, event = evaluate(GAS, state, T0 + 1000, math.nan)
    assert event is None and after == state


def test_state_round_trips_through_json() -> None:
    rule = ThresholdRule("gas", Direction.HIGH, GAS.setpoints, on_delay_ms=10_000)
    state, _ = run(rule, [30, 60, 60])
    assert state.pending, "a pending level is part of the state"
    data = json.loads(json.dumps(engine.state_to_dict({"gas": state})))
    assert engine.state_from_dict([rule], data) == {"gas": state}


@pytest.mark.parametrize(
    ("setpoints", "words"),
    [
        ((), "at least one level"),
        ((Setpoint(Level.RED, 50, 55),), "clear set-point 55 is above"),
        ((Setpoint(Level.ORANGE, 50, 45), Setpoint(Level.RED, 40, 35)), "must be above"),
        ((Setpoint(Level.RED, 50, 45), Setpoint(Level.RED, 60, 55)), "only once"),
        ((Setpoint(Level.RED, math.inf, 45),), "finite"),
    ],
)
def test_invalid_rules_are_refused_in_plain_words(
    setpoints: tuple[Setpoint, ...], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        ThresholdRule("r", Direction.HIGH, setpoints)


values = st.lists(st.floats(min_value=-10, max_value=110, allow_nan=False), max_size=60)


@given(values)
def test_level_always_agrees_with_the_latest_value(series: list[float]) -> None:
    """Invariants: at or above a set-point the alarm is at least that level; below every clear
    set-point it is cleared; events strictly alternate between different levels."""
    state = ThresholdState()
    previous: int = 0
    for i, v in enumerate(series):
        state, event = evaluate(GAS, state, T0 + i, v)
        for sp in GAS.setpoints:
            if v >= sp.set:
                assert state.level >= sp.level
        if v < min(sp.clear for sp in GAS.setpoints):
            assert state.level == 0
        if event is not None:
            assert (event.level or 0) != previous
            assert (event.previous or 0) == previous
        previous = state.level


@given(values)
def test_replaying_a_series_twice_adds_no_events(series: list[float]) -> None:
    state, first = run(GAS, series)
    _, second = run(GAS, series, state=state)  # same timestamps again: all stale
    assert second == []
    assert len(first) <= len(series)
