"""The out-of-range rule: instrument range, fault sentinels, fault quality codes, NaN."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import engine
from rules.events import Change, RuleEvent
from rules.latch import LatchState
from rules.levels import Level
from rules.out_of_range import OutOfRangeRule

T0 = 1_795_000_000_000

# A DS18B20-style thermometer: range −55…125 °C; −9999 means "no sensor", 85.0 is its
# power-on-reset value; quality 7 means a device fault.
RULE = OutOfRangeRule(
    "out_of_range", low=-55.0, high=125.0, fault_values=(-9999.0, 85.0), fault_qualities=(7,)
)


def run(
    rule: OutOfRangeRule,
    readings: list[float | tuple[float, int]],
    state: LatchState | None = None,
) -> tuple[LatchState, list[RuleEvent]]:
    """Feed readings (a value, or value and quality) one second apart."""
    state = state or rule.initial()
    events = []
    for i, r in enumerate(readings):
        value, q = r if isinstance(r, tuple) else (r, 0)
        state, event = rule.evaluate(state, T0 + i * 1000, value, q)
        if event is not None:
            events.append(event)
    return state, events


def test_the_range_ends_are_valid_and_just_beyond_is_not() -> None:
    assert run(RULE, [-55.0, 125.0])[1] == []
    _, events = run(RULE, [math.nextafter(125.0, 200.0)])
    assert [(e.direction, e.setpoint, e.setpoint_label) for e in events] == [
        ("high", 125.0, "量程上限")
    ]
    _, events = run(RULE, [math.nextafter(-55.0, -100.0)])
    assert [(e.direction, e.setpoint, e.setpoint_label) for e in events] == [
        ("low", -55.0, "量程下限")
    ]


def test_raises_on_an_invalid_reading_and_clears_on_the_next_valid_one() -> None:
    _, events = run(RULE, [20.0, 130.0, 140.0, 21.0, 22.0])
    assert [(e.change, e.ts_ms - T0, e.value) for e in events] == [
        (Change.RAISED, 1000, 130.0),
        (Change.CLEARED, 3000, 21.0),
    ]
    raised, cleared = events
    assert raised.kind == "out_of_range" and raised.level is Level.YELLOW
    assert raised.window_ms is None
    assert cleared.level is None and cleared.previous is Level.YELLOW
    assert cleared.start_ms == raised.start_ms


@pytest.mark.parametrize(
    ("value", "direction", "setpoint", "label"),
    [
        (math.nan, "high", 125.0, "无效值"),
        (math.inf, "high", 125.0, "量程上限"),
        (-math.inf, "low", -55.0, "量程下限"),
        (-9999.0, "high", -9999.0, "故障值"),
        (85.0, "high", 85.0, "故障值"),
    ],
)
def test_nan_infinity_and_fault_values_are_out_of_range(
    value: float, direction: str, setpoint: float, label: str
) -> None:
    _, events = run(RULE, [20.0, value, 20.0])
    assert [e.change for e in events] == [Change.RAISED, Change.CLEARED]
    raised = events[0]
    assert (raised.direction, raised.setpoint, raised.setpoint_label) == (
        direction,
        setpoint,
        label,
    )
    assert raised.value == value or (math.isnan(value) and math.isnan(raised.value))


def test_a_fault_value_given_as_an_integer_matches() -> None:
    rule = OutOfRangeRule("r", 0.0, 100.0, fault_values=(50,))
    assert rule.fault_values == (50.0,)
    assert run(rule, [50.0])[1] != []


def test_a_listed_fault_quality_is_a_fault_and_an_unlisted_one_is_not() -> None:
    _, events = run(RULE, [(20.0, 7), (20.0, 3), (20.0, 0)])
    assert [(e.change, e.ts_ms - T0) for e in events] == [
        (Change.RAISED, 0),
        (Change.CLEARED, 1000),
    ]
    assert events[0].setpoint_label == "故障质量码 7" and events[0].setpoint == 7.0
    assert run(RULE, [(20.0, 3), (20.0, 255)])[1] == [], "unlisted quality: the value decides"
    assert run(RULE, [(130.0, 3)])[1] != [], "…and an unlisted quality does not excuse it"


def test_consecutive_ignores_a_lone_sentinel() -> None:
    rule = OutOfRangeRule("r", -55.0, 125.0, fault_values=(-9999.0,), consecutive=2)
    assert run(rule, [20.0, -9999.0, 20.0, -9999.0, 20.0])[1] == []
    _, events = run(rule, [20.0, -9999.0, -9999.0, 20.0])
    assert [(e.change, e.ts_ms - T0) for e in events] == [
        (Change.RAISED, 2000),
        (Change.CLEARED, 3000),
    ]


def test_on_and_off_delays() -> None:
    rule = OutOfRangeRule("r", 0.0, 10.0, on_delay_ms=2000, off_delay_ms=2000)
    _, events = run(rule, [5.0, 11.0, 11.0, 11.0, 5.0, 11.0, 5.0, 5.0, 5.0])
    assert [(e.change, e.ts_ms - T0) for e in events] == [
        (Change.RAISED, 3000),
        (Change.CLEARED, 8000),
    ]


def test_the_clear_names_the_bound_nearer_the_valid_reading() -> None:
    _, events = run(RULE, [130.0, 120.0, -60.0, -50.0])
    cleared = [e for e in events if e.change is Change.CLEARED]
    assert [(e.setpoint, e.direction) for e in cleared] == [(125.0, "high"), (-55.0, "low")]


def test_duplicate_and_out_of_order_readings_change_nothing() -> None:
    state, _ = run(RULE, [20.0, 130.0])
    for ts, value in ((T0 + 1000, 20.0), (T0, 20.0), (T0 - 5000, math.nan)):
        after, event = RULE.evaluate(state, ts, value)
        assert event is None and after == state


def test_the_level_is_configurable() -> None:
    rule = OutOfRangeRule("r", 0.0, 1.0, level=Level.ORANGE)
    assert run(rule, [2.0])[1][0].level is Level.ORANGE


def test_state_round_trips_through_json() -> None:
    rule = OutOfRangeRule("r", 0.0, 10.0, consecutive=3)
    state, _ = run(rule, [11.0, 12.0])
    assert state.pending, "a pending raise is part of the state"
    data = json.loads(json.dumps(engine.state_to_dict({"r": state})))
    assert engine.state_from_dict([rule], data) == {"r": state}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"low": 10.0, "high": 10.0}, "low end of the range 10 must be below the high end 10"),
        ({"low": 10.0, "high": 0.0}, "low end of the range 10 must be below the high end 0"),
        ({"low": math.nan, "high": 1.0}, "low end of the range must be a finite number"),
        ({"low": 0.0, "high": math.inf}, "high end of the range must be a finite number"),
        ({"low": 0.0, "high": 1.0, "fault_values": (math.nan,)}, "fault values must be finite"),
        ({"low": 0.0, "high": 1.0, "fault_qualities": (1.5,)}, "whole numbers, got 1.5"),
        ({"low": 0.0, "high": 1.0, "consecutive": 0}, "at least 1"),
        ({"low": 0.0, "high": 1.0, "on_delay_ms": -1}, "must not be negative"),
    ],
)
def test_invalid_rules_are_refused_in_plain_words(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        OutOfRangeRule("r", **kwargs)  # type: ignore[arg-type]


def test_lists_from_yaml_become_tuples() -> None:
    rule = OutOfRangeRule("r", 0.0, 1.0, [-9999], [7, 8])  # type: ignore[arg-type]
    assert rule.fault_values == (-9999.0,) and rule.fault_qualities == (7, 8)


readings = st.lists(
    st.tuples(
        st.one_of(
            st.floats(min_value=-100, max_value=200),
            st.sampled_from([math.nan, math.inf, -math.inf, -9999.0, 85.0]),
        ),
        st.sampled_from([0, 0, 0, 3, 7]),
    ),
    max_size=60,
)


@given(readings)
def test_the_alarm_always_agrees_with_the_latest_reading(rs: list[tuple[float, int]]) -> None:
    state = RULE.initial()
    for i, (value, q) in enumerate(rs):
        state, _ = RULE.evaluate(state, T0 + i, value, q)
        invalid = (
            q == 7 or not -55.0 <= value <= 125.0 or value in (-9999.0, 85.0)
        )  # NaN fails the range test
        assert bool(state.level) == invalid
