"""The offline lane against the reference (rules.offline), reading by reading and tick by tick.

The lane must give exactly the reference's events (with the latch's flapping flag, as the
engine sets it) and states, whatever the order of readings and ticks: duplicates, late
readings, ticks going backwards, sensors never heard from, states loaded mid-way.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.events import Change, RuleEvent, with_flapping
from rules.lanes.base import Batch, Emitted
from rules.lanes.offline import OfflineLane, Replayed
from rules.latch import LatchState
from rules.levels import Level
from rules.offline import OfflineRule, OfflineState
from rules.threshold import Direction, Setpoint, ThresholdRule


@dataclass
class Twin:
    """The lane and, beside it, the reference: one rule and one state per slot."""

    lane: OfflineLane = field(default_factory=OfflineLane)
    rules: list[OfflineRule] = field(default_factory=list)
    states: list[OfflineState] = field(default_factory=list)

    def add(self, rule: OfflineRule, state: OfflineState | None = None) -> int:
        state = rule.initial() if state is None else state
        assert self.lane.accepts(rule, state)
        slot = self.lane.add(rule, state)
        assert slot == len(self.rules)
        self.rules.append(rule)
        self.states.append(state)
        return slot

    def read(self, readings: list[tuple[int, int, float, int]]) -> Emitted:
        """Apply ``(slot, ts, value, quality)`` readings to both; return the lane's events
        after checking them against the reference's."""
        expected: Emitted = []
        for position, (slot, ts, value, quality) in enumerate(readings):
            state, event = self.rules[slot].evaluate(self.states[slot], ts, value, quality)
            self.states[slot] = state
            if event is not None:
                expected.append((position, with_flapping(event, state.latch.flapping)))
        batch = Batch(
            slot=np.array([r[0] for r in readings], np.int64),
            ts=np.array([r[1] for r in readings], np.int64),
            value=np.array([r[2] for r in readings], np.float64),
            quality=np.array([r[3] for r in readings], np.int64),
        )
        got = self.lane.evaluate(batch)
        assert got == expected
        self.check()
        return got

    def tick(self, now_ms: int, mask: list[bool] | None = None) -> Emitted:
        """Tick both (the slots where ``mask``, else all); return the lane's events after
        checking them against the reference's."""
        expected: Emitted = []
        for slot, rule in enumerate(self.rules):
            if mask is not None and not mask[slot]:
                continue
            state, event = rule.tick(self.states[slot], now_ms)
            self.states[slot] = state
            if event is not None:
                expected.append((slot, with_flapping(event, state.latch.flapping)))
        got = self.lane.tick(now_ms, None if mask is None else np.array(mask, np.bool_))
        assert got == expected
        self.check()
        return got

    def check(self) -> None:
        """Every slot's state and level equal the reference's."""
        for slot, state in enumerate(self.states):
            assert self.lane.get(slot) == state, f"slot {slot}"
        levels = self.lane.level(np.arange(len(self.states), dtype=np.int64))
        assert levels.tolist() == [s.latch.level for s in self.states]


RULES = st.builds(
    OfflineRule,
    rule_id=st.sampled_from(["offline", "deadman"]),
    interval_ms=st.integers(1, 15),
    factor=st.sampled_from([1.0, 1.5, 2.0, 3.0, 4.7]),
    level=st.sampled_from(list(Level)),
)
TIMES = st.integers(-5, 150)


@st.composite
def loaded_states(draw: st.DrawFn) -> OfflineState:
    """Any state the lane takes, not only those the reference reaches: a latch that is
    alarming or not, any recent history, readings after the last tick (a clock corrected)."""
    level = draw(st.sampled_from([0, *Level]))
    latch = LatchState(
        level=level,
        start_ms=draw(TIMES) if level else None,
        last_ts_ms=draw(st.none() | TIMES),
        history=draw(st.just(0) | st.integers(0, 2**20 - 1)),
        evaluations=draw(st.integers(0, 20)),
        flapping=draw(st.booleans()),
    )
    return OfflineState(latch, draw(st.none() | TIMES), draw(st.none() | TIMES))


READING = st.tuples(
    TIMES,
    st.sampled_from([0.0, 1.5, float("nan"), float("inf")]),
    st.sampled_from([0, 1, 192]),
)


@given(st.data(), st.lists(RULES, min_size=1, max_size=5))
def test_the_lane_is_the_reference(data: st.DataObject, rules: list[OfflineRule]) -> None:
    twin = Twin()
    for rule in rules:
        twin.add(rule)
    twin.check()
    for _ in range(data.draw(st.integers(0, 40), label="steps")):
        n = len(twin.rules)
        op = data.draw(st.sampled_from(["read", "read", "tick", "tick", "add"]))
        if op == "read":
            readings = data.draw(st.lists(st.tuples(st.integers(0, n - 1), READING), max_size=8))
            twin.read([(slot, ts, value, q) for slot, (ts, value, q) in readings])
        elif op == "tick":
            mask = data.draw(st.none() | st.lists(st.booleans(), min_size=n, max_size=n))
            twin.tick(data.draw(TIMES, label="now"), mask)
        else:
            # A state loaded mid-way: another slot's reference state, possibly under another
            # rule (as after a configuration change), a fresh one, or any the lane takes.
            rule = data.draw(RULES, label="rule")
            source = data.draw(st.none() | st.integers(0, n - 1), label="source")
            state = None if source is None else twin.states[source]
            twin.add(rule, data.draw(st.just(state) | loaded_states(), label="state"))


@given(st.data(), RULES, st.lists(st.integers(1, 60), min_size=1, max_size=30))
def test_a_chattering_sensor(data: st.DataObject, rule: OfflineRule, gaps: list[int]) -> None:
    """Ticks that raise and readings that clear, in turn and in batches: many latch changes,
    so the flapping flag turns on and off."""
    twin = Twin()
    quiet = twin.add(rule)
    chatty = twin.add(rule)
    now = 0
    twin.tick(now)
    for gap in gaps:
        now += gap
        twin.tick(now, data.draw(st.sampled_from([None, [True, True], [False, True]])))
        count = data.draw(st.integers(0, 3))
        twin.read([(chatty, now + 1 + i, 0.0, 0) for i in range(count)])
    assert twin.lane.get(quiet) == twin.states[quiet]


def test_raises_at_exactly_the_limit() -> None:
    twin = Twin()
    slot = twin.add(OfflineRule("offline", interval_ms=1000, factor=3))
    assert twin.tick(10_000) == []
    assert twin.lane.get(slot).watch_since_ms == 10_000, "the first tick starts the watch"
    assert twin.tick(12_999) == []
    [(where, event)] = twin.tick(13_000)
    assert where == slot
    assert event.change is Change.RAISED and event.level is Level.YELLOW
    assert (event.value, event.setpoint, event.window_ms) == (3.0, 3.0, 3000)
    assert (event.ts_ms, event.start_ms, event.flapping) == (13_000, 13_000, False)
    assert twin.tick(20_000) == [], "the alarm holds"


def test_a_reading_clears_dated_no_earlier_than_the_tick_that_raised() -> None:
    twin = Twin()
    rule = OfflineRule("offline", interval_ms=1000, factor=3, level=Level.RED)
    slot = twin.add(rule)
    twin.read([(slot, 1000, 1.0, 0)])
    twin.tick(2000)
    [(_, raised)] = twin.tick(4000)
    # The device clock lags: its reading says 3500, the service raised at 4000.
    emitted = twin.read([(slot, 900, 1.0, 0), (slot, 3500, 1.0, 0), (slot, 3600, 1.0, 0)])
    [(position, cleared)] = emitted
    assert position == 1, "the first reading is stale"
    assert cleared.change is Change.CLEARED and cleared.previous is Level.RED
    assert cleared.value == 2.5, "the silence since the reading at 1000"
    assert (cleared.ts_ms, cleared.start_ms) == (4000, raised.start_ms)
    assert twin.lane.get(slot).latch.last_ts_ms == 3600, "the last reading, not the tick"


def test_a_tick_before_the_last_reading_clears_with_no_silence() -> None:
    """A state loaded alarming, with a reading after the tick's time (a corrected clock)."""
    twin = Twin()
    latch = LatchState(level=Level.ORANGE, start_ms=5, last_ts_ms=1000)
    slot = twin.add(OfflineRule("offline", interval_ms=10), OfflineState(latch, 0, 10))
    [(where, cleared)] = twin.tick(20)
    assert where == slot
    assert (cleared.change, cleared.value, cleared.start_ms) == (Change.CLEARED, 0.0, 5)


def test_events_of_a_chattering_sensor_say_flapping() -> None:
    twin = Twin()
    slot = twin.add(OfflineRule("offline", interval_ms=10, factor=1))
    twin.tick(0)
    flags = []
    now = 0
    for _ in range(10):
        now += 10
        [(_, raised)] = twin.tick(now)
        [(_, cleared)] = twin.read([(slot, now, 0.0, 0)])
        assert (raised.change, cleared.change) == (Change.RAISED, Change.CLEARED)
        flags += [raised.flapping, cleared.flapping]
    # Flapping (6 or more changes in the window of 20) once half the window has been
    # evaluated: the watch's first tick and 9 changes make 10 evaluations.
    assert flags == [False] * 8 + [True] * 12


def test_a_tick_of_many_slots() -> None:
    twin = Twin()
    for i in range(2000):
        twin.add(OfflineRule(f"r{i}", interval_ms=1 + i % 7, factor=1 + i % 3))
    twin.read([(slot, slot % 5, 0.0, 0) for slot in range(0, 2000, 3)])
    events: list[RuleEvent] = []
    for now in range(0, 30, 4):
        events += [e for _, e in twin.tick(now)]
    assert events, "some slots fell silent"


def test_takes_only_offline_rules_without_off_delay_and_settled_latches() -> None:
    lane = OfflineLane()
    rule = OfflineRule("offline", interval_ms=1000)
    assert lane.accepts(rule, rule.initial())
    assert not lane.accepts(OfflineRule("o", interval_ms=1000, off_delay_ms=5), rule.initial())
    mid_release = OfflineState(LatchState(level=2, start_ms=1, release_ms=5))
    assert not lane.accepts(rule, mid_release)
    assert not lane.accepts(rule, LatchState())
    threshold = ThresholdRule("t", Direction.HIGH, (Setpoint(Level.RED, 1.0, 0.5),))
    assert not lane.accepts(threshold, LatchState())
    with pytest.raises(TypeError):
        lane.add(threshold, LatchState())
    with pytest.raises(ValueError, match="off-delay"):
        lane.add(rule, mid_release)


# A whole recording at once: ``OfflineLane.replay`` against its definition, the readings before
# each tick evaluated and then the tick, tick after tick, on a twin lane checked against the
# reference at every step.

Reading = tuple[int, int, float, int]


def tick_by_tick(
    twin: Twin, readings: list[Reading], ticks: list[int], mask: list[bool] | None
) -> Replayed:
    """What ``replay`` stands for, tagged as it tags its events."""
    out: Replayed = []
    times = [r[1] for r in readings]
    start = 0
    for k, now in enumerate(ticks):
        end = bisect.bisect_left(times, now)
        if end > start:
            out += [
                (start + i, 1, readings[start + i][0], e) for i, e in twin.read(readings[start:end])
            ]
            start = end
        out += [(k, 0, slot, e) for slot, e in twin.tick(now, mask)]
    if start < len(readings):
        out += [(start + i, 1, readings[start + i][0], e) for i, e in twin.read(readings[start:])]
    return out


def batch_of(readings: list[Reading]) -> Batch:
    return Batch(
        slot=np.array([r[0] for r in readings], np.int64),
        ts=np.array([r[1] for r in readings], np.int64),
        value=np.array([r[2] for r in readings], np.float64),
        quality=np.array([r[3] for r in readings], np.int64),
    )


def replay(
    lane: OfflineLane, readings: list[Reading], ticks: list[int], mask: list[bool] | None
) -> Replayed:
    batch = batch_of(readings)
    return lane.replay(
        batch, np.array(ticks, np.int64), None if mask is None else np.array(mask, np.bool_)
    )


def assert_same(lane: OfflineLane, twin: Twin) -> None:
    """Every slot's state and level equal the twin's (and so the reference's)."""
    for slot, state in enumerate(twin.states):
        assert lane.get(slot) == state, f"slot {slot}"
    every = np.arange(len(twin.states), dtype=np.int64)
    assert lane.level(every).tolist() == twin.lane.level(every).tolist()


def in_order(replayed: Replayed, readings: list[Reading], ticks: list[int]) -> bool:
    """Whether the events are in the order :data:`Replayed` documents."""
    times = np.array([r[1] for r in readings], np.int64)
    keys = [
        (int(np.searchsorted(times, ticks[i], "left")), 0, i, slot) if phase == 0 else (i, 1, 0, 0)
        for i, phase, slot, _e in replayed
    ]
    return keys == sorted(keys)


def twins(rules: list[tuple[OfflineRule, OfflineState | None]]) -> tuple[OfflineLane, Twin]:
    lane, twin = OfflineLane(), Twin()
    for rule, state in rules:
        twin.add(rule, state)
        lane.add(rule, rule.initial() if state is None else state)
    return lane, twin


@given(
    st.data(),
    st.lists(st.tuples(RULES, st.none() | loaded_states()), min_size=1, max_size=6),
)
def test_a_replay_is_the_tick_by_tick_sequence(
    data: st.DataObject, rules: list[tuple[OfflineRule, OfflineState | None]]
) -> None:
    lane, twin = twins(rules)
    n = len(rules)
    # Some steps on both first: states with recent changes, flapping, watches started.
    for _ in range(data.draw(st.integers(0, 6), label="warm-up")):
        if data.draw(st.booleans(), label="read"):
            some = data.draw(st.lists(st.tuples(st.integers(0, n - 1), READING), max_size=6))
            rows = [(slot, ts, value, q) for slot, (ts, value, q) in some]
            twin.read(rows)
            lane.evaluate(batch_of(rows))
        else:
            now = data.draw(TIMES, label="warm-up tick")
            twin.tick(now)
            lane.tick(now)
    assert_same(lane, twin)
    drawn = data.draw(st.lists(st.tuples(st.integers(0, n - 1), READING), max_size=30))
    # Time order, ties in any order (a stable sort of a random list), duplicates included.
    readings = sorted(((slot, ts, value, q) for slot, (ts, value, q) in drawn), key=lambda r: r[1])
    ticks = sorted(data.draw(st.lists(TIMES, max_size=15), label="ticks"))
    mask = data.draw(st.none() | st.lists(st.booleans(), min_size=n, max_size=n), label="mask")
    if data.draw(st.booleans(), label="tick by tick"):
        lane.merge_rows = 0  # the slots not settled in closed form go tick by tick
    got = replay(lane, readings, ticks, mask)
    expected = tick_by_tick(twin, readings, ticks, mask)
    assert got == expected
    assert in_order(got, readings, ticks)
    assert_same(lane, twin)


@given(
    st.data(),
    st.lists(RULES, min_size=1, max_size=8),
    st.integers(1, 20),
    st.integers(0, 200),
)
def test_a_replay_of_steady_reporters(
    data: st.DataObject, rules: list[OfflineRule], every: int, length: int
) -> None:
    """Sensors reporting on their interval with jitter, some dropping out for a while, ticks at
    a steady pace: mostly quiet slots (settled in closed form), some silent ones."""
    lane, twin = twins([(rule, None) for rule in rules])
    readings: list[Reading] = []
    for slot, rule in enumerate(rules):
        stop = data.draw(st.none() | st.integers(0, length), label="drops out at")
        back = data.draw(st.integers(0, length), label="back at")
        t = data.draw(st.integers(-5, rule.interval_ms), label="first")
        while t < length:
            if stop is None or not stop <= t < back:
                readings.append((slot, t, 1.0, 0))
                if data.draw(st.integers(0, 9), label="duplicate") == 0:
                    readings.append((slot, t, 2.0, 0))
            t += max(1, rule.interval_ms + data.draw(st.integers(-2, 2), label="jitter"))
    readings.sort(key=lambda r: r[1])
    start = data.draw(st.integers(-10, 10), label="ticks from")
    ticks = list(range(start, length + 10, every))
    mask = data.draw(st.none() | st.lists(st.booleans(), min_size=len(rules), max_size=len(rules)))
    if data.draw(st.booleans(), label="tick by tick"):
        lane.merge_rows = 0
    got = replay(lane, readings, ticks, mask)
    expected = tick_by_tick(twin, readings, ticks, mask)
    assert got == expected
    assert_same(lane, twin)


def test_a_replay_of_a_fleet() -> None:
    """Hundreds of slots, most reporting on time, some going silent and coming back, others
    never heard from; in two replays (the second continuing from the first's states)."""
    rng = np.random.default_rng(7)
    lane, twin = twins(
        [
            (OfflineRule(f"r{i}", interval_ms=int(rng.integers(5, 20)), factor=3.0), None)
            for i in range(300)
        ]
    )
    readings: list[Reading] = []
    for slot, rule in enumerate(twin.rules):
        gone = (60, 60 + 5 * rule.interval_ms) if slot % 10 == 0 else (0, 0)
        if slot % 37 == 5:
            continue  # never heard from: raised once its watch has lasted long enough
        for t in range(int(rng.integers(0, rule.interval_ms)), 300, rule.interval_ms):
            if not gone[0] <= t < gone[1]:
                readings.append((slot, t, 0.0, 0))
    readings.sort(key=lambda r: r[1])
    half = [r for r in readings if r[1] < 150]
    rest = [r for r in readings if r[1] >= 150]
    events: Replayed = []
    for part, ticks in ((half, list(range(0, 150, 5))), (rest, list(range(150, 300, 5)))):
        lane.merge_rows = 1 if part is half else 10**6  # tick by tick, then merged
        got = replay(lane, part, ticks, None)
        assert got == tick_by_tick(twin, part, ticks, None)
        assert_same(lane, twin)
        events += got
    changes = {e.change for _i, _p, _s, e in events}
    assert changes == {Change.RAISED, Change.CLEARED}
    assert sum(e.change is Change.RAISED for _i, _p, _s, e in events) >= 30


def test_a_tick_clearing_and_the_next_raising_with_no_reading_between() -> None:
    """Two ticks before the same observation, each with an event of the same slot: their
    events come in tick order."""
    rule = OfflineRule("offline", interval_ms=10, factor=1)
    latch = LatchState(level=Level.RED, start_ms=0, last_ts_ms=100)
    lane, twin = twins([(rule, OfflineState(latch, 0, 50)), (rule, None)])
    readings: list[Reading] = [(1, 130, 0.0, 0)]
    got = replay(lane, readings, [105, 110, 120], None)
    assert [(i, p, s, e.change) for i, p, s, e in got] == [
        (0, 0, 0, Change.CLEARED),
        (1, 0, 0, Change.RAISED),
        (2, 0, 1, Change.RAISED),
        (0, 1, 1, Change.CLEARED),
    ]
    assert got == tick_by_tick(twin, readings, [105, 110, 120], None)
    assert_same(lane, twin)


def test_a_replay_needs_time_order() -> None:
    lane, _ = twins([(OfflineRule("offline", interval_ms=10), None)])
    with pytest.raises(ValueError, match="time order"):
        replay(lane, [(0, 5, 0.0, 0), (0, 4, 0.0, 0)], [], None)
    with pytest.raises(ValueError, match="ascending"):
        replay(lane, [], [5, 4], None)


# Boundaries a replay settles in closed form or not; the property tests may miss them.


def steady(lane: OfflineLane, twin: Twin, rule: OfflineRule, slots: int) -> list[Reading]:
    """``slots`` more slots of ``rule`` reporting every interval from 0 to 100: quiet ones."""
    readings: list[Reading] = []
    for _ in range(slots):
        slot = twin.add(rule)
        lane.add(rule, rule.initial())
        readings += [(slot, t, 0.0, 0) for t in range(0, 100, rule.interval_ms)]
    return readings


def test_a_tick_finds_silence_of_exactly_the_limit_between_two_readings() -> None:
    """Readings the limit apart and a tick at the second one's time: the tick comes first and
    finds the sensor silent for exactly the limit."""
    rule = OfflineRule("offline", interval_ms=10, factor=3)
    lane, twin = twins([(rule, None)])
    own = [(0, t, 0.0, 0) for t in (0, 10, 20, 50, 60, 70, 80, 90)]
    readings = sorted([*steady(lane, twin, rule, 3), *own], key=lambda r: r[1])
    ticks = list(range(0, 100, 5))
    got = replay(lane, readings, ticks, None)
    assert [(p, s, e.change, e.ts_ms) for _i, p, s, e in got] == [
        (0, 0, Change.RAISED, 50),
        (1, 0, Change.CLEARED, 50),
    ]
    assert got == tick_by_tick(twin, readings, ticks, None)
    assert_same(lane, twin)


def test_a_quiet_slot_stops_flapping() -> None:
    """A state loaded flapping with no recent change: the first evaluation settles it."""
    rule = OfflineRule("offline", interval_ms=10, factor=3)
    flapping = OfflineState(LatchState(last_ts_ms=-1, evaluations=20, flapping=True))
    lane, twin = twins([(rule, flapping)])
    readings = sorted([*steady(lane, twin, rule, 3), (0, 5, 0.0, 0)], key=lambda r: r[1])
    assert replay(lane, readings, [], None) == tick_by_tick(twin, readings, [], None) == []
    assert not lane.get(0).latch.flapping
    assert_same(lane, twin)


def test_silence_counts_from_a_reading_before_the_watch_began() -> None:
    """Heard from at 10, watched from 50 (the first tick): silence counts from 10."""
    rule = OfflineRule("offline", interval_ms=15, factor=3)
    lane, twin = twins([(rule, None)])
    twin.read([(0, 10, 0.0, 0)])
    lane.evaluate(batch_of([(0, 10, 0.0, 0)]))
    assert twin.tick(50) == lane.tick(50) == []
    readings = sorted(steady(lane, twin, rule, 3), key=lambda r: r[1])
    got = replay(lane, readings, [60], None)
    assert [(i, p, s, e.change, e.value) for i, p, s, e in got] == [(0, 0, 0, Change.RAISED, 0.05)]
    assert got == tick_by_tick(twin, readings, [60], None)
    assert_same(lane, twin)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**20 - 1) | st.integers(0, 2**64 - 1),
            st.integers(0, 25),
            st.booleans(),
            st.integers(0, 25),
        ),
        min_size=1,
        max_size=40,
    ),
    st.booleans(),
)
def test_a_replay_settles_quiet_latches(
    latches: list[tuple[int, int, bool, int]], ticked: bool
) -> None:
    """Latches at level 0 with recent changes, flapping or not, that the replay steps
    through a number of quiet evaluations (readings, and ticks that find nothing wrong): the
    changes leave the window, the flag starts (once half a window is seen) or stops as the
    reference's would, evaluation after evaluation."""
    rule = OfflineRule("offline", interval_ms=1000)
    lane, twin = twins(
        [
            (rule, OfflineState(LatchState(history=h, evaluations=e, flapping=f), 0, 0))
            for h, e, f, _n in latches
        ]
    )
    readings = sorted(
        ((slot, 1 + t, 0.0, 0) for slot, (*_s, n) in enumerate(latches) for t in range(n)),
        key=lambda r: r[1],
    )
    ticks = list(range(1, 30, 3)) if ticked else []
    got = replay(lane, readings, ticks, None)
    assert got == tick_by_tick(twin, readings, ticks, None) == []
    assert_same(lane, twin)


def test_a_quiet_latch_starts_flapping_once_half_a_window_is_seen() -> None:
    """Six changes in the window of 20 (30 %, the limit) after 5 more evaluations, the
    tenth: flapping from then on, with or without another step; not after only 4."""
    rule = OfflineRule("offline", interval_ms=1000)
    state = OfflineState(LatchState(history=0b111111, evaluations=5), 0, 0)
    lane, twin = twins([(rule, state)] * 3)
    readings = sorted(
        ((slot, 1 + t, 0.0, 0) for slot, n in enumerate((4, 5, 6)) for t in range(n)),
        key=lambda r: r[1],
    )
    assert replay(lane, readings, [], None) == tick_by_tick(twin, readings, [], None) == []
    assert [lane.get(slot).latch.flapping for slot in range(3)] == [False, True, True]
    assert_same(lane, twin)


def test_a_replay_clears_no_earlier_than_the_tick_that_raised() -> None:
    """Raised by a tick at 100 before the replay; the replay's first reading says 90 (the
    device clock lags): the clear is dated 100, and the silence ran from the reading at 50."""
    rule = OfflineRule("offline", interval_ms=10, factor=3)
    raised = OfflineState(LatchState(level=Level.YELLOW, start_ms=100, last_ts_ms=50), 0, 100)
    lane, twin = twins([(rule, raised)])
    readings = [(0, 90, 0.0, 0), (0, 95, 0.0, 0)]
    got = replay(lane, readings, [], None)
    assert [(i, p, s, e.change, e.ts_ms, e.value) for i, p, s, e in got] == [
        (0, 1, 0, Change.CLEARED, 100, 0.04)
    ]
    assert got == tick_by_tick(twin, readings, [], None)
    assert_same(lane, twin)
