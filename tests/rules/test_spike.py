"""The spike rule: robust outliers by median/MAD, held out of the window unless they persist."""

from __future__ import annotations

import json
import math

import pytest

from rules import engine
from rules.events import Change, RuleEvent
from rules.levels import Level
from rules.spike import MAD_TO_SIGMA, SpikeRule, SpikeState

T0 = 1_795_000_000_000

RULE = SpikeRule("spike")
# Ten readings alternating 9 and 11: median 10, MAD 1, so the robust scale is 1.4826.
BASE = [9.0, 11.0] * 5
REACH = RULE.k * (MAD_TO_SIGMA * 1.0)


def run(
    rule: SpikeRule, values: list[float], state: SpikeState | None = None, start: int = 0
) -> tuple[SpikeState, list[RuleEvent]]:
    """Feed values one second apart from ``T0 + start`` seconds."""
    state = state or rule.initial()
    events = []
    for i, v in enumerate(values, start=start):
        state, event = rule.evaluate(state, T0 + i * 1000, v)
        if event is not None:
            events.append(event)
    return state, events


def test_nothing_is_judged_before_min_points_readings() -> None:
    state, events = run(RULE, [0.0, 1e6, -1e6, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert events == []
    assert len(state.window) == RULE.min_points, "all of them were taken in"


def test_a_spike_raises_at_its_reading_and_clears_at_the_next_normal_one() -> None:
    state, events = run(RULE, [*BASE, 50.0, 10.0, 10.5])
    assert [(e.change, e.ts_ms - T0) for e in events] == [
        (Change.RAISED, 10_000),
        (Change.CLEARED, 11_000),
    ]
    raised, cleared = events
    assert raised.kind == "spike" and raised.level is Level.BLUE and raised.window_ms is None
    assert raised.value == 50.0 and raised.direction == "high"
    assert raised.setpoint == 10.0 + REACH
    assert cleared.value == 10.0 and cleared.start_ms == raised.start_ms
    assert 50.0 not in state.window, "a spike does not widen the scale"
    assert state.window == (*BASE, 10.0, 10.5)


def test_a_downward_spike_names_the_lower_bound() -> None:
    _, events = run(RULE, [*BASE, -50.0])
    assert [(e.direction, e.setpoint) for e in events] == [("low", 10.0 - REACH)]


def test_exactly_k_robust_deviations_is_not_a_spike() -> None:
    state, _ = run(RULE, [-1.0, 1.0] * 5)  # median 0, MAD 1: no rounding in v − median
    _, event = RULE.evaluate(state, T0 + 10_000, REACH)
    assert event is None
    _, event = RULE.evaluate(state, T0 + 10_000, math.nextafter(REACH, 100.0))
    assert event is not None and event.change is Change.RAISED


def test_a_flat_window_uses_the_min_scale_floor() -> None:
    flat = [5.0] * 10
    state, _ = run(RULE, flat)
    assert RULE.evaluate(state, T0 + 10_000, 5.0 + 1e-12)[1] is None
    assert RULE.evaluate(state, T0 + 10_000, 5.0 + 1e-6)[1] is not None
    coarse = SpikeRule("spike", min_scale=0.01)  # about the sensor's resolution
    state, _ = run(coarse, flat)
    assert coarse.evaluate(state, T0 + 10_000, 5.05)[1] is None, "within 6 × 0.01"
    assert coarse.evaluate(state, T0 + 10_000, 5.1)[1] is not None


def test_isolated_outliers_never_enter_the_window() -> None:
    state, events = run(RULE, [*BASE, 50.0, 60.0, 10.0, -40.0, 10.0])
    assert [e.change for e in events] == [Change.RAISED, Change.CLEARED] * 2
    assert state.window == (*BASE, 10.0, 10.0)
    assert state.held == () and state.run == 0


def test_a_level_shift_is_taken_in_and_the_alarm_ends() -> None:
    before = [10.0 + 0.01 * (i % 7) for i in range(30)]
    after = [20.0 + 0.01 * (i % 7) for i in range(30)]
    state, events = run(RULE, [*before, *after])
    assert (events[0].change, events[0].ts_ms - T0) == (Change.RAISED, 30_000)
    assert events[-1].change is Change.CLEARED, "a step does not alarm for ever"
    alarmed_for = (events[-1].ts_ms - events[0].ts_ms) // 1000
    assert alarmed_for <= RULE.window_points // 2 + 1, "about half a window"
    assert state.latch.level == 0 and min(state.window) >= 20.0


def test_the_run_is_held_out_until_consecutive_shift_then_taken_in() -> None:
    state, _ = run(RULE, [*BASE, 50.0, 51.0])
    assert state.window == tuple(BASE) and state.held == (50.0, 51.0) and state.run == 2
    state, _ = run(RULE, [52.0], state, start=12)
    assert state.window == (*BASE, 50.0, 51.0, 52.0) and state.held == ()
    assert state.run == RULE.consecutive_shift
    state, _ = run(RULE, [53.0], state, start=13)
    assert state.window[-1] == 53.0, "further outliers of the same run go straight in"


def test_consecutive_shift_one_takes_every_outlier_in_but_still_flags_it() -> None:
    rule = SpikeRule("spike", consecutive_shift=1)
    state, events = run(rule, [*BASE, 50.0])
    assert [e.change for e in events] == [Change.RAISED]
    assert state.window[-1] == 50.0


def test_the_window_keeps_window_points_readings() -> None:
    rule = SpikeRule("spike", window_points=12, min_points=10)
    state, _ = run(rule, [float(i % 3) for i in range(100)])
    assert len(state.window) == 12
    assert state.window == tuple(float(i % 3) for i in range(88, 100))


def test_off_delay_holds_the_spike_alarm() -> None:
    rule = SpikeRule("spike", off_delay_ms=3000)
    _, events = run(rule, [*BASE, 50.0, 10.0, 10.0, 10.0, 10.0])
    assert [(e.change, e.ts_ms - T0) for e in events] == [
        (Change.RAISED, 10_000),
        (Change.CLEARED, 14_000),
    ]


def test_duplicate_and_out_of_order_readings_change_nothing() -> None:
    state, _ = run(RULE, [*BASE, 50.0])
    for ts, value in ((T0 + 10_000, 10.0), (T0, 10.0), (T0 + 5000, 999.0)):
        after, event = RULE.evaluate(state, ts, value)
        assert event is None and after == state


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_ignored(value: float) -> None:
    state, _ = run(RULE, [*BASE, 50.0])
    after, event = RULE.evaluate(state, T0 + 11_000, value)
    assert event is None and after == state


def test_state_round_trips_through_json() -> None:
    state, _ = run(RULE, [*BASE, 50.0, 1e-300])
    assert state.held, "held outliers are part of the state"
    data = json.loads(json.dumps(engine.state_to_dict({"spike": state})))
    assert engine.state_from_dict([RULE], data) == {"spike": state}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"window_points": 5, "min_points": 10}, "window_points 5 is smaller than min_points 10"),
        ({"min_points": 2, "window_points": 5}, "min_points must be at least 3"),
        ({"k": 0.0}, "k must be above 0"),
        ({"k": -1.0}, "k must be above 0"),
        ({"k": math.inf}, "k must be a finite number"),
        ({"min_scale": 0.0}, "min_scale must be above 0"),
        ({"consecutive_shift": 0}, "consecutive_shift must be at least 1"),
        ({"off_delay_ms": -1}, "must not be negative"),
        ({"level": 9}, "9 is not a valid Level"),
    ],
)
def test_invalid_rules_are_refused_in_plain_words(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        SpikeRule("r", **kwargs)  # type: ignore[arg-type]
