"""The spike lane against the reference, reading for reading.

Readings are mostly a few repeated values (flat windows, MAD 0, even and odd window sizes),
with spikes both ways, level shifts long enough to be taken in, NaN and ±infinity, and stale
and duplicate timestamps. Slots have different windows, minimum points, shifts and levels and
start fresh or from mid-way states the reference produced. Every example runs through lanes
tuned to take each of their paths (:data:`MODES`): the fast path alone or not at all, exact
spells or one reading at a time, short steps, plain rounds, the one-by-one replay with and
without its shortcut, and the mix the lane chooses — all must agree with the reference bit for
bit. Rules with a large ``min_scale`` and readings on either side of the floor put the fast
path's shortcut to the test.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.events import Change, RuleEvent, with_flapping
from rules.lanes.base import Batch
from rules.lanes.spike import SpikeLane
from rules.latch import LatchState
from rules.levels import Level
from rules.spike import MAD_TO_SIGMA, SpikeRule, SpikeState
from rules.threshold import Direction, Setpoint, ThresholdRule

RULES = (
    SpikeRule("small", window_points=5, k=2.0, min_points=3, consecutive_shift=2),
    SpikeRule("even", window_points=6, k=1.5, min_points=4, consecutive_shift=1, level=Level.RED),
    SpikeRule("odd", window_points=7, k=3.0, min_points=3, min_scale=0.7, consecutive_shift=3),
    SpikeRule("default", level=Level.ORANGE),
)
VALUES = (10.0, 10.0, 10.0, 10.5, 9.5, 11.0, 12.25, 40.0, -30.0, 0.1, 1e-300, -0.0, 0.0)
MODES: dict[str, dict[str, int]] = {
    "default": {},
    "arrays only": {"python_below": 0},
    "one by one": {"python_below": 10**9},
    "one by one, no shortcut": {"python_below": 10**9, "horizon": 0},
    "plain rounds": {"python_below": 0, "horizon": 0, "spell": 1},
    "exact spells only": {"python_below": 0, "horizon": 0, "worth": 0},
    "fast path, short steps": {
        "python_below": 0, "horizon": 3, "restart": 1, "spell": 3, "lines": 8, "worth": 0,
    },
    "steps, then rounds": {"python_below": 0, "worth": 10**6},
}  # fmt: skip
"""Lane settings (:class:`SpikeLane` attributes) steering it down each of its paths."""


def lane_for(mode: str) -> SpikeLane:
    """A fresh lane with the settings of ``mode``."""
    lane = SpikeLane()
    for name, value in MODES[mode].items():
        setattr(lane, name, value)
    return lane


Reading = tuple[int, int, float]
values = st.one_of(
    st.sampled_from(VALUES),
    st.sampled_from((math.nan, math.inf, -math.inf)),
    st.floats(-1e6, 1e6, allow_nan=False),
)
# (slot, time step from the reading before — mostly forward, some stale —, value)
readings = st.tuples(st.integers(0, len(RULES) - 1), st.integers(-3, 4), values)


def series(longest: int) -> st.SearchStrategy[list[Reading]]:
    """Up to ``longest`` readings, the length drawn evenly (plain lists are mostly short)."""
    return st.integers(0, longest).flatmap(lambda n: st.lists(readings, min_size=n, max_size=n))


def timed(rows: list[Reading], clock: int) -> tuple[list[Reading], int]:
    """``rows`` with their time steps made timestamps from ``clock`` on; the new clock."""
    out = []
    for slot, step, v in rows:
        clock += step
        out.append((slot, clock, v))
    return out, clock


def reference(states: list[SpikeState], rows: list[Reading]) -> list[tuple[int, RuleEvent]]:
    """Apply ``rows`` to ``states`` (in place) with the rules' own ``evaluate``."""
    expected = []
    for position, (slot, t, v) in enumerate(rows):
        states[slot], event = RULES[slot].evaluate(states[slot], t, v)
        if event is not None:
            expected.append((position, with_flapping(event, states[slot].latch.flapping)))
    return expected


def batch_of(rows: list[Reading]) -> Batch:
    n = len(rows)
    return Batch(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.zeros(n, dtype=np.int64),
    )


def shifts(draw: st.DrawFn, slot: int) -> list[Reading]:
    """A burst for one slot: a level, then maybe a step away from it, one reading a tick."""
    level = draw(st.sampled_from(VALUES))
    step = draw(st.sampled_from((0.0, 0.0, 25.0, -25.0, 1000.0)))
    before, after = draw(st.integers(0, 15)), draw(st.integers(0, 15))
    jitter = st.sampled_from((0.0, 0.0, 0.5, -0.5))
    values = [level + draw(jitter) for _ in range(before)]
    values += [level + step + draw(jitter) for _ in range(after)]
    return [(slot, 1, v) for v in values]


@st.composite
def batches(draw: st.DrawFn) -> list[list[Reading]]:
    """Batches of random readings and clean bursts, interleaved across slots, timed."""
    out = []
    clock = 0
    for _ in range(draw(st.integers(1, 5))):
        rows = draw(series(50))
        for _ in range(draw(st.integers(0, 3))):
            burst = shifts(draw, draw(st.integers(0, len(RULES) - 1)))
            cuts = draw(st.permutations(range(len(rows) + len(burst))))
            for place, reading in zip(sorted(cuts[: len(burst)]), burst, strict=True):
                rows.insert(place, reading)
        timed_rows, clock = timed(rows, clock)
        out.append(timed_rows)
    return out


@settings(max_examples=300)
@given(st.lists(series(40), min_size=len(RULES), max_size=len(RULES)), batches())
def test_lane_matches_the_reference(
    prefixes: list[list[Reading]], batch_rows: list[list[Reading]]
) -> None:
    starts: list[SpikeState] = []
    for slot, rule in enumerate(RULES):
        # A mid-way state: the reference's after some readings of this slot alone.
        state = rule.initial()
        for _, t, v in timed(prefixes[slot], -50)[0]:
            state, _ = rule.evaluate(state, t, v)
        starts.append(state)
    lanes = {}
    for mode in MODES:
        lane = lane_for(mode)
        for slot, rule in enumerate(RULES):
            assert lane.accepts(rule, starts[slot])
            assert lane.add(rule, starts[slot]) == slot
        lanes[mode] = lane
    states = list(starts)
    for rows in batch_rows:
        expected = reference(states, rows)
        batch = batch_of(rows)
        for mode, lane in lanes.items():
            assert lane.evaluate(batch) == expected, mode
            assert [lane.get(s) for s in range(len(RULES))] == states, mode
            assert lane.level(np.arange(len(RULES))).tolist() == [s.latch.level for s in states]


@settings(max_examples=50)
@given(st.integers(2, 60), st.integers(0, 2**32 - 1))
def test_many_slots_and_long_histories_match_the_reference(slots: int, seed: int) -> None:
    """Noise with rare spikes and steps over many slots, one batch, then one reading each."""
    rng = np.random.default_rng(seed)
    rules = [RULES[i % len(RULES)] for i in range(slots)]
    lengths = rng.integers(0, 80, slots)
    slot = np.repeat(np.arange(slots), lengths)
    rng.shuffle(slot)
    value = np.round(rng.normal(10.0, 1.0, len(slot)), 1)
    value[rng.random(len(slot)) < 0.05] = 60.0
    value[rng.random(len(slot)) < 0.02] = np.nan
    ts = np.arange(len(slot), dtype=np.int64) // 3
    lanes = {}
    for mode in MODES:
        lane = lane_for(mode)
        for rule in rules:
            lane.add(rule, rule.initial())
        lanes[mode] = lane
    states = [rule.initial() for rule in rules]
    for batch in (
        Batch(slot, ts, value, np.zeros(len(slot), np.int64)),
        Batch(
            np.arange(slots), np.full(slots, 10**6), np.full(slots, 50.0), np.zeros(slots, np.int64)
        ),
    ):
        expected = []
        for position, (s, t, v) in enumerate(
            zip(batch.slot.tolist(), batch.ts.tolist(), batch.value.tolist(), strict=True)
        ):
            states[s], event = rules[s].evaluate(states[s], t, v)
            if event is not None:
                expected.append((position, with_flapping(event, states[s].latch.flapping)))
        for mode, lane in lanes.items():
            assert lane.evaluate(batch) == expected, mode
            assert [lane.get(s) for s in range(slots)] == states, mode


def run(lane: SpikeLane, series: list[float], slot: int = 0, start: int = 0) -> list[RuleEvent]:
    n = len(series)
    batch = Batch(
        np.full(n, slot, np.int64),
        np.arange(start, start + n, dtype=np.int64),
        np.array(series),
        np.zeros(n, np.int64),
    )
    return [e for _, e in lane.evaluate(batch)]


@pytest.mark.parametrize("mode", MODES)
def test_a_spike_raises_and_clears_and_stays_out_of_the_window(mode: str) -> None:
    rule = SpikeRule("spike")
    lane = lane_for(mode)
    lane.add(rule, rule.initial())
    base = [9.0, 11.0] * 5  # median 10, MAD 1
    raised, cleared = run(lane, [*base, 50.0, 10.0, 10.5])
    assert (raised.change, raised.value, raised.setpoint) == (
        Change.RAISED,
        50.0,
        10.0 + rule.k * MAD_TO_SIGMA,
    )
    assert (cleared.change, cleared.value) == (Change.CLEARED, 10.0)
    assert lane.get(0).window == (*base, 10.0, 10.5)


@pytest.mark.parametrize("mode", MODES)
def test_a_level_shift_is_taken_in_after_consecutive_shift_outliers(mode: str) -> None:
    rule = SpikeRule("spike", window_points=10, min_points=5, consecutive_shift=3)
    lane = lane_for(mode)
    lane.add(rule, rule.initial())
    run(lane, [10.0] * 10 + [50.0, 51.0])
    held = lane.get(0)
    assert (held.held, held.run, held.window) == ((50.0, 51.0), 2, (10.0,) * 10)
    run(lane, [52.0], start=100)
    taken = lane.get(0)
    assert (taken.held, taken.run) == ((), 3)
    assert taken.window == (10.0,) * 7 + (50.0, 51.0, 52.0)


@pytest.mark.parametrize(
    ("window", "value"),
    [
        ((0.1, 0.2, 0.7, 1e308, 1e308, -3.0), 0.45),
        ((0.0, 5e-324, 5e-324, 1.0), 0.0),  # (a + b) / 2, where a / 2 + b / 2 would be 0
        ((1e308, 1.7e308, 1.7e308, 1e308), 5.0),  # a + b overflows to inf, as in Python
        ((-1.7e308, 1.7e308, 1.7e308, -1.7e308, 0.0), 1e308),  # 1.4826 × MAD overflows
        ((3.0, 3.0, 3.0, 3.0, 3.0), 3.0 + 2e-9),  # MAD 0: min_scale decides
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_the_median_and_mad_round_like_statistics_median(
    window: tuple[float, ...], value: float, mode: str
) -> None:
    rule = SpikeRule("spike", window_points=6, min_points=4, k=1.0, min_scale=1e-9)
    state = SpikeState(window=window)
    lane = lane_for(mode)
    lane.add(rule, state)
    expected, event = rule.evaluate(state, 1, value)
    assert run(lane, [value], start=1) == ([] if event is None else [event])
    assert lane.get(0) == expected


FLOOR_RULES = (
    SpikeRule("floor", window_points=6, k=2.0, min_points=3, min_scale=0.5, consecutive_shift=2),
    SpikeRule("quarter", window_points=9, k=1.0, min_points=4, min_scale=0.25),
    SpikeRule("gas", window_points=30, k=6.0, min_points=10, min_scale=1.0, level=Level.RED),
    SpikeRule("huge", window_points=4, k=1.0, min_points=3, min_scale=1e300, consecutive_shift=1),
)
"""Rules whose floor ``k × min_scale`` (1, 0.25, 6, 1e300) decides many readings."""

EDGES = tuple(
    sorted(
        {10.0 + d for d in (0.0, 0.25, -0.25, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 6.0, -6.0, 7.0)}
        | {math.nextafter(10.0 + d, math.inf) for d in (0.25, -0.25, 1.0, -1.0, 6.0, -6.0)}
        | {math.nextafter(10.0 + d, -math.inf) for d in (0.25, -0.25, 1.0, -1.0, 6.0, -6.0)}
        | {1.7e308, -1.7e308, 1e308, 0.0}
    )
)
"""Readings at the floor's distance from a flat window of 10s, one ulp either side of it, and
far beyond (the median of the huge ones overflows)."""


def check_modes(
    rules: list[SpikeRule], starts: list[SpikeState], batches: list[list[Reading]]
) -> None:
    """Every mode's lane against the reference, batch after batch: events, states, levels."""
    lanes = {}
    for mode in MODES:
        lane = lane_for(mode)
        for slot, (rule, state) in enumerate(zip(rules, starts, strict=True)):
            assert lane.add(rule, state) == slot
        lanes[mode] = lane
    states = list(starts)
    for rows in batches:
        expected = []
        for position, (slot, t, v) in enumerate(rows):
            states[slot], event = rules[slot].evaluate(states[slot], t, v)
            if event is not None:
                expected.append((position, with_flapping(event, states[slot].latch.flapping)))
        batch = batch_of(rows)
        for mode, lane in lanes.items():
            assert lane.evaluate(batch) == expected, mode
            assert [lane.get(s) for s in range(len(rules))] == states, mode
            levels = [s.latch.level for s in states]
            assert lane.level(np.arange(len(rules))).tolist() == levels, mode


@settings(max_examples=150)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.integers(0, 2 * len(FLOOR_RULES) - 1),
                st.one_of(st.just(10.0), st.just(10.0), st.sampled_from(EDGES)),
            ),
            max_size=80,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_readings_at_the_floor_are_judged_as_the_reference_does(
    batches: list[list[tuple[int, float]]],
) -> None:
    """Readings right at ``median ± floor`` of flat windows are not outliers, one ulp further
    out they are: the fast path must take in the first and leave the second to the exact
    path; and the median of huge windows overflows."""
    rules = [FLOOR_RULES[i % len(FLOOR_RULES)] for i in range(2 * len(FLOOR_RULES))]
    timed_batches, clock = [], 0
    for readings in batches:
        rows = []
        for slot, value in readings:
            clock += 1
            rows.append((slot, clock, value))
        timed_batches.append(rows)
    check_modes(rules, [rule.initial() for rule in rules], timed_batches)


def gas(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """``n`` readings of a gas sensor: noise around a background, rounded to 0.1 and never
    below 0, with rare glitches and maybe a leak (a ramp up, a plateau, a ramp down)."""
    value = rng.choice((0.0, 0.5, 2.0, 5.0)) + rng.normal(0.0, 0.3, n)
    if rng.random() < 0.5:
        start, ramp, hold = rng.integers(0, n), rng.integers(3, 30), rng.integers(0, 40)
        peak = rng.uniform(10.0, 80.0)
        t = np.arange(n) - start
        shape = np.clip(t / ramp, 0.0, 1.0) - np.clip((t - ramp - hold) / ramp, 0.0, 1.0)
        value += peak * shape
    value[rng.random(n) < 0.01] += rng.uniform(15.0, 35.0)
    out: npt.NDArray[np.float64] = np.round(np.maximum(value, 0.0), 1)
    return out


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_gas_sensors_with_leaks_and_glitches_match_the_reference(slots: int, seed: int) -> None:
    """The bench's kind of batch, small: steady noise (the fast path settles it), glitches
    (held out), leaks (shifts taken in, judged a spell at a time), slots of every rule mixed;
    a long batch in time order, then streaming batches of one reading per slot."""
    rng = np.random.default_rng(seed)
    kinds = (*FLOOR_RULES[:3], *RULES)
    rules = [kinds[i % len(kinds)] for i in range(slots)]
    n = int(rng.integers(1, 150))
    value = np.stack([gas(rng, n + 5) for _ in range(slots)])
    long_batch = [(s, t, float(value[s, t])) for t in range(n) for s in range(slots)]
    streaming = [[(s, n + i, float(value[s, n + i])) for s in range(slots)] for i in range(5)]
    check_modes(rules, [rule.initial() for rule in rules], [long_batch, *streaming])


def count_steps(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the lane's calls of its exact path and its plain rounds (and readings judged so)."""
    counts = {"exact": 0, "exact readings": 0, "rounds": 0}
    judge_one, spell = SpikeLane._judge_one, SpikeLane._spell

    def one(work: Any, rows: Any, *args: Any) -> Any:
        counts["exact"] += 1
        counts["exact readings"] += len(rows)
        return judge_one(work, rows, *args)

    def spelled(work: Any, rows: Any, cursors: Any, limit: Any, *args: Any) -> Any:
        counts["exact"] += 1
        taken, stop, shifted, wide = spell(work, rows, cursors, limit, *args)
        counts["exact readings"] += int((taken + stop).sum())
        return taken, stop, shifted, wide

    monkeypatch.setattr(SpikeLane, "_judge_one", staticmethod(one))
    monkeypatch.setattr(SpikeLane, "_spell", staticmethod(spelled))
    return counts


def test_steady_noise_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Noise well within the floor, with a glitch: of the 5,000 readings, only the glitch
    and a few after it (the first clears the alarm) are judged against a median."""
    counts = count_steps(monkeypatch)
    rule = FLOOR_RULES[2]  # floor 6
    rng = np.random.default_rng(1)
    values = np.round(2.0 + rng.normal(0.0, 0.3, (50, 100)), 1)
    values[7, 60] = 40.0
    lane = SpikeLane()
    lane.python_below = 0  # no replay of the glitching slot's last readings
    states = []
    for _ in range(50):
        lane.add(rule, rule.initial())
        states.append(rule.initial())
    rows = [(s, t, float(values[s, t])) for t in range(100) for s in range(50)]
    expected = []
    for position, (slot, t, v) in enumerate(rows):
        states[slot], event = rule.evaluate(states[slot], t, v)
        if event is not None:
            expected.append((position, with_flapping(event, states[slot].latch.flapping)))
    assert lane.evaluate(batch_of(rows)) == expected
    assert [e.change for _, e in expected] == [Change.RAISED, Change.CLEARED]
    assert 2 <= counts["exact readings"] <= 2 * SpikeLane.spell


def test_a_leak_is_judged_several_readings_a_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """A steep ramp: once the shift is taken in, every reading is an outlier that goes into
    the window by itself, and the exact path judges a spell of them at a time."""
    counts = count_steps(monkeypatch)
    rule = SpikeRule("spike", window_points=10, k=3.0, min_points=5, min_scale=0.5)
    lane = SpikeLane()
    lane.python_below = 0
    lane.worth = 0  # no plain rounds
    series = [10.0] * 12 + [10.0 + 5.0 * i for i in range(1, 41)]
    for _ in range(20):
        lane.add(rule, rule.initial())
    rows = [(slot, t, v) for t, v in enumerate(series) for slot in range(20)]
    state = rule.initial()
    expected_states = []
    for t, v in enumerate(series):
        state, _ = rule.evaluate(state, t, v)
        expected_states.append(state)
    lane.evaluate(batch_of(rows))
    assert [lane.get(s) for s in range(20)] == [expected_states[-1]] * 20
    assert counts["exact readings"] == 20 * 40
    assert counts["exact"] < 20, "a step per outlier"


def test_rules_with_an_off_delay_and_odd_states_are_left_to_the_engine() -> None:
    lane = SpikeLane()
    rule = SpikeRule("spike", window_points=10, min_points=5)
    assert lane.accepts(rule, rule.initial())
    assert not lane.accepts(SpikeRule("d", off_delay_ms=1000), SpikeState())
    assert not lane.accepts(rule, SpikeState(window=(1.0,) * 11)), "longer than the window"
    assert not lane.accepts(rule, SpikeState(window=(math.nan,)))
    assert not lane.accepts(rule, SpikeState(latch=LatchState(level=0, start_ms=5)))
    assert not lane.accepts(rule, SpikeState(latch=LatchState(level=1, release_ms=5)))
    threshold = ThresholdRule("t", Direction.HIGH, (Setpoint(Level.RED, 1.0, 0.5),))
    assert not lane.accepts(threshold, LatchState())
    with pytest.raises(ValueError, match="cannot be held"):
        lane.add(rule, SpikeState(window=(1.0,) * 11))
