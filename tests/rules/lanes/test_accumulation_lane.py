"""The accumulation lane against the reference rule, reading by reading.

Batches mix slots of several rules (interval and cumulative gauges, CMA signals and flash-flood
tables, tiny buckets and micro-unit set-points so that spreads and their remainders decide
alarms), with duplicate, late and far-apart readings, NaN, infinite and negative values,
counter resets and wraps, and states carried into a fresh lane between batches (a snapshot
restored). After every batch the events and every slot's state must equal the reference's.
"""

from __future__ import annotations

import itertools
import math
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.accumulation import (
    AccumulationRule,
    AccumulationState,
    LevelWindows,
    Mode,
    WindowSetpoint,
)
from rules.events import Change, RuleEvent, with_flapping
from rules.lanes import accumulation as lane_module
from rules.lanes.accumulation import TOTAL, AccumulationLane, Table, nested
from rules.lanes.base import Batch
from rules.latch import LatchState
from rules.levels import Level

T0 = 1_795_000_200_000
MIN = 60_000
HOUR = 60 * MIN
NAN, INF = math.nan, math.inf


def windows(*specs: tuple[int, float, float]) -> tuple[WindowSetpoint, ...]:
    return tuple(WindowSetpoint(n, s, c) for n, s, c in specs)


def flash_table(
    hours: tuple[int, ...], rows: dict[Level, tuple[float, ...]], unit: int
) -> tuple[LevelWindows, ...]:
    """Flash-flood critical rainfall: per level one value per window, clear at 80 %."""
    return tuple(
        LevelWindows(
            lvl,
            lvl.label,
            windows(*((h * unit, v, v * 0.8) for h, v in zip(hours, vs, strict=True))),
        )
        for lvl, vs in rows.items()
    )


CMA = AccumulationRule(
    "rainstorm",
    Mode.INTERVAL,
    (
        LevelWindows(Level.BLUE, "暴雨蓝色预警", windows((12 * HOUR, 50, 45))),
        LevelWindows(Level.YELLOW, "暴雨黄色预警", windows((6 * HOUR, 50, 45))),
        LevelWindows(Level.ORANGE, "暴雨橙色预警", windows((3 * HOUR, 50, 45))),
        LevelWindows(Level.RED, "暴雨红色预警", windows((3 * HOUR, 100, 95))),
    ),
)
FLASH = AccumulationRule(
    "flash_flood",
    Mode.INTERVAL,
    flash_table(
        (1, 3, 6, 24),
        {
            Level.BLUE: (35, 55, 70, 100),
            Level.YELLOW: (45, 75, 95, 130),
            Level.ORANGE: (60, 100, 120, 160),
            Level.RED: (80, 120, 150, 200),
        },
        HOUR,
    ),
)
# Ten-millisecond buckets: a handful of readings fills a window, gaps beyond the horizon are
# common, and the cumulative counter wraps at 50 (values above it make negative increments).
CMA_COUNTER = AccumulationRule(
    "cma_counter",
    Mode.CUMULATIVE,
    (
        LevelWindows(Level.BLUE, "b", windows((120, 5, 4))),
        LevelWindows(Level.YELLOW, "y", windows((60, 5, 4))),
        LevelWindows(Level.ORANGE, "o", windows((30, 5, 4))),
        LevelWindows(Level.RED, "r", windows((30, 10, 8))),
    ),
    bucket_ms=10,
    counter_max=50,
)
FLASH_COUNTER = AccumulationRule(
    "flash_counter",
    Mode.CUMULATIVE,
    flash_table(
        (1, 3, 6, 24),
        {Level.BLUE: (3, 5, 7, 10), Level.ORANGE: (4, 7, 9, 13), Level.RED: (6, 10, 12, 16)},
        7,
    ),
    bucket_ms=7,
)
# Set-points of a few micro-units: how a spread's remainder is shared decides the alarm.
MICROSCOPIC = AccumulationRule(
    "micro",
    Mode.INTERVAL,
    (
        LevelWindows(Level.YELLOW, "y", windows((40, 5e-6, 3e-6), (100, 9e-6, 6e-6))),
        LevelWindows(Level.RED, "r", windows((40, 8e-6, 6e-6))),
    ),
    bucket_ms=10,
)
# Several windows per level, not the same ones on each level, still nested.
MIXED = AccumulationRule(
    "mixed",
    Mode.INTERVAL,
    (
        LevelWindows(Level.BLUE, "b", windows((30, 4, 2), (80, 7, 5))),
        LevelWindows(Level.YELLOW, "y", windows((30, 6, 4), (50, 8, 5))),
        LevelWindows(Level.RED, "r", windows((50, 9, 6))),
    ),
    bucket_ms=10,
)
# One- and two-bucket windows: the level follows the last reading or two, so alarms chatter
# and the flapping flag turns on and off.
CHATTER = AccumulationRule(
    "chatter",
    Mode.INTERVAL,
    (
        LevelWindows(Level.BLUE, "b", windows((10, 2, 1), (20, 3, 2))),
        LevelWindows(Level.RED, "r", windows((10, 5, 4))),
    ),
    bucket_ms=10,
)

RULES = (CMA, FLASH, CMA_COUNTER, FLASH_COUNTER, MICROSCOPIC, MIXED, CHATTER, CMA, MIXED)
TICK_MS = (150_000, 150_000, 5, 4, 5, 5, 10, 150_000, 5)
"""Per slot, the time step of the drawn readings: half a bucket."""
VALUES = {
    "rainstorm": (0.0, 0.5, 2.0, 5.0, 12.5, 30.0, 49.9, 60.0, NAN, -1.0, INF),
    "flash_flood": (0.0, 1.0, 5.0, 12.0, 20.0, 35.0, 50.0, 80.0, NAN, -0.5),
    "cma_counter": (0.0, 1.0, 2.0, 3.0, 4.5, 6.0, 12.0, 30.0, 49.5, 60.0, NAN, -2.0, 1e10),
    "flash_counter": (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, NAN, -1.0, 1e12),
    "micro": (0.0, 1e-6, 1.5e-6, 2.5e-6, 3e-6, 5e-6, 7e-6, 1.1e-5, 2.9e-5, NAN, -1e-6),
    "mixed": (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 9.0, NAN, -1.0),
    "chatter": (0.0, 0.0, 1.0, 2.0, 4.0, 5.0, NAN),
}
SANE = {
    "rainstorm": VALUES["rainstorm"],
    "flash_flood": VALUES["flash_flood"],
    "cma_counter": (0.0, 1.0, 2.0, 3.0, 4.5, 6.0, 12.0, 30.0, 49.5, NAN, -2.0),
    "flash_counter": (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, NAN, -1.0),
    "micro": VALUES["micro"],
    "mixed": VALUES["mixed"],
    "chatter": VALUES["chatter"],
}
"""Without counters above ``counter_max`` and huge readings: never the reference fallback."""
STEPS = (-3, -1, 0, 0, 1, 1, 1, 2, 2, 3, 5, 9, 30, 90, 700)
"""Ticks between a slot's drawn readings: late, duplicate, regular, gaps past every horizon."""

Row = tuple[int, int, int]
"""(slot, step index, value index) as drawn."""

rows_strategy = st.tuples(
    st.integers(0, len(RULES) - 1),
    st.integers(0, len(STEPS) - 1),
    st.integers(0, 12),
)
batches_strategy = st.lists(
    st.tuples(st.lists(rows_strategy, max_size=80), st.booleans()), min_size=1, max_size=8
)


def as_batch(rows: list[tuple[int, int, float]]) -> Batch:
    return Batch(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.zeros(len(rows), dtype=np.int64),
    )


def reference(
    states: list[AccumulationState],
    rows: list[tuple[int, int, float]],
    rules: tuple[AccumulationRule, ...] = RULES,
) -> list[tuple[int, RuleEvent]]:
    """Apply the rows to ``states`` with the reference rules (as the engine does)."""
    expected = []
    for position, (slot, ts, value) in enumerate(rows):
        states[slot], event = rules[slot].evaluate(states[slot], ts, value)
        if event is not None:
            expected.append((position, with_flapping(event, states[slot].latch.flapping)))
    return expected


def fresh(states: list[AccumulationState]) -> AccumulationLane:
    lane = AccumulationLane()
    for rule, state in zip(RULES, states, strict=True):
        assert lane.accepts(rule, state)
        lane.add(rule, state)
    return lane


def replay(drawn: list[tuple[list[Row], bool]], pools: dict[str, tuple[float, ...]]) -> int:
    """Feed the drawn batches to the lane and the reference; return the events seen."""
    states = [rule.initial() for rule in RULES]
    lane = fresh(states)
    clock = [0] * len(RULES)
    seen = 0
    for drawn_rows, reload in drawn:
        rows = []
        for slot, step, pick in drawn_rows:
            clock[slot] += STEPS[step]
            pool = pools[RULES[slot].rule_id]
            rows.append((slot, T0 + clock[slot] * TICK_MS[slot], pool[pick % len(pool)]))
        expected = reference(states, rows)
        assert lane.evaluate(as_batch(rows)) == expected
        assert [lane.get(s) for s in range(len(RULES))] == states
        slots = np.arange(len(RULES), dtype=np.int64)
        assert lane.level(slots).tolist() == [s.latch.level for s in states]
        seen += len(expected)
        if reload and all(lane.accepts(r, s) for r, s in zip(RULES, states, strict=True)):
            # A snapshot restored mid-way, through its JSON form.
            lane = fresh([AccumulationState.from_dict(s.to_dict()) for s in states])
    return seen


@settings(max_examples=300)
@given(batches_strategy)
def test_batches_match_the_reference(drawn: list[tuple[list[Row], bool]]) -> None:
    replay(drawn, VALUES)


@settings(max_examples=100)
@given(batches_strategy)
def test_long_batch_arithmetic_matches_the_reference(drawn: list[tuple[list[Row], bool]]) -> None:
    """The same with the window-by-window arithmetic the lane uses for long batches."""
    with patch.object(lane_module, "COLUMNWISE", 0):
        replay(drawn, VALUES)


@settings(max_examples=150)
@given(batches_strategy)
def test_plausible_readings_stay_in_columns(drawn: list[tuple[list[Row], bool]]) -> None:
    """The reference fallback is for absurd counters only: here every slot stays columnar."""
    states = [rule.initial() for rule in RULES]
    lane = fresh(states)
    clock = [0] * len(RULES)
    for drawn_rows, _ in drawn:
        rows = []
        for slot, step, pick in drawn_rows:
            clock[slot] += max(STEPS[step], 0)
            pool = SANE[RULES[slot].rule_id]
            rows.append((slot, T0 + clock[slot] * TICK_MS[slot], pool[pick % len(pool)]))
        assert lane.evaluate(as_batch(rows)) == reference(states, rows)
        assert not lane.objects
        assert [lane.get(s) for s in range(len(RULES))] == states


@settings(max_examples=200)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from((0, 1, 1, 1, 2)), st.integers(0, 6)), max_size=60),
        min_size=1,
        max_size=6,
    )
)
def test_chattering_alarms_match_the_reference(batches: list[list[tuple[int, int]]]) -> None:
    """Readings that move the level nearly every time: the flapping flag turns on and off at
    its limits, and its history must carry over between batches cut anywhere."""
    rules = (CHATTER,)
    states = [CHATTER.initial()]
    lane = AccumulationLane()
    lane.add(CHATTER, states[0])
    clock = 0
    for drawn in batches:
        rows = []
        for step, pick in drawn:
            clock += step
            rows.append((0, T0 + 10 * clock, VALUES["chatter"][pick]))
        assert lane.evaluate(as_batch(rows)) == reference(states, rows, rules)
        assert lane.get(0) == states[0]


@pytest.mark.parametrize("columnwise", [lane_module.COLUMNWISE, 0])
def test_a_stormy_day_raises_every_level_and_clears(
    columnwise: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guard against a vacuous property test: two days of 5-minute readings in one batch, a
    storm on the first, dry the second."""
    monkeypatch.setattr(lane_module, "COLUMNWISE", columnwise)
    rng = np.random.default_rng(7)
    n = 2 * 288
    rain = np.where(rng.random(n) < 0.3, rng.gamma(2.0, 1.0, n), 0.0).round(1)
    rain[100:130] = 9.0
    rain[288:] = 0.0
    states = [CMA.initial(), FLASH.initial()]
    lane = AccumulationLane()
    lane.add(CMA, states[0])
    lane.add(FLASH, states[1])
    rows = [
        (slot, T0 + i * 5 * MIN + 1000 * slot, float(rain[i])) for i in range(n) for slot in (0, 1)
    ]
    expected = reference(states, rows, (CMA, FLASH))
    got = lane.evaluate(as_batch(rows))
    assert got == expected
    assert {e.level for _, e in got if e.level is not None} == {
        Level.BLUE,
        Level.YELLOW,
        Level.ORANGE,
        Level.RED,
    }
    assert Change.CLEARED in {e.change for _, e in got}
    assert [lane.get(0), lane.get(1)] == states
    assert not lane.objects


def test_sums_beyond_int64_headroom_fall_back_to_the_reference_and_return() -> None:
    """A bucket total at the int64 headroom is evaluated by the reference until it has left
    the horizon; then the slot is columnar again."""
    rules = (MIXED,)
    states = [
        AccumulationState(LatchState(level=4, start_ms=T0 - 10, last_ts_ms=T0), (TOTAL - 10,))
    ]
    lane = AccumulationLane()
    assert lane.accepts(MIXED, states[0])
    lane.add(MIXED, states[0])
    for rows, held_aside in (
        ([(0, T0 + 5, 1e-5), (0, T0 + 20, 1.0)], True),
        ([(0, T0 + 2000, 2.0), (0, T0 + 2010, 3.0)], False),  # 200 buckets later
        ([(0, T0 + 2020, 4.0), (0, T0 + 2100, 0.0)], False),
    ):
        expected = reference(states, rows, rules)
        assert lane.evaluate(as_batch(rows)) == expected
        assert lane.get(0) == states[0]
        assert (0 in lane.objects) is held_aside


def test_a_counter_above_its_maximum_is_ignored_as_by_the_reference() -> None:
    """A counter reading 60 with ``counter_max`` 50 is garbled: nothing changes, and the
    next good reading continues from the last good one (no negative bucket, no alarm)."""
    rules = (CMA_COUNTER,)
    states = [CMA_COUNTER.initial()]
    lane = AccumulationLane()
    lane.add(CMA_COUNTER, states[0])
    rows = [(0, T0, 10.0), (0, T0 + 10, 60.0), (0, T0 + 20, 12.0)]
    expected = reference(states, rows, rules)
    assert expected == []
    assert lane.evaluate(as_batch(rows)) == expected
    assert lane.get(0) == states[0]
    assert states[0].last_value == 12.0
    assert not lane.objects


@pytest.mark.parametrize(
    "state",
    [
        AccumulationState(LatchState(pending=((2, T0, 1),))),
        AccumulationState(LatchState(level=0, start_ms=T0)),
        AccumulationState(LatchState(level=3, start_ms=T0)),  # not one of the rule's levels
        AccumulationState(amounts=(0, 5)),
        AccumulationState(amounts=(5, -1)),
        AccumulationState(amounts=(1,) * 9),
        AccumulationState(amounts=(TOTAL,)),
        AccumulationState(last_value=NAN),
        AccumulationState(last_value=1e12),
    ],
)
def test_states_the_columns_cannot_hold_are_declined(state: AccumulationState) -> None:
    assert not AccumulationLane().accepts(MIXED, state)  # horizon 8 buckets


def test_rules_with_delays_or_unnested_levels_are_declined() -> None:
    lane = AccumulationLane()
    assert lane.accepts(CMA, CMA.initial())
    delayed = AccumulationRule("d", Mode.INTERVAL, CMA.levels, on_delay_ms=MIN)
    assert not lane.accepts(delayed, delayed.initial())
    # Yellow at 40 mm in 6 h is reached by 40 mm in the last hour, which blue (50 mm in 12 h)
    # is not: reaching yellow does not imply reaching blue.
    lower = AccumulationRule(
        "u",
        Mode.INTERVAL,
        (
            LevelWindows(Level.BLUE, "b", windows((12 * HOUR, 50, 45))),
            LevelWindows(Level.YELLOW, "y", windows((6 * HOUR, 40, 35))),
        ),
    )
    assert not lane.accepts(lower, lower.initial())
    # The same with blue's clear set-point the only problem.
    clears = AccumulationRule(
        "c",
        Mode.INTERVAL,
        (
            LevelWindows(Level.BLUE, "b", windows((12 * HOUR, 50, 49))),
            LevelWindows(Level.YELLOW, "y", windows((6 * HOUR, 60, 45))),
        ),
    )
    assert not lane.accepts(clears, clears.initial())
    with pytest.raises(ValueError, match="object lane"):
        lane.add(lower, lower.initial())


def monotone_by_brute_force(table: Table, longest: int, top: int) -> bool:
    """Reached and held monotone across levels for every non-decreasing vector of window sums
    (sums of non-negative buckets: a longer window never holds less) up to ``top``."""
    for sums in itertools.combinations_with_replacement(range(top + 1), longest):
        by_length = dict(enumerate(sums, start=1))  # sorted: sums[n - 1] is the n-bucket sum
        for column in (1, 2):
            hits = [any(by_length[w[0]] >= w[column] for w in level) for level in table]
            if any(up and not low for low, up in itertools.pairwise(hits)):
                return False
    return True


window_strategy = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 5)).map(
    lambda w: (w[0], w[1], min(w[1], w[2]))
)
table_strategy = st.lists(
    st.lists(window_strategy, min_size=1, max_size=3, unique_by=lambda w: w[0]),
    min_size=1,
    max_size=4,
)


@settings(max_examples=1000)
@given(table_strategy)
def test_nested_is_exactly_monotone_for_every_sum(table: Table) -> None:
    assert nested(table) == monotone_by_brute_force(table, 4, 6)


def test_nested_accepts_the_presets_shapes() -> None:
    assert nested(CMA.limits())
    assert nested(FLASH.limits())
    assert nested(MIXED.limits())
