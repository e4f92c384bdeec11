"""The out-of-range lane against the reference, reading for reading.

Readings mix valid values, the range bounds themselves, values just outside, NaN and ±infinity,
sentinel values and fault quality codes, with stale and duplicate timestamps; slots start from
fresh and from mid-way states the reference produced, so the columns must carry over every
latch field and flag between batches.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.events import Change, RuleEvent, with_flapping
from rules.lanes.base import Batch, Emitted
from rules.lanes.out_of_range import OutOfRangeLane
from rules.latch import LatchState
from rules.levels import Level
from rules.out_of_range import OutOfRangeRule
from rules.threshold import Direction, Setpoint, ThresholdRule

RULES = (
    OutOfRangeRule("gas", 0.0, 100.0, fault_values=(-9999.0, 50.5), fault_qualities=(3, 7)),
    OutOfRangeRule("plain", -10.0, 10.0, level=Level.RED),
    OutOfRangeRule("codes", 0.0, 100.0, fault_qualities=(1,), level=Level.ORANGE),
)
VALUES = (
    50.0, 0.0, 100.0, -0.5, 100.5, -9999.0, 50.5, 5.0, -10.0, 10.0, 11.0,
    math.nan, math.inf, -math.inf,
)  # fmt: skip
QUALITIES = (0, 0, 0, 1, 3, 7, 2)

Reading = tuple[int, int, float, int]
readings = st.tuples(
    st.integers(0, len(RULES) - 1),
    st.integers(-3, 4),  # time step from the reading before: mostly forward, some stale
    st.sampled_from(VALUES),
    st.sampled_from(QUALITIES),
)


def series(longest: int) -> st.SearchStrategy[list[Reading]]:
    """Up to ``longest`` readings, the length drawn evenly (plain lists are mostly short)."""
    return st.integers(0, longest).flatmap(lambda n: st.lists(readings, min_size=n, max_size=n))


def timed(rows: list[Reading], clock: int) -> tuple[list[Reading], int]:
    """``rows`` with their time steps made timestamps from ``clock`` on; the new clock."""
    out = []
    for slot, step, v, q in rows:
        clock += step
        out.append((slot, clock, v, q))
    return out, clock


def comparable(emitted: Emitted) -> list[tuple[int, tuple[object, ...]]]:
    """Events with NaN values made comparable (NaN is not equal to itself)."""
    out = []
    for position, e in emitted:
        value = "nan" if math.isnan(e.value) else e.value
        out.append((position, (*_fields(e), value)))
    return out


def _fields(e: RuleEvent) -> tuple[object, ...]:
    return (
        e.rule_id, e.direction, e.change, e.level, e.previous, e.setpoint, e.setpoint_label,
        e.ts_ms, e.start_ms, e.kind, e.window_ms, e.flapping,
    )  # fmt: skip


def reference(states: list[LatchState], rows: list[Reading]) -> list[tuple[int, RuleEvent]]:
    """Apply ``rows`` to ``states`` (in place) with the rules' own ``evaluate``."""
    expected = []
    for position, (slot, t, v, q) in enumerate(rows):
        states[slot], event = RULES[slot].evaluate(states[slot], t, v, q)
        if event is not None:
            expected.append((position, with_flapping(event, states[slot].flapping)))
    return expected


def batch_of(rows: list[Reading]) -> Batch:
    return Batch(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.int64),
    )


@settings(max_examples=200)
@given(
    st.lists(series(30), min_size=len(RULES), max_size=len(RULES)),
    st.lists(series(120), min_size=1, max_size=5),
)
def test_lane_matches_the_reference(
    prefixes: list[list[Reading]], batches: list[list[Reading]]
) -> None:
    lane = OutOfRangeLane()
    states: list[LatchState] = []
    for slot, rule in enumerate(RULES):
        # A mid-way state: the reference's after some readings of this slot alone.
        state = rule.initial()
        for _, t, v, q in timed(prefixes[slot], 0)[0]:
            state, _ = rule.evaluate(state, t, v, q)
        assert lane.accepts(rule, state)
        assert lane.add(rule, state) == slot
        states.append(state)
    clock = 0
    for steps in batches:
        rows, clock = timed(steps, clock)
        expected = reference(states, rows)
        assert comparable(lane.evaluate(batch_of(rows))) == comparable(expected)
        assert [lane.get(s) for s in range(len(RULES))] == states
        assert lane.level(np.arange(len(RULES))).tolist() == [s.level for s in states]
        assert lane.tick(10**6) == []


def test_faults_raise_and_a_valid_reading_clears_naming_the_nearer_bound() -> None:
    lane = OutOfRangeLane()
    lane.add(RULES[0], RULES[0].initial())
    rows: list[Reading] = [
        (0, 1, 50.0, 0),
        (0, 2, -9999.0, 0),  # sentinel: raised
        (0, 3, 50.0, 3),  # fault quality: still raised
        (0, 3, 50.0, 0),  # stale: ignored
        (0, 4, 10.0, 0),  # valid, nearer the low bound: cleared
        (0, 5, math.nan, 0),  # NaN: raised
        (0, 6, 90.0, 2),  # an unlisted quality is no fault: cleared
    ]
    events = lane.evaluate(batch_of(rows))
    assert [(p, e.change, e.direction, e.setpoint, e.setpoint_label) for p, e in events] == [
        (1, Change.RAISED, "high", -9999.0, "故障值"),
        (4, Change.CLEARED, "low", 0.0, "量程下限"),
        (5, Change.RAISED, "high", 100.0, "无效值"),
        (6, Change.CLEARED, "high", 100.0, "量程上限"),
    ]
    assert lane.get(0).last_ts_ms == 6


def test_rules_with_delays_and_latches_with_a_running_delay_are_left_to_the_engine() -> None:
    lane = OutOfRangeLane()
    rule = RULES[0]
    assert not lane.accepts(OutOfRangeRule("d", 0.0, 1.0, on_delay_ms=1000), LatchState())
    assert not lane.accepts(OutOfRangeRule("d", 0.0, 1.0, consecutive=3), LatchState())
    assert not lane.accepts(rule, LatchState(level=2, start_ms=1, release_ms=5))
    assert not lane.accepts(rule, LatchState(level=0, start_ms=1)), "the columns drop it"
    threshold = ThresholdRule("t", Direction.HIGH, (Setpoint(Level.RED, 1.0, 0.5),))
    assert not lane.accepts(threshold, LatchState())
    assert lane.accepts(rule, LatchState(level=2, start_ms=1, last_ts_ms=1))
