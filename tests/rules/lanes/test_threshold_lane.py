"""The threshold lane and the latch columns against the reference, where alarms chatter.

Readings jump between below-clear, inside the band and above the set-point, so levels change
often and the flapping flag turns on and off at its exact limits; batches cut the series at
random places, so the columns' history and counts must carry over between batches.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.events import with_flapping
from rules.lanes.base import Batch
from rules.lanes.threshold import ThresholdLane
from rules.latch import LatchState
from rules.levels import Level
from rules.threshold import Direction, Setpoint, ThresholdRule

RULES = (
    ThresholdRule("hi", Direction.HIGH, (Setpoint(Level.ORANGE, 8, 3), Setpoint(Level.RED, 12, 9))),
    ThresholdRule("lo", Direction.LOW, (Setpoint(Level.YELLOW, 2, 5),)),
)


@settings(max_examples=200)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.integers(0, 1), st.integers(0, 90), st.sampled_from([0.0, 5.0, 10.0, 13.0])
            ),
            max_size=60,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_chattering_alarms_match_the_reference(batches: list[list[tuple[int, int, float]]]) -> None:
    lane = ThresholdLane()
    states: list[LatchState] = []
    for rule in RULES:
        lane.add(rule, rule.initial())
        states.append(rule.initial())
    for rows in batches:
        expected = []
        for position, (slot, t, v) in enumerate(rows):
            states[slot], event = RULES[slot].evaluate(states[slot], t, v)
            if event is not None:
                expected.append((position, with_flapping(event, states[slot].flapping)))
        batch = Batch(
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.int64),
            np.array([r[2] for r in rows], dtype=np.float64),
            np.zeros(len(rows), dtype=np.int64),
        )
        assert lane.evaluate(batch) == expected
        assert [lane.get(s) for s in range(len(RULES))] == states


def test_flapping_starts_at_exactly_the_limit() -> None:
    """Six changes in a window of twenty (30 %) make the alarm flapping; five do not."""
    rule = RULES[0]
    lane = ThresholdLane()
    lane.add(rule, rule.initial())
    quiet = [0.0] * 14
    for changes, flapping in ((5, False), (6, True)):
        series = quiet + [10.0 if i % 2 == 0 else 0.0 for i in range(changes)]
        lane = ThresholdLane()
        lane.add(rule, rule.initial())
        n = len(series)
        lane.evaluate(
            Batch(
                np.zeros(n, np.int64),
                np.arange(n, dtype=np.int64),
                np.array(series),
                np.zeros(n, np.int64),
            )
        )
        assert lane.get(0).flapping is flapping
        assert lane.get(0).changes == changes


def test_a_quiet_latch_keeps_a_start_it_was_loaded_with() -> None:
    """The reference carries ``start_ms`` through quiet readings; so must the columns."""
    rule = RULES[0]
    loaded = LatchState(level=0, start_ms=5, last_ts_ms=10)
    lane = ThresholdLane()
    lane.add(rule, loaded)
    state, _ = rule.evaluate(loaded, 20, 1.0)
    lane.evaluate(
        Batch(np.zeros(1, np.int64), np.array([20]), np.array([1.0]), np.zeros(1, np.int64))
    )
    assert lane.get(0) == state
    assert state.start_ms == 5
