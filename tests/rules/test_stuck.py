"""The stuck rule: no variation beyond ε over a window, from a run kept in four numbers."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import engine
from rules.events import Change, RuleEvent
from rules.levels import Level
from rules.stuck import StuckRule, StuckState

T0 = 1_795_000_000_000
S = 1000

# Stuck when a minute of readings (at least 5) vary by no more than 0.25.
RULE = StuckRule("stuck", window_ms=60 * S, epsilon=0.25)


def run(
    rule: StuckRule,
    values: list[float],
    step_ms: int = 10 * S,
    state: StuckState | None = None,
    start_ms: int = T0,
) -> tuple[StuckState, list[RuleEvent]]:
    """Feed values ``step_ms`` apart; return the final state and every event."""
    state = state or rule.initial()
    events = []
    for i, v in enumerate(values):
        state, event = rule.evaluate(state, start_ms + i * step_ms, v)
        if event is not None:
            events.append(event)
    return state, events


def test_a_constant_reading_is_stuck_once_the_window_is_spanned() -> None:
    state, events = run(RULE, [20.0] * 10)
    assert len(events) == 1
    event = events[0]
    assert event.change is Change.RAISED and event.level is Level.YELLOW
    assert event.ts_ms == T0 + 60 * S, "the 7th reading is 60 s after the first"
    assert event.kind == "stuck" and event.direction == "low"
    assert event.value == 20.0 and event.setpoint == 0.25 and event.window_ms == 60 * S
    assert state.run_start_ms == T0 and state.run_min == state.run_max == 20.0


def test_variation_of_exactly_epsilon_counts_as_stuck() -> None:
    _, events = run(RULE, [1.0, 1.25] * 5)
    assert [e.change for e in events] == [Change.RAISED]


def test_variation_just_beyond_epsilon_is_never_stuck() -> None:
    _, events = run(RULE, [1.0, math.nextafter(1.25, 2.0)] * 20)
    assert events == []


def test_the_window_must_be_spanned_not_just_the_points_counted() -> None:
    _, events = run(RULE, [5.0] * 50, step_ms=1 * S)  # 50 points within 49 s
    assert events == []
    _, events = run(RULE, [5.0] * 61, step_ms=1 * S)
    assert [e.ts_ms - T0 for e in events] == [60 * S]


def test_a_gap_spans_the_window_but_min_points_must_still_be_met() -> None:
    state, events = run(RULE, [5.0, 5.0], step_ms=3_600 * S)  # two readings an hour apart
    assert events == [] and state.run_count == 2
    _, events = run(RULE, [5.0, 5.0, 5.0], step_ms=S, state=state, start_ms=T0 + 7_200 * S)
    assert [e.ts_ms - T0 for e in events] == [7_200 * S + 2 * S], "the 5th reading"


def test_a_reading_that_breaks_the_run_clears_and_starts_a_new_run() -> None:
    state, events = run(RULE, [*[20.0] * 7, 20.5, *[20.5] * 6])
    assert [(e.change, e.ts_ms - T0) for e in events] == [
        (Change.RAISED, 60 * S),
        (Change.CLEARED, 70 * S),
        (Change.RAISED, 130 * S),
    ]
    assert events[1].value == 20.5 and events[1].setpoint == 0.25
    assert events[1].start_ms == events[0].start_ms
    assert state.run_start_ms == T0 + 70 * S


def test_a_new_run_starts_from_the_breaking_value_alone() -> None:
    rule = StuckRule("stuck", window_ms=60 * S, epsilon=1.0)
    # 0 and 1 are within ε; 2 breaks the run (2 − 0 > 1) and starts a new one by itself, even
    # though 1 and 2 are within ε of each other.
    state, _ = run(rule, [0.0, 0.0, 1.0, 2.0])
    assert state.run_start_ms == T0 + 30 * S
    assert (state.run_min, state.run_max, state.run_count) == (2.0, 2.0, 1)


def test_the_run_count_stops_at_min_points() -> None:
    state, _ = run(RULE, [3.0] * 1000)
    assert state.run_count == RULE.min_points
    assert len(json.dumps(state.to_dict())) < 400


def test_off_delay_rides_out_a_twitch_of_a_stuck_sensor() -> None:
    rule = StuckRule("stuck", window_ms=60 * S, epsilon=0.25, off_delay_ms=120 * S)
    # Stuck at 20, one twitch to 21 at 100 s, stuck at 20 again from 110 s (stuck at 170 s).
    _, events = run(rule, [*[20.0] * 10, 21.0, *[20.0] * 20])
    assert [e.change for e in events] == [Change.RAISED]
    _, events = run(StuckRule("stuck", 60 * S, 0.25), [*[20.0] * 10, 21.0, *[20.0] * 20])
    assert [e.change for e in events] == [Change.RAISED, Change.CLEARED, Change.RAISED]


def test_duplicate_and_out_of_order_readings_change_nothing() -> None:
    state, _ = run(RULE, [20.0] * 8)
    assert state.latch.level == Level.YELLOW
    for ts, value in ((T0 + 70 * S, 99.0), (T0, 99.0), (T0 + 35 * S, 99.0)):
        after, event = RULE.evaluate(state, ts, value)
        assert event is None and after == state


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_ignored(value: float) -> None:
    state, _ = run(RULE, [20.0] * 8)
    after, event = RULE.evaluate(state, T0 + 80 * S, value)
    assert event is None and after == state


def test_quality_codes_do_not_matter() -> None:
    state, _ = run(RULE, [20.0] * 6)
    _, event = RULE.evaluate(state, T0 + 60 * S, 20.0, quality=7)
    assert event is not None and event.change is Change.RAISED


def test_state_round_trips_through_json() -> None:
    state, _ = run(RULE, [20.0, 20.1, 19.9])
    data = json.loads(json.dumps(engine.state_to_dict({"stuck": state})))
    assert engine.state_from_dict([RULE], data) == {"stuck": state}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"window_ms": 0, "epsilon": 0.1}, "window must be a positive"),
        ({"window_ms": -5, "epsilon": 0.1}, "window must be a positive"),
        ({"window_ms": 60_000, "epsilon": -0.1}, "epsilon -0.1 is negative"),
        ({"window_ms": 60_000, "epsilon": math.nan}, "epsilon must be a finite number"),
        ({"window_ms": 60_000, "epsilon": 0.1, "min_points": 1}, "min_points must be at least 2"),
        ({"window_ms": 60_000, "epsilon": 0.1, "off_delay_ms": -1}, "must not be negative"),
    ],
)
def test_invalid_rules_are_refused_in_plain_words(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        StuckRule("r", **kwargs)  # type: ignore[arg-type]


def test_epsilon_zero_means_exactly_equal_readings() -> None:
    rule = StuckRule("stuck", window_ms=60 * S, epsilon=0.0)
    assert run(rule, [7.0] * 7)[1] != []
    assert run(rule, [7.0, 7.000001] * 10)[1] == []


series = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=30 * S),
        st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.3, 0.5, 1.0]),
    ),
    max_size=80,
)


@given(series)
def test_stuck_is_only_ever_said_of_a_sensor_that_did_not_vary(
    steps: list[tuple[int, float]],
) -> None:
    """Soundness against a brute-force window: whenever the alarm is up (no off-delay), the
    readings of the last ``window_ms`` or more, at least ``min_points`` of them, lie within ε."""
    rule = StuckRule("stuck", window_ms=60 * S, epsilon=0.25, min_points=4)
    state = rule.initial()
    seen: list[tuple[int, float]] = []
    ts = T0
    for gap, value in steps:
        ts += gap
        seen.append((ts, value))
        state, _ = rule.evaluate(state, ts, value)
        if state.latch.level:
            assert any(
                ts - start >= rule.window_ms
                and len(seen) - i >= rule.min_points
                and max(v for _, v in seen[i:]) - min(v for _, v in seen[i:]) <= rule.epsilon
                for i, (start, _) in enumerate(seen)
            )
