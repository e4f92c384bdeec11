"""The fleet engine gives exactly what the reference engine gives, reading by reading.

Sensors with mixed rules (some in lanes, some in the object lane: delayed thresholds, stuck,
offline with an off-delay) receive random batches of readings — late, duplicate, NaN — and
ticks; events, their order and every state must equal :mod:`rules.engine`'s. Sensors also join
between batches (as the runner adds them), with rules wider than any before them (more levels,
fault values and codes, windows, set-points), so the lanes' columns grow and widen while they
hold state.

Every test runs twice: with batches as they come (each lane groups its observations itself,
as for a live feed's small batches) and with every batch sorted by sensor first
(:attr:`FleetEngine.group_from` 0, as for a large batch), which must not change a thing.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import engine
from rules.accumulation import AccumulationRule, LevelWindows, Mode, WindowSetpoint
from rules.base import Rule
from rules.fleet import FleetEngine, _Map
from rules.levels import Level
from rules.offline import OfflineRule
from rules.out_of_range import OutOfRangeRule
from rules.projection import ProjectionRule
from rules.rate import RateRule
from rules.spike import SpikeRule
from rules.stuck import StuckRule
from rules.threshold import Direction, Setpoint, ThresholdRule

T0 = 1_795_284_000_000

GROUPING = pytest.mark.parametrize("group_from", [FleetEngine.group_from, 0])
"""Batches sorted by sensor in the fleet engine from their usual size on, or always."""


def _fleet(group_from: int, **options: Any) -> FleetEngine:
    fleet = FleetEngine(**options)
    fleet.group_from = group_from
    return fleet


@st.composite
def threshold_rules(draw: st.DrawFn, rule_id: str) -> ThresholdRule:
    """Set-points on a small integer grid, so readings often land exactly on them."""
    levels = sorted(draw(st.sets(st.sampled_from(list(Level)), min_size=1, max_size=4)))
    sets = sorted(
        draw(st.lists(st.integers(-8, 8), min_size=len(levels), max_size=len(levels), unique=True))
    )
    low = draw(st.booleans())
    if low:
        sets = sets[::-1]
    points = []
    for level, s in zip(levels, sets, strict=True):
        band = draw(st.integers(0, 3))
        points.append(Setpoint(level, float(s), float(s + band if low else s - band)))
    delayed = draw(st.integers(0, 3)) == 0
    return ThresholdRule(
        rule_id,
        Direction.LOW if low else Direction.HIGH,
        tuple(points),
        on_delay_ms=draw(st.sampled_from([0, 2000])) if delayed else 0,
        off_delay_ms=draw(st.sampled_from([0, 3000])) if delayed else 0,
        consecutive=draw(st.integers(1, 3)) if delayed else 1,
    )


@st.composite
def sensor_rules(draw: st.DrawFn) -> tuple[Rule, ...]:
    rules: list[Rule] = [draw(threshold_rules("a"))]
    if draw(st.booleans()):
        rules.append(draw(threshold_rules("b")))
    if draw(st.booleans()):
        rules.append(
            OfflineRule(
                "off", interval_ms=1000, factor=draw(st.sampled_from([2.0, 3.0])),
                off_delay_ms=draw(st.sampled_from([0, 0, 2000])),
            )
        )  # fmt: skip
    if draw(st.booleans()):
        rules.append(StuckRule("stuck", window_ms=5000, epsilon=0.5))
    if draw(st.booleans()):
        rules.append(
            OutOfRangeRule(
                "range", low=-8, high=8, fault_values=(-9.0,), fault_qualities=(7,),
                on_delay_ms=draw(st.sampled_from([0, 0, 2000])),
            )
        )  # fmt: skip
    if draw(st.booleans()):
        rules.append(
            RateRule(
                "rate", Direction.HIGH,
                (Setpoint(Level.YELLOW, 3600, 1800), Setpoint(Level.RED, 7200, 3600)),
                window_ms=10_000, min_points=3,
                on_delay_ms=draw(st.sampled_from([0, 0, 2000])),
            )
        )  # fmt: skip
    if draw(st.booleans()):
        rules.append(SpikeRule("spike", window_points=8, k=3.0, min_points=4))
    if draw(st.booleans()):
        rules.append(
            AccumulationRule(
                "rain", Mode.INTERVAL,
                (
                    LevelWindows(Level.BLUE, "blue", (WindowSetpoint(10_000, 12, 6),)),
                    LevelWindows(Level.RED, "red", (WindowSetpoint(5_000, 15, 8),)),
                ),
                bucket_ms=1000,
                off_delay_ms=draw(st.sampled_from([0, 0, 3000])),
            )
        )  # fmt: skip
    return tuple(rules)


step = st.one_of(
    st.tuples(
        st.just("read"),
        st.lists(
            st.tuples(
                st.integers(0, 3),
                st.integers(0, 60),
                st.sampled_from([0, 0, 0, 7]),
                st.one_of(st.integers(-10, 10).map(float), st.just(math.nan)),
            ),
            max_size=40,
        ),
    ),
    st.tuples(st.just("tick"), st.integers(0, 70)),
)


def _plain(found: list[Any]) -> list[Any]:
    """Events with NaN values made comparable (an invalid reading's event carries NaN)."""
    return [
        (*rest, replace(e, value="nan") if math.isnan(e.value) else e)  # type: ignore[arg-type]
        for *rest, e in found
    ]


@GROUPING
@settings(max_examples=150)
@given(st.lists(sensor_rules(), min_size=1, max_size=4), st.lists(step, max_size=8))
def test_fleet_equals_reference(
    group_from: int, fleet_rules: list[tuple[Rule, ...]], steps: list[Any]
) -> None:
    fleet = _fleet(group_from)
    for rules in fleet_rules:
        fleet.add(rules)
    states: list[dict[str, Any]] = [{} for _ in fleet_rules]
    for what, data in steps:
        if what == "read":
            rows = [(s % len(fleet_rules), T0 + t * 1000, v, q) for s, t, q, v in data]
            expected = []
            for position, (s, t, v, q) in enumerate(rows):
                states[s], events = engine.evaluate_sensor(fleet_rules[s], states[s], t, v, q)
                expected.extend((position, s, e) for e in events)
            got = fleet.evaluate(
                np.array([r[0] for r in rows], dtype=np.int64),
                np.array([r[1] for r in rows], dtype=np.int64),
                np.array([r[2] for r in rows], dtype=np.float64),
                np.array([r[3] for r in rows], dtype=np.int64),
            )
        else:
            now = T0 + data * 1000
            expected = []
            for s, rules in enumerate(fleet_rules):
                states[s], events = engine.tick_sensor(rules, states[s], now)
                expected.extend((s, e) for e in events)
            got = fleet.tick(now)  # type: ignore[assignment]
        assert _plain(got) == _plain(expected)
        for s, rules in enumerate(fleet_rules):
            want = {r.rule_id: states[s].get(r.rule_id, r.initial()) for r in rules}
            assert fleet.state(s) == want


def test_rules_with_delays_go_to_the_object_lane() -> None:
    quick = ThresholdRule("q", Direction.HIGH, (Setpoint(Level.RED, 50, 45),))
    slow = ThresholdRule("s", Direction.HIGH, (Setpoint(Level.RED, 50, 45),), on_delay_ms=5000)
    fleet = FleetEngine()
    fleet.add((quick, slow))
    assert fleet.placement() == {"threshold": 1, "object": 1}
    events = fleet.evaluate(
        np.array([0, 0], dtype=np.int64),
        np.array([T0, T0 + 6000], dtype=np.int64),
        np.array([60.0, 61.0]),
    )
    assert [(r, e.rule_id, e.change.value) for r, _s, e in events] == [
        (0, "q", "raised"),
        (1, "s", "raised"),
    ]
    assert fleet.level(0) == int(Level.RED)


@GROUPING
@settings(max_examples=300)
@given(
    st.lists(sensor_rules(), min_size=1, max_size=3),
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 60),
            st.sampled_from([0, 0, 7]),
            st.one_of(st.integers(-10, 10).map(float), st.just(math.nan)),
        ),
        max_size=80,
    ),
    st.lists(st.integers(0, 70), max_size=12, unique=True),
)
def test_replay_of_a_recording_equals_the_reference_tick_by_tick(
    group_from: int, fleet_rules: list[tuple[Rule, ...]], data: list[Any], tick_s: list[int]
) -> None:
    """A recording in time order with ticks: the non-clock lanes take it whole, the clock
    lanes go tick by tick; the events and their order are the reference's."""
    rows = sorted(
        ((s % len(fleet_rules), T0 + t * 1000, q, v) for s, t, q, v in data), key=lambda r: r[1]
    )
    ticks = sorted(T0 + t * 1000 for t in tick_s)
    states: list[dict[str, Any]] = [{} for _ in fleet_rules]
    expected: list[Any] = []
    pending = list(ticks)
    for s, t, q, v in rows:
        while pending and pending[0] <= t:
            now = pending.pop(0)
            for i, rules in enumerate(fleet_rules):
                states[i], events = engine.tick_sensor(rules, states[i], now)
                expected.extend((i, e) for e in events)
        states[s], events = engine.evaluate_sensor(fleet_rules[s], states[s], t, v, q)
        expected.extend((s, e) for e in events)
    for now in pending:
        for i, rules in enumerate(fleet_rules):
            states[i], events = engine.tick_sensor(rules, states[i], now)
            expected.extend((i, e) for e in events)
    fleet = _fleet(group_from)
    for rules in fleet_rules:
        fleet.add(rules)
    got = fleet.replay(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=np.float64),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.array(ticks, dtype=np.int64),
    )
    assert _plain(got) == _plain(expected)
    for s, rules in enumerate(fleet_rules):
        assert fleet.state(s) == {r.rule_id: states[s].get(r.rule_id, r.initial()) for r in rules}


def test_replay_ticks_a_sensor_that_sent_nothing() -> None:
    """A recording without a single reading of a watched sensor still raises its offline
    alarm: the ticks run whether or not its lane has readings."""
    fleet = FleetEngine()
    watched = fleet.add((OfflineRule("off", interval_ms=1000, factor=2.0),))
    other = fleet.add((ThresholdRule("a", Direction.HIGH, (Setpoint(Level.RED, 50, 45),)),))
    got = fleet.replay(
        np.array([other], dtype=np.int64),
        np.array([T0], dtype=np.int64),
        np.array([1.0]),
        ticks=np.array([T0, T0 + 2000], dtype=np.int64),
    )
    assert [(s, e.kind, e.change.value, e.ts_ms) for s, e in got] == [
        (watched, "offline", "raised", T0 + 2000)
    ]


@st.composite
def widening_rules(draw: st.DrawFn) -> tuple[Rule, ...]:
    """A sensor of every lane's kind, each rule of a drawn width: threshold levels, fault
    values and codes, accumulation windows (and so horizon), spike window, rate set-points.
    A second threshold rule gives a sensor two slots in a lane."""
    rules: list[Rule] = [draw(threshold_rules("a"))]
    if draw(st.booleans()):
        rules.append(draw(threshold_rules("b")))
    if draw(st.booleans()):
        rules.append(
            OfflineRule("off", interval_ms=1000, factor=draw(st.sampled_from([2.0, 3.0, 5.0])))
        )
    if draw(st.booleans()):
        values = draw(st.lists(st.integers(-10, 10).map(float), unique=True, max_size=3))
        codes = draw(st.lists(st.sampled_from([3, 7, 9]), unique=True, max_size=3))
        rules.append(
            OutOfRangeRule(
                "range", low=-8, high=8, fault_values=tuple(values), fault_qualities=tuple(codes)
            )
        )
    if draw(st.booleans()):
        points = draw(st.integers(3, 12))
        rules.append(
            SpikeRule(
                "spike", window_points=points, k=draw(st.sampled_from([2.0, 3.0])),
                min_points=draw(st.integers(3, points)),
                consecutive_shift=draw(st.integers(1, 3)),
            )
        )  # fmt: skip
    if draw(st.booleans()):
        sizes = sorted(draw(st.sets(st.sampled_from([2, 3, 5, 8, 13]), min_size=1, max_size=3)))
        blue = tuple(WindowSetpoint(n * 1000, 4 + n, 2 + n) for n in sizes)
        levels = [LevelWindows(Level.BLUE, "blue", blue)]
        if draw(st.booleans()):
            red = tuple(WindowSetpoint(w.window_ms, w.set + 3, w.clear + 2) for w in blue)
            levels.append(LevelWindows(Level.RED, "red", red))
        rules.append(AccumulationRule("rain", Mode.INTERVAL, tuple(levels), bucket_ms=1000))
    if draw(st.booleans()):
        points = [Setpoint(Level.YELLOW, 3600, 1800), Setpoint(Level.RED, 7200, 3600)]
        rules.append(
            RateRule(
                "rate", Direction.HIGH, tuple(points[: draw(st.integers(1, 2))]),
                window_ms=draw(st.sampled_from([5_000, 10_000, 30_000])), min_points=3,
            )
        )  # fmt: skip
    if draw(st.booleans()):
        rules.append(
            ProjectionRule(
                "reach", 5.0, "top", Direction.HIGH, (Setpoint(Level.RED, 0.5, 1.0),),
                window_ms=draw(st.sampled_from([5_000, 20_000])),
            )
        )  # fmt: skip
    return tuple(rules)


readings = st.lists(
    st.tuples(
        st.integers(0, 63),
        st.integers(0, 60),
        st.sampled_from([0, 0, 0, 3, 7]),
        st.one_of(st.integers(-10, 10).map(float), st.just(math.nan)),
    ),
    max_size=40,
)
joining = st.tuples(
    st.lists(widening_rules(), max_size=5),
    st.lists(st.integers(0, 63), max_size=2),
    st.lists(
        st.one_of(
            st.tuples(st.just("read"), readings),
            st.tuples(st.just("tick"), st.integers(0, 70)),
            st.tuples(
                st.just("replay"),
                st.tuples(readings, st.lists(st.integers(0, 70), max_size=6, unique=True)),
            ),
        ),
        max_size=3,
    ),
)


def _step(
    fleet: FleetEngine,
    fleet_rules: list[tuple[Rule, ...]],
    states: list[dict[str, Any]],
    what: str,
    data: Any,
) -> tuple[list[Any], list[Any]]:
    """A batch (``read``), a tick or a recording with ticks (``replay``) through the fleet
    engine and the reference (whose ``states`` it moves on): what each gave."""
    count = len(fleet_rules)
    expected: list[Any] = []

    def tick(now: int) -> None:
        for s, rules in enumerate(fleet_rules):
            states[s], events = engine.tick_sensor(rules, states[s], now)
            expected.extend((s, e) for e in events)

    if what == "tick":
        now = T0 + data * 1000
        tick(now)
        return fleet.tick(now), expected
    found, tick_s = (data, []) if what == "read" else data
    rows = [(s % count, T0 + t * 1000, v, q) for s, t, q, v in found]
    if what == "replay":
        rows.sort(key=lambda r: r[1])
    pending = sorted(T0 + t * 1000 for t in tick_s)
    ticks = np.array(pending, dtype=np.int64)
    for position, (s, t, v, q) in enumerate(rows):
        while pending and pending[0] <= t:
            tick(pending.pop(0))
        states[s], events = engine.evaluate_sensor(fleet_rules[s], states[s], t, v, q)
        expected.extend((position, s, e) if what == "read" else (s, e) for e in events)
    for now in pending:
        tick(now)
    columns = (
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.int64),
    )
    if what == "read":
        return fleet.evaluate(*columns), expected
    return fleet.replay(*columns, ticks), expected


def _check(
    fleet: FleetEngine, fleet_rules: list[tuple[Rule, ...]], states: list[dict[str, Any]]
) -> None:
    """Every sensor's states and levels are the reference's."""
    assert len(fleet) == len(fleet_rules)
    for s, rules in enumerate(fleet_rules):
        want = {r.rule_id: states[s].get(r.rule_id, r.initial()) for r in rules}
        assert fleet.state(s) == want
        assert fleet.level(s) == max(state.latch.level for state in want.values())


@GROUPING
@settings(max_examples=60)
@given(st.lists(joining, min_size=1, max_size=5))
def test_sensors_joining_between_batches_equal_the_reference(
    group_from: int, phases: list[Any]
) -> None:
    """Sensors join between batches, ticks and replays, fresh or as copies of a sensor with its
    state at that point (so columns grow with state in them); events, states and levels stay
    the reference's."""
    fleet = _fleet(group_from)
    fleet_rules: list[tuple[Rule, ...]] = []
    states: list[dict[str, Any]] = []
    for fresh, copies, steps in phases:
        for rules in fresh:
            assert fleet.add(rules) == len(fleet_rules)
            fleet_rules.append(rules)
            states.append({})
        for k in copies:
            if fleet_rules:
                s = k % len(fleet_rules)
                assert fleet.add(fleet_rules[s], states[s]) == len(fleet_rules)
                fleet_rules.append(fleet_rules[s])
                states.append(dict(states[s]))
        _check(fleet, fleet_rules, states)
        if not fleet_rules:
            continue
        for what, data in steps:
            got, expected = _step(fleet, fleet_rules, states, what, data)
            assert _plain(got) == _plain(expected)
            _check(fleet, fleet_rules, states)


def _wide_sensor(i: int) -> tuple[Rule, ...]:
    """Sensor ``i`` of :func:`test_sensors_added_one_at_a_time_past_every_growth`: its rules'
    widths (levels, fault values and codes, spike window, accumulation windows and horizon,
    rate window and set-points) vary with ``i`` and mostly grow."""
    levels = list(Level)[: 1 + i % 4]
    rain = tuple(WindowSetpoint(n * 1000, 6 + n, 3 + n) for n in sorted({2, 3 + i % 4, 5 + i // 4}))
    rate = (Setpoint(Level.YELLOW, 3600, 1800), Setpoint(Level.RED, 7200, 3600))
    low = ThresholdRule("b", Direction.LOW, (Setpoint(Level.ORANGE, -6.0, -5.0),))
    return (
        ThresholdRule(
            "a",
            Direction.HIGH,
            tuple(Setpoint(lv, 2.0 * j, 2.0 * j - 1) for j, lv in enumerate(levels, start=1)),
        ),
        *((low,) if i % 3 else ()),
        OfflineRule("off", interval_ms=1000, factor=2.0 + i % 3),
        OutOfRangeRule(
            "range",
            low=-8,
            high=8,
            fault_values=tuple(float(-v) for v in range(i // 8)),
            fault_qualities=tuple(range(3, 3 + i // 10)),
        ),
        SpikeRule("spike", window_points=4 + i // 4, k=2.0, min_points=3),
        AccumulationRule(
            "rain", Mode.INTERVAL, (LevelWindows(Level.BLUE, "blue", rain),), bucket_ms=1000
        ),
        RateRule(
            "rate", Direction.HIGH, rate[: 1 + i % 2], window_ms=10_000 + 1000 * i, min_points=3
        ),
    )


@GROUPING
@pytest.mark.parametrize("settle", [False, True])
def test_sensors_added_one_at_a_time_past_every_growth(group_from: int, settle: bool) -> None:
    """Forty sensors, each added after a batch and a tick of those before it (every fifth a
    copy of an earlier one with its state): the columns outgrow their spare room several
    times (at 16 and 32 slots) and widen while holding state; every step is the reference's,
    whether or not the deferred layout is settled after each add."""
    rng = random.Random(7)
    fleet = _fleet(group_from)
    fleet_rules: list[tuple[Rule, ...]] = []
    states: list[dict[str, Any]] = []
    t = T0
    for i in range(40):
        if i % 5 == 4:
            source = rng.randrange(len(fleet_rules))
            rules, state = fleet_rules[source], dict(states[source])
        else:
            rules, state = _wide_sensor(i), {}
        assert fleet.add(rules, state) == i
        if settle:
            fleet.settle()
        fleet_rules.append(rules)
        states.append(state)
        assert set(fleet.placement()) == {"threshold", "offline", "out_of_range", "spike",
                                          "accumulation", "rate"}  # fmt: skip
        rows = []
        for _ in range(rng.randrange(1, 3 * len(fleet_rules))):
            t += rng.choice([0, 300, 700, 1000])
            s, value = rng.randrange(len(fleet_rules)), float(rng.randint(-10, 10))
            rows.append((s, t, value, rng.choice([0, 0, 3])))
        expected = []
        for position, (s, ts, v, q) in enumerate(rows):
            states[s], events = engine.evaluate_sensor(fleet_rules[s], states[s], ts, v, q)
            expected.extend((position, s, e) for e in events)
        got = fleet.evaluate(
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.int64),
            np.array([r[2] for r in rows], dtype=np.float64),
            np.array([r[3] for r in rows], dtype=np.int64),
        )
        assert _plain(got) == _plain(expected)
        t += 2500
        ticked = []
        for s, rules in enumerate(fleet_rules):
            states[s], events = engine.tick_sensor(rules, states[s], t)
            ticked.extend((s, e) for e in events)
        assert _plain(fleet.tick(t)) == _plain(ticked)
        _check(fleet, fleet_rules, states)


@GROUPING
@settings(max_examples=100)
@given(
    st.lists(sensor_rules(), min_size=1, max_size=4),
    st.lists(
        st.tuples(
            st.lists(
                st.tuples(
                    st.integers(0, 3),
                    st.integers(0, 60),
                    st.integers(-2, 6),
                    st.one_of(st.integers(-10, 10).map(float), st.just(math.nan)),
                ),
                max_size=40,
            ),
            st.integers(0, 70),
        ),
        max_size=4,
    ),
)
def test_clock_rules_judge_arrival_as_the_reference(
    group_from: int, fleet_rules: list[tuple[Rule, ...]], steps: list[Any]
) -> None:
    """With arrival times, the offline rules hear of each reading when it arrived and the
    others judge its timestamp: the lanes give what the reference code gives (every rule in
    the object lane), batch after batch and tick after tick."""
    fleet, reference = _fleet(group_from), FleetEngine(lanes=[])
    for rules in fleet_rules:
        fleet.add(rules)
        reference.add(rules)
    for found, tick_s in steps:
        rows = [(s % len(fleet_rules), T0 + t * 1000, v, d) for s, t, d, v in found]
        sensor = np.array([r[0] for r in rows], dtype=np.int64)
        ts = np.array([r[1] for r in rows], dtype=np.int64)
        value = np.array([r[2] for r in rows], dtype=np.float64)
        arrival = ts + 1000 * np.array([r[3] for r in rows], dtype=np.int64)
        got = fleet.evaluate(sensor, ts, value, arrival=arrival)
        assert _plain(got) == _plain(reference.evaluate(sensor, ts, value, arrival=arrival))
        now = T0 + tick_s * 1000
        assert _plain(fleet.tick(now)) == _plain(reference.tick(now))
        for s in range(len(fleet_rules)):
            assert fleet.state(s) == reference.state(s)


def test_a_lane_numbered_out_of_sensor_order_is_not_taken_as_grouped() -> None:
    """Readings sorted by sensor are grouped by slot only where a lane's slots rise sensor
    after sensor (as adding numbers them); the map says so, also across sensors added between
    batches."""
    m = _Map()
    for slots in ([0, 1], [], [2]):
        m.sensor_start.append(len(m.slots))
        m.slots.extend(slots)
    m.ready()
    assert m.ascending
    m.sensor_start.append(len(m.slots))
    m.slots.append(1)  # below the slot of the sensor before it
    m.ready()
    assert not m.ascending
