"""The rate and projection lanes against the reference rules, reading by reading.

Each slot follows a straight line (so fits hit set-points exactly, through the 12-digit
rounding) plus drawn noise, at drawn steps: duplicates, late readings, readings faster than the
thinning spacing, gaps longer than the window, NaN and infinity. After every batch the lane's
events and states must equal what the reference's ``evaluate`` gives one reading at a time
(with the flapping flag as the engine sets it); a batch may first rebuild the lane from the
reference states, as after a restart. Each property runs through the lane's batch path (fits
summed over a matrix or column by column) and through its streaming path, the batches then cut
into runs of one reading per slot.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import window
from rules.events import RuleEvent, with_flapping
from rules.lanes import trend
from rules.lanes.base import Batch
from rules.lanes.trend import ProjectionLane, RateLane, TrendLane
from rules.latch import LatchState
from rules.levels import Level
from rules.projection import ProjectionRule
from rules.rate import RateRule
from rules.setpoints import Direction, Setpoint

T0 = 1_795_000_000_000
SEC = 1000
MIN = 60_000
HOUR = 3_600_000
QUICK_MS = 5100  # thinning spacing of 10 ms: readings a few ms apart replace the newest

RISE = RateRule(
    "rise",
    Direction.HIGH,
    (
        Setpoint(Level.YELLOW, 0.5, 0.4, "涨率黄"),
        Setpoint(Level.ORANGE, 1.0, 0.9, "涨率橙"),
        Setpoint(Level.RED, 2.0, 1.8, "涨率红"),
    ),
    window_ms=10 * MIN,
)
FALL = RateRule(
    "fall",
    Direction.LOW,
    (Setpoint(Level.ORANGE, -0.5, -0.4, "降率橙"), Setpoint(Level.RED, -1.0, -0.9, "降率红")),
    window_ms=5 * MIN,
    min_points=2,
    min_span_ms=2 * MIN,
)
QUICK = RateRule(
    "quick", Direction.HIGH, (Setpoint(Level.RED, 0.3, 0.3),), window_ms=QUICK_MS, min_points=2
)
SLOW = RateRule(
    "slow",
    Direction.HIGH,
    (Setpoint(Level.BLUE, 0.25, 0.1), Setpoint(Level.YELLOW, 0.5, 0.45)),
    window_ms=HOUR,
    min_points=4,
    min_span_ms=20 * MIN,
)
WARNING = ProjectionRule(
    "to_warning",
    103.5,
    "警戒水位",
    Direction.HIGH,
    (
        Setpoint(Level.YELLOW, 120.0, 130.0),
        Setpoint(Level.ORANGE, 60.0, 70.0),
        Setpoint(Level.RED, 30.0, 35.0),
    ),
    window_ms=10 * MIN,
)
DRY = ProjectionRule(
    "to_dry",
    95.0,
    "",
    Direction.LOW,
    (Setpoint(Level.RED, 30.0, 40.0),),
    window_ms=5 * MIN,
    min_points=2,
    min_span_ms=MIN,
)
BRIM = ProjectionRule(
    "to_brim",
    100.5,
    "满",
    Direction.HIGH,
    (Setpoint(Level.ORANGE, 2.0, 3.0), Setpoint(Level.RED, 1.0, 1.0)),
    window_ms=QUICK_MS,
    min_points=2,
)

# (rule, value at T0, units per hour): lines at the set-points' slopes and minutes.
RATE_SLOTS: list[tuple[Any, float, float]] = [
    (RISE, 100.0, 0.5),
    (RISE, 1203.47, 1.0),
    (FALL, 50.0, -0.5),
    (QUICK, 10.0, 0.3),
    (SLOW, 7.0, 0.25),
    (FALL, 3.0, -1.0),
]
PROJECTION_SLOTS: list[tuple[Any, float, float]] = [
    (WARNING, 102.5, 1.0),
    (WARNING, 103.0, -0.5),
    (DRY, 96.0, -2.0),
    (BRIM, 100.0, 30.0),
    (DRY, 95.5, -1.0),
    (WARNING, 103.4, 0.2),
]
Slots = list[tuple[Any, float, float]]
KINDS: dict[str, tuple[type[TrendLane[Any]], Slots]] = {
    "rate": (RateLane, RATE_SLOTS),
    "projection": (ProjectionLane, PROJECTION_SLOTS),
}

GRID = st.sampled_from([10 * SEC, 10 * SEC, 30 * SEC, MIN, 5 * MIN])
"""Steps that keep a slot's clock on a 10 s grid, where lines meet set-points exactly."""
STEPS = st.one_of(
    GRID,
    GRID,
    st.sampled_from([0, -1, -20 * SEC, 1, 3, 9, 10, 700, SEC, 2 * SEC]),  # late, fast
    st.sampled_from([QUICK_MS + 1, 11 * MIN, 2 * HOUR]),  # gaps past a window
    st.integers(-5 * SEC, 6 * MIN),
)
NOISE = st.sampled_from([0.0, 0.0, 0.0, 0.0, 0.004, -0.02, 0.3, math.nan, math.inf])


def readings(n_slots: int) -> st.SearchStrategy[list[tuple[int, int, float]]]:
    """(slot, step from the slot's clock, noise) per reading."""
    return st.lists(st.tuples(st.integers(0, n_slots - 1), STEPS, NOISE), max_size=40)


BATCHES = st.lists(st.tuples(readings(6), st.booleans()), min_size=1, max_size=8)


def as_batch(rows: list[tuple[int, int, float]]) -> Batch:
    """Observations in arrival order."""
    return Batch(
        slot=np.array([r[0] for r in rows], dtype=np.int64),
        ts=np.array([r[1] for r in rows], dtype=np.int64),
        value=np.array([r[2] for r in rows], dtype=np.float64),
        quality=np.zeros(len(rows), dtype=np.int64),
    )


def reference(
    rules: list[Any], states: list[Any], rows: list[tuple[int, int, float]]
) -> list[tuple[int, RuleEvent]]:
    """The rules' own ``evaluate`` one reading at a time, flapping set as the engine does."""
    events = []
    for i, (slot, ts, value) in enumerate(rows):
        states[slot], event = rules[slot].evaluate(states[slot], ts, value)
        if event is not None:
            events.append((i, with_flapping(event, states[slot].latch.flapping)))
    return events


def reloaded(kind: str, rules: list[Any], states: list[Any]) -> TrendLane[Any]:
    """A new lane holding the states as a restart reads them back."""
    lane: TrendLane[Any] = KINDS[kind][0]()
    for rule, state in zip(rules, states, strict=True):
        data = json.loads(json.dumps(state.to_dict()))
        assert lane.accepts(rule, state)
        lane.add(rule, rule.state_from_dict(data))
    return lane


def streamed(lane: TrendLane[Any], rows: list[tuple[int, int, float]]) -> list[Any]:
    """``rows`` fed in runs of at most one reading per slot (the streaming path's batches);
    the events at their positions in ``rows``."""
    events: list[Any] = []
    start = 0
    while start < len(rows):
        end, seen = start, set()
        while end < len(rows) and rows[end][0] not in seen:
            seen.add(rows[end][0])
            end += 1
        events += [(start + i, e) for i, e in lane.evaluate(as_batch(rows[start:end]))]
        start = end
    return events


def replay(
    kind: str,
    drawn: list[tuple[list[tuple[int, int, float]], bool]],
    slots: Slots | None = None,
    *,
    stream: bool = False,
) -> tuple[int, list[Any]]:
    """Feed the drawn batches to the lane (cut into :func:`streamed` runs if ``stream``) and
    the reference; return how many events flapped, and the reference's last states."""
    slots = slots or KINDS[kind][1]
    rules = [rule for rule, _, _ in slots]
    states = [rule.initial() for rule in rules]
    lane = reloaded(kind, rules, states)
    clock = [T0] * len(slots)
    flapping = 0
    for steps, reload in drawn:
        if reload:
            lane = reloaded(kind, rules, states)
        rows = []
        for slot, step, noise in steps:
            ts = clock[slot] + step
            clock[slot] = max(clock[slot], ts)
            _, base, per_hour = slots[slot]
            rows.append((slot, ts, base + per_hour * (ts - T0) / HOUR + noise))
        expected = reference(rules, states, rows)
        got = streamed(lane, rows) if stream else lane.evaluate(as_batch(rows))
        assert got == expected
        assert [lane.get(s) for s in range(len(rules))] == states
        assert lane.level(np.arange(len(rules))).tolist() == [s.latch.level for s in states]
        flapping += sum(e.flapping for _, e in expected)
    return flapping, states


def _no_batch_path(self: TrendLane[Any], batch: Batch) -> Any:
    raise AssertionError("a batch of one reading per slot must take the streaming path")


@contextmanager
def summing(path: str) -> Iterator[None]:
    """Force batches through one path: the batch path with the fits' float sums over a
    ``matrix`` or by ``columns``; or ``stream``, where the batch path is an error (the
    batches are to be :func:`streamed`)."""
    saved = trend.SMALL, trend.STREAM, TrendLane._batch
    if path == "stream":
        TrendLane._batch = _no_batch_path  # type: ignore[method-assign]
    else:
        trend.SMALL = 10**9 if path == "matrix" else 0
        trend.STREAM = 0
    try:
        yield
    finally:
        trend.SMALL, trend.STREAM, TrendLane._batch = saved  # type: ignore[method-assign]


PATHS = pytest.mark.parametrize("path", ["matrix", "columns", "stream"])


@PATHS
@pytest.mark.parametrize("kind", list(KINDS))
@given(drawn=BATCHES)
def test_batches_match_the_reference(kind: str, path: str, drawn: Any) -> None:
    with summing(path):
        replay(kind, drawn, stream=path == "stream")


CHATTER: dict[str, Slots] = {"rate": [(QUICK, 10.0, 0.3)], "projection": [(BRIM, 100.0, 30.0)]}
CHATTER_STEPS = st.tuples(
    st.just(0),
    # 10 ms is the thinning spacing; 3 then QUICK_MS - 3 puts a sample on the window's edge.
    st.sampled_from([SEC, SEC, 2 * SEC, 3, 10, QUICK_MS - 3, QUICK_MS + 1]),
    st.sampled_from([0.0, 0.001, -0.001, 0.002, math.nan]),
)


@PATHS
@pytest.mark.parametrize("kind", list(KINDS))
@given(
    drawn=st.lists(
        st.tuples(st.lists(CHATTER_STEPS, max_size=40), st.booleans()), min_size=1, max_size=5
    )
)
def test_chattering_alarms_flap_as_the_reference(kind: str, path: str, drawn: Any) -> None:
    """One short-window slot whose slope flips with the noise: the flapping flag counts
    judged readings only."""
    with summing(path):
        replay(kind, drawn, CHATTER[kind], stream=path == "stream")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_chattering_alarm_flaps(kind: str, stream: bool) -> None:
    """Noise flipping the slope every reading, with gaps (unjudged readings) between runs."""
    swing = {"rate": 0.002, "projection": 0.02}[kind]  # flips the slope's sign
    run = [(0, SEC, (-1) ** i * swing) for i in range(12)] + [(0, QUICK_MS + 1, 0.0)]
    with summing("stream" if stream else "matrix"):
        flapped, _ = replay(kind, [(run * 4, False), (run * 2, True)], CHATTER[kind], stream=stream)
    assert flapped > 0


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_flapping_alarm_settles_only_at_the_leave_limit(kind: str, stream: bool) -> None:
    """Chattering, then calm readings until the changes the latch remembers are fewer than
    the enter limit asks but more than the leave limit: still flapping (the flag's own
    hysteresis)."""
    swing = {"rate": 0.002, "projection": 0.02}[kind]
    calm = {"rate": 21, "projection": 17}[kind]
    run = [(0, SEC, (-1) ** i * swing) for i in range(24)] + [(0, SEC, 0.0)] * calm
    with summing("stream" if stream else "matrix"):
        _, states = replay(kind, [(run, False)], CHATTER[kind], stream=stream)
    latch = states[0].latch
    assert latch.flapping and 2 < latch.changes < 6, "the case must sit between the limits"


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("size", [2400, 50, 6])
def test_steady_lines_raise_on_their_set_points(kind: str, size: int) -> None:
    """Exactly linear series every 10 s, in one large batch, many small ones or one reading
    per slot at a time (the streaming path): the fits hit set-points exactly (through the
    12-digit rounding) and alarm."""
    slots = KINDS[kind][1]
    rules = [rule for rule, _, _ in slots]
    states = [rule.initial() for rule in rules]
    lane = reloaded(kind, rules, states)
    rows = [
        (s, ts, base + per_hour * (ts - T0) / HOUR)
        for i in range(400)
        for s, (_, base, per_hour) in enumerate(slots)
        for ts in [T0 + i * 10 * SEC + s]
    ]
    raised = 0
    with summing("stream" if size == len(slots) else "columns"):
        for a in range(0, len(rows), size):
            expected = reference(rules, states, rows[a : a + size])
            assert lane.evaluate(as_batch(rows[a : a + size])) == expected
            assert [lane.get(s) for s in range(len(rules))] == states
            raised += len(expected)
    assert raised, "the lines must raise alarms"


SAMPLES = st.lists(
    st.tuples(
        st.integers(1, 20 * MIN),
        st.one_of(
            st.floats(-1e6, 1e6, allow_nan=False),
            st.sampled_from([1203.47, 1203.48, 0.0, -0.0, 1e-310, 5e-324]),
            st.floats(1203.0, 1204.0),
        ),
    ),
    min_size=2,
    max_size=70,
)


@PATHS
@given(windows=st.lists(st.tuples(st.integers(T0 - HOUR, T0 + HOUR), SAMPLES), max_size=12))
def test_fits_are_bit_for_bit_the_reference(path: str, windows: list[Any]) -> None:
    """Many windows of different lengths at once: slope and line value equal to the last bit."""
    stamps: list[int] = []
    values: list[float] = []
    own: list[int] = []
    expected = []
    for start, steps in windows:
        ts = start
        for gap, value in steps:
            ts += gap
            stamps.append(ts)
            values.append(value)
        own.append(len(stamps) - 1)
        samples = list(zip(stamps[-len(steps) :], values[-len(steps) :], strict=True))
        expected.append(window.fit(samples))
    ints = np.array(own, dtype=np.int64)
    count = np.array([len(steps) for _, steps in windows], dtype=np.int64)
    stamp_col, value_col = np.array(stamps, dtype=np.int64), np.array(values)
    if path == "stream":  # as rows, the newest sample repeated to the matrix's width
        width = int(count.max(initial=0)) + 3
        at = ints[:, None] - np.maximum(count[:, None] - 1 - np.arange(width), 0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            slope, latest, fitted = trend.fit_rows(
                stamp_col[at], value_col[at], count, stamp_col[ints], value_col[ints]
            )
    else:
        with summing(path):
            slope, latest, fitted = trend.fit_windows(
                stamp_col, value_col, ints, count, stamp_col[ints], value_col[ints]
            )
    got = [
        window.Fit(s, v, int(n)) if ok else None
        for s, v, n, ok in zip(slope.tolist(), latest.tolist(), count, fitted, strict=True)
    ]
    assert [None if f is None else f.slope_per_hour.hex() for f in got] == [
        None if f is None else f.slope_per_hour.hex() for f in expected
    ]
    assert [None if f is None else f.latest.hex() for f in got] == [
        None if f is None else f.latest.hex() for f in expected
    ]


def test_a_signal_on_a_set_point_is_rounded_before_comparing() -> None:
    """Two samples 5 min apart rising 1/12: a slope of 1.0 up to binary rounding."""
    rule = RateRule("r", Direction.HIGH, (Setpoint(Level.RED, 1.0, 0.9),), window_ms=5 * MIN,
                    min_points=2)  # fmt: skip
    raw = window.fit([(T0, 0.1), (T0 + 5 * MIN, 0.1 + 1 / 12)])
    assert raw is not None and raw.slope_per_hour != 1.0, "the case must need the rounding"
    lane = RateLane()
    lane.add(rule, rule.initial())
    events = lane.evaluate(as_batch([(0, T0, 0.1), (0, T0 + 5 * MIN, 0.1 + 1 / 12)]))
    assert [(e.level, e.value) for _, e in events] == [(Level.RED, 1.0)]


@pytest.mark.parametrize("stream", [False, True])
def test_thinning_and_the_sample_cap_match_the_reference(stream: bool) -> None:
    """A restored window of 512 samples, the newest spaced out so that the next reading is
    appended: the cap drops the oldest. Then fast readings are thinned. In one batch, or one
    reading at a time (the streaming path)."""
    stamps = [T0 + i for i in range(511)] + [T0 + 600]
    samples = tuple((ts, 1.0 + i / 1000) for i, ts in enumerate(stamps))
    state = window.TrendState(LatchState(last_ts_ms=stamps[-1]), samples)
    rules: list[Any] = [QUICK]
    states: list[Any] = [state]
    lane = RateLane()
    lane.add(QUICK, state)
    rows = [(0, T0 + 700 + 3 * i, 2.0 + i / 100) for i in range(200)]
    expected = reference(rules, states, rows)
    with summing("stream" if stream else "columns"):
        assert (streamed(lane, rows) if stream else lane.evaluate(as_batch(rows))) == expected
    assert lane.get(0) == states[0]
    kept = states[0].samples
    assert kept[0][0] > T0 >= kept[-1][0] - QUICK_MS, "the oldest went by the cap, not by time"
    assert len({ts for ts, _ in kept} & {ts for _, ts, _ in rows}) < len(rows), "thinned"


@pytest.mark.parametrize("stream", [False, True])
def test_timestamps_too_far_apart_for_one_key(stream: bool) -> None:
    """Ancient samples next to readings near 2⁶⁰ ms take the slot-by-slot paths (of the
    batch path; the streaming path's sums wrap around exactly)."""
    rules: list[Any] = [RISE, FALL, SLOW, RISE]
    far = 2**60
    states: list[Any] = []
    lane = RateLane()
    for i, rule in enumerate(rules):
        old = ((1 + i, 5.0), (2 + i, 5.5), (3 + i, 6.0))
        state = window.TrendState(LatchState(last_ts_ms=3 + i), old)
        states.append(state)
        lane.add(rule, state)
    rows = [(s, far + k * MIN + s, 1.0 + k * (s + 1) / 7) for k in range(12) for s in range(4)]
    rows.append((0, 10, 4.0))  # stale
    expected = reference(rules, states, rows)
    with summing("stream" if stream else "columns"):
        assert (streamed(lane, rows) if stream else lane.evaluate(as_batch(rows))) == expected
    assert [lane.get(s) for s in range(4)] == states


@pytest.mark.parametrize("stream", [False, True])
def test_an_infinite_slope_raises_a_slot_with_fewer_set_points(stream: bool) -> None:
    """A slot with one set-point in a lane whose other slots have three: an infinite slope
    reaches its set-point and nothing beyond it (the unused columns reach nothing)."""
    one = RateRule("one", Direction.HIGH, (Setpoint(Level.RED, 0.5, 0.4),), window_ms=10 * MIN,
                   min_points=2)  # fmt: skip
    rules: list[Any] = [RISE, one]
    states: list[Any] = [rule.initial() for rule in rules]
    lane = RateLane()
    for rule, state in zip(rules, states, strict=True):
        lane.add(rule, state)
    rows = [(1, T0, 1.0), (0, T0, 1.0), (1, T0 + MIN, 1.7e308), (1, T0 + 2 * MIN, 1.7e308)]
    expected = reference(rules, states, rows)
    assert [(i, e.level) for i, e in expected] == [(2, Level.RED)], "the case must alarm"
    with summing("stream" if stream else "columns"), np.errstate(over="ignore"):
        assert (streamed(lane, rows) if stream else lane.evaluate(as_batch(rows))) == expected
    assert [lane.get(s) for s in range(2)] == states


def test_the_streaming_path_takes_batches_of_one_reading_per_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Distinct slots (in any order) stream; a slot read twice goes the batch path, and so
    does a batch of more window cells than :data:`trend.STREAM`."""
    lane = RateLane()
    for _ in range(3):
        lane.add(RISE, RISE.initial())
    taken: list[str] = []
    stream, batch = TrendLane._stream, TrendLane._batch

    def spy_stream(self: TrendLane[Any], b: Batch) -> Any:
        found = stream(self, b)
        taken.append("declined" if found is None else "stream")
        return found

    def spy_batch(self: TrendLane[Any], b: Batch) -> Any:
        taken.append("batch")
        return batch(self, b)

    monkeypatch.setattr(TrendLane, "_stream", spy_stream)
    monkeypatch.setattr(TrendLane, "_batch", spy_batch)
    lane.evaluate(as_batch([(2, T0, 1.0), (0, T0, 1.0)]))
    lane.evaluate(as_batch([(1, T0, 1.0), (1, T0 + SEC, 1.0)]))
    monkeypatch.setattr(trend, "STREAM", 1)
    lane.evaluate(as_batch([(0, T0 + SEC, 1.0)]))
    assert taken == ["stream", "declined", "batch", "batch"]


def test_what_the_lanes_accept() -> None:
    lane, projections = RateLane(), ProjectionLane()
    fresh = RISE.initial()
    assert lane.accepts(RISE, fresh) and projections.accepts(WARNING, fresh)
    assert not lane.accepts(WARNING, fresh) and not projections.accepts(RISE, fresh)
    assert not lane.accepts(replace(RISE, on_delay_ms=MIN), fresh)
    assert not lane.accepts(replace(RISE, off_delay_ms=MIN), fresh)
    assert not lane.accepts(replace(RISE, consecutive=2), fresh)
    crossed = RateRule(
        "x",
        Direction.HIGH,
        (Setpoint(Level.YELLOW, 0.5, 0.3), Setpoint(Level.RED, 1.0, 0.2)),
        window_ms=HOUR,
    )
    assert not lane.accepts(crossed, fresh), "clear set-points out of level order"
    assert lane.accepts(replace(RISE, window_ms=trend.WINDOW_LIMIT), fresh)
    assert not lane.accepts(replace(RISE, window_ms=trend.WINDOW_LIMIT + 1), fresh)
    pending = window.TrendState(LatchState(pending=((2, T0, 1),)))
    assert not lane.accepts(RISE, pending)
    unordered = window.TrendState(LatchState(last_ts_ms=T0), ((T0, 1.0), (T0, 2.0)))
    assert not lane.accepts(RISE, unordered)
    ahead = window.TrendState(LatchState(last_ts_ms=T0), ((T0 + 1, 1.0),))
    assert not lane.accepts(RISE, ahead)
    assert not lane.accepts(RISE, LatchState())
    with pytest.raises(ValueError, match="cannot take"):
        lane.add(RISE, pending)
    assert lane.tick(T0) == []
    assert lane.evaluate(as_batch([])) == []


def test_the_near_test_covers_the_rounding() -> None:
    """Rounding to 12 digits moves a value by less than the margin the lane re-checks."""
    rng = np.random.default_rng(7)
    for x in [*rng.lognormal(0, 20, 5000).tolist(), 9.999999999995, 1.0000000000005]:
        assert abs(window.significant(x) - x) <= trend.NEAR * abs(x) / 2
