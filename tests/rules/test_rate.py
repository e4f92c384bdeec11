"""The rate-of-change rule: least-squares slope per hour over a window, levels, gaps, state."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import engine, window
from rules.events import Change, RuleEvent
from rules.levels import Level
from rules.rate import RateRule, RateState, evaluate
from rules.threshold import Direction, Setpoint

T0 = 1_795_000_000_000
MIN = 60_000
HOUR = 3_600_000

RISE = RateRule(
    "level_rise",
    Direction.HIGH,
    (Setpoint(Level.YELLOW, 0.4, 0.3, "涨率偏快"),),
    window_ms=HOUR,
)
# Two samples per 5-minute window: the slope is exactly the last step's rate.
STEP = RateRule(
    "level_rise_step",
    Direction.HIGH,
    (
        Setpoint(Level.YELLOW, 0.5, 0.4, "涨率黄"),
        Setpoint(Level.ORANGE, 0.75, 0.6, "涨率橙"),
        Setpoint(Level.RED, 1.0, 0.9, "涨率红"),
    ),
    window_ms=5 * MIN,
    min_points=2,
)
FALL = RateRule(
    "level_fall",
    Direction.LOW,
    (Setpoint(Level.ORANGE, -0.5, -0.4, "降率橙"), Setpoint(Level.RED, -1.0, -0.9, "降率红")),
    window_ms=5 * MIN,
    min_points=2,
)


def run(
    rule: RateRule,
    readings: list[tuple[int, float]],
    state: RateState | None = None,
) -> tuple[RateState, list[RuleEvent]]:
    """Feed (ts_ms, value) readings; return the final state and every event."""
    state = state or rule.initial()
    events = []
    for ts, v in readings:
        state, event = evaluate(rule, state, ts, v)
        if event is not None:
            events.append(event)
    return state, events


def ramp(
    rates: list[float], start: float = 100.0, step_ms: int = 5 * MIN
) -> list[tuple[int, float]]:
    """Readings every ``step_ms`` changing at ``rates[i]`` units/h during step i (the first
    reading is the start value)."""
    readings = [(T0, start)]
    value = start
    for i, rate in enumerate(rates, start=1):
        value += rate * step_ms / HOUR
        readings.append((T0 + i * step_ms, value))
    return readings


def changes(events: list[RuleEvent]) -> list[tuple[Change, Level | None]]:
    return [(e.change, e.level) for e in events]


def test_a_level_rising_half_a_metre_an_hour_raises_at_0_4() -> None:
    _, events = run(RISE, ramp([0.5] * 12))
    assert changes(events) == [(Change.RAISED, Level.YELLOW)]
    event = events[0]
    assert event.kind == "rate" and event.direction == "high"
    assert event.value == pytest.approx(0.5)
    assert event.setpoint == 0.4 and event.setpoint_label == "涨率偏快"
    assert event.window_ms == HOUR
    assert event.ts_ms == T0 + 10 * MIN, "judged from the third reading (min_points=3)"


def test_a_slope_equal_to_the_set_point_alarms() -> None:
    rule = RateRule("r", Direction.HIGH, (Setpoint(Level.RED, 0.5, 0.4),), window_ms=HOUR)
    _, events = run(rule, ramp([0.5] * 12))
    assert changes(events) == [(Change.RAISED, Level.RED)]
    assert events[0].value == 0.5
    _, events = run(rule, ramp([0.49] * 12))
    assert events == []


def test_hysteresis_holds_the_alarm_until_the_clear_set_point() -> None:
    _, events = run(STEP, ramp([0.5, 0.45, 0.4, 0.39]))
    assert changes(events) == [(Change.RAISED, Level.YELLOW), (Change.CLEARED, None)]
    assert events[1].value == pytest.approx(0.39) and events[1].setpoint == 0.4
    assert events[1].setpoint_label == "涨率黄"


def test_one_alarm_rises_and_falls_through_the_levels() -> None:
    _, events = run(STEP, ramp([0.2, 0.6, 1.2, 0.8, 0.62, 0.5, 0.0]))
    assert changes(events) == [
        (Change.RAISED, Level.YELLOW),
        (Change.LEVEL_CHANGED, Level.RED),
        (Change.LEVEL_CHANGED, Level.ORANGE),
        (Change.LEVEL_CHANGED, Level.YELLOW),
        (Change.CLEARED, None),
    ]
    assert len({e.start_ms for e in events}) == 1, "all events belong to one alarm"
    assert [e.setpoint for e in events] == [0.5, 1.0, 0.9, 0.6, 0.4]


def test_low_direction_mirrors_high() -> None:
    _, events = run(FALL, ramp([-0.2, -0.5, -1.0, -0.95, -0.85, -0.41, -0.39]))
    assert changes(events) == [
        (Change.RAISED, Level.ORANGE),
        (Change.LEVEL_CHANGED, Level.RED),
        (Change.LEVEL_CHANGED, Level.ORANGE),
        (Change.CLEARED, None),
    ]
    assert all(e.direction == "low" for e in events)


def test_the_slope_is_fitted_over_the_whole_window() -> None:
    """A single jump inside a 1 h window moves the fitted slope less than the jump itself."""
    readings = [(T0 + i * 5 * MIN, 100.0) for i in range(12)] + [(T0 + 60 * MIN, 100.3)]
    state, events = run(RISE, readings)
    assert events == []
    assert len(state.samples) == 13, "both ends of the window are included"


def test_a_gap_neither_raises_nor_clears() -> None:
    state, events = run(STEP, ramp([1.2]))
    assert changes(events) == [(Change.RAISED, Level.RED)]
    # Two hours without data, then a reading far above: one sample in the window, no judgement.
    later = T0 + 2 * HOUR
    state, event = evaluate(STEP, state, later, 150.0)
    assert event is None and state.latch.level == Level.RED and len(state.samples) == 1
    # The next reading, flat, is judged: the alarm clears on data, not on the gap.
    state, event = evaluate(STEP, state, later + 5 * MIN, 150.0)
    assert event is not None and event.change is Change.CLEARED and event.value == 0.0


def test_a_gap_restarts_the_on_delay() -> None:
    rule = RateRule(
        "r",
        Direction.HIGH,
        (Setpoint(Level.RED, 1.0, 0.9),),
        window_ms=5 * MIN,
        min_points=2,
        on_delay_ms=10 * MIN,
    )
    state, events = run(rule, ramp([1.2, 1.2]))  # reached at 5 and 10 min: 5 min so far
    assert events == [] and state.latch.pending
    state, event = evaluate(rule, state, T0 + 3 * HOUR, 200.0)
    assert event is None and state.latch.pending == ()
    assert state.latch.last_ts_ms == T0 + 3 * HOUR


def test_stale_and_duplicate_readings_change_nothing() -> None:
    state, events = run(STEP, ramp([1.2]))
    last = T0 + 5 * MIN
    again, event = evaluate(STEP, state, last, 0.0)  # duplicate timestamp
    assert event is None and again == state
    older, event = evaluate(STEP, state, last - 1, 0.0)  # late arrival
    assert event is None and older == state
    assert len(events) == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_ignored(bad: float) -> None:
    state, _ = run(STEP, ramp([1.2]))
    after, event = evaluate(STEP, state, T0 + 10 * MIN, bad)
    assert event is None and after == state


def test_fast_readings_are_thinned_evenly_and_the_slope_stays_exact() -> None:
    readings = [(T0 + i * 1000, 50.0 + 0.5 * i / 3600) for i in range(2 * 3600)]
    state, events = run(RISE, readings)
    assert len(state.samples) <= window.MAX_SAMPLES
    assert state.samples[-1] == readings[-1], "the newest reading is always kept"
    assert state.samples[0][0] >= readings[-1][0] - HOUR
    gaps = [b[0] - a[0] for a, b in zip(state.samples, state.samples[1:-1], strict=False)]
    assert max(gaps) - min(gaps) <= 1000, "kept samples are evenly spread"
    line = window.fit(state.samples)
    assert line is not None and line.slope_per_hour == pytest.approx(0.5, rel=1e-9)
    assert changes(events) == [(Change.RAISED, Level.YELLOW)]


def test_the_slope_keeps_its_precision_at_large_values() -> None:
    """Epoch timestamps and a level of 1203 m moving by millimetres."""
    readings = [(T0 + i * 7 * MIN, 1203.47 + 0.012 * i * 7 / 60) for i in range(9)]
    line = window.fit(readings)
    assert line is not None
    assert line.slope_per_hour == pytest.approx(0.012, rel=1e-9)
    assert line.latest == pytest.approx(readings[-1][1], abs=1e-9)


def test_the_rule_follows_the_protocol_and_the_engine() -> None:
    assert RISE.kind == "rate"
    state = RISE.initial()
    assert RISE.tick(state, T0) == (state, None)
    sensor: dict[str, object] = {}
    events: list[RuleEvent] = []
    for ts, v in ramp([0.5] * 12):
        sensor, new = engine.evaluate_sensor([RISE], sensor, ts, v)
        events += new
    assert changes(events) == [(Change.RAISED, Level.YELLOW)]
    data = json.loads(json.dumps(engine.state_to_dict(sensor)))
    assert engine.state_from_dict([RISE], data) == sensor


def test_state_round_trips_through_json() -> None:
    rule = RateRule(
        "r", Direction.HIGH, STEP.setpoints, window_ms=HOUR, on_delay_ms=HOUR, min_points=2
    )
    state, _ = run(rule, ramp([0.3, 1.7, 2.9]))
    assert state.latch.pending and len(state.samples) == 4
    data = json.loads(json.dumps(state.to_dict()))
    assert rule.state_from_dict(data) == state


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"setpoints": ()}, "a rate rule needs at least one level"),
        ({"setpoints": (Setpoint(Level.RED, 0.5, 0.6),)}, "clear set-point 0.6 is above"),
        (
            {"setpoints": (Setpoint(Level.ORANGE, 0.5, 0.4), Setpoint(Level.RED, 0.4, 0.3))},
            "red set-point 0.4 must be above orange set-point 0.5",
        ),
        (
            {"setpoints": (Setpoint(Level.RED, 0.5, 0.4), Setpoint(Level.RED, 0.6, 0.5))},
            "only once",
        ),
        ({"setpoints": (Setpoint(Level.RED, math.nan, 0.4),)}, "finite"),
        ({"setpoints": (Setpoint(Level.RED, 0.0, -0.1),)}, "must be above zero"),
        ({"window_ms": 0}, "window must be longer than zero"),
        ({"min_points": 1}, "at least two readings"),
        ({"on_delay_ms": -1}, "must not be negative"),
        ({"consecutive": 0}, "at least 1"),
    ],
)
def test_invalid_rules_are_refused_in_plain_words(kwargs: dict[str, object], words: str) -> None:
    args: dict[str, object] = {
        "rule_id": "r",
        "direction": Direction.HIGH,
        "setpoints": (Setpoint(Level.RED, 0.5, 0.4),),
        "window_ms": HOUR,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=words):
        RateRule(**args)  # type: ignore[arg-type]


def test_a_falling_rate_needs_negative_set_points() -> None:
    with pytest.raises(ValueError, match=r"set-point 0.5 per hour must be below zero"):
        RateRule("r", Direction.LOW, (Setpoint(Level.RED, 0.5, 0.6),), window_ms=HOUR)


steps = st.lists(
    st.tuples(
        st.integers(min_value=-2 * MIN, max_value=20 * MIN),  # ≤ 0: duplicate or late
        st.one_of(st.floats(min_value=-2, max_value=2), st.just(math.nan)),
    ),
    max_size=60,
)
DELAYED = RateRule(
    "delayed",
    Direction.HIGH,
    STEP.setpoints,
    window_ms=30 * MIN,
    min_points=2,
    on_delay_ms=10 * MIN,
    off_delay_ms=10 * MIN,
)


def readings_from(series: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Cumulative timestamps (steps may go back) and a random-walk value (NaN passes through)."""
    ts, level, out = T0, 100.0, []
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
def test_events_alternate_and_replays_add_none(series: list[tuple[int, float]]) -> None:
    readings = readings_from(series)
    state, events = run(DELAYED, readings)
    previous = 0
    for event in events:
        assert (event.previous or 0) == previous != (event.level or 0)
        previous = event.level or 0
    _, again = run(DELAYED, readings, state)
    assert again == []
