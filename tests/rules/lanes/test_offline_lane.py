"""The offline lane against the reference (rules.offline), reading by reading and tick by tick.

The lane must give exactly the reference's events (with the latch's flapping flag, as the
engine sets it) and states, whatever the order of readings and ticks: duplicates, late
readings, ticks going backwards, sensors never heard from, states loaded mid-way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.events import Change, RuleEvent, with_flapping
from rules.lanes.base import Batch, Emitted
from rules.lanes.offline import OfflineLane
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
        history=draw(st.integers(0, 2**20 - 1)),
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
