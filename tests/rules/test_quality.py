"""What the data-quality kinds share: the rule protocol, plain-data state, and restarts.

A run that is serialised at any point and continued from the JSON must give exactly the events
of an uninterrupted run; that is what lets the distributed runner move a sensor between
workers and the embedded runner survive a restart.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import engine, quality
from rules.base import Rule
from rules.events import RuleEvent
from rules.levels import Level
from rules.offline import OfflineRule
from rules.out_of_range import OutOfRangeRule
from rules.spike import SpikeRule
from rules.stuck import StuckRule

T0 = 1_795_000_000_000
S = 1000

RULES: dict[str, Rule] = {
    "offline": OfflineRule("offline", interval_ms=20 * S, factor=2.0),
    "offline_delayed": OfflineRule("offline_delayed", interval_ms=20 * S, off_delay_ms=30 * S),
    "stuck": StuckRule("stuck", window_ms=30 * S, epsilon=0.5, min_points=3),
    "stuck_delayed": StuckRule("stuck_delayed", 30 * S, 0.5, min_points=3, off_delay_ms=20 * S),
    "out_of_range": OutOfRangeRule(
        "out_of_range", 0.0, 10.0, fault_values=(-9999.0,), fault_qualities=(7,)
    ),
    "out_of_range_delayed": OutOfRangeRule(
        "out_of_range_delayed", 0.0, 10.0, on_delay_ms=5 * S, off_delay_ms=5 * S, consecutive=2
    ),
    "spike": SpikeRule("spike", window_points=8, k=3.0, min_points=4, consecutive_shift=2),
    "spike_delayed": SpikeRule("spike_delayed", window_points=6, min_points=3, off_delay_ms=8 * S),
}

KINDS = {
    OfflineRule: "offline",
    StuckRule: "stuck",
    OutOfRangeRule: "out_of_range",
    SpikeRule: "spike",
}

Op = tuple[str, int, float, int]
"""("read" or "tick", ms after the previous op (may be negative), value, quality)."""

ops = st.lists(
    st.tuples(
        st.sampled_from(["read", "read", "tick"]),
        st.integers(min_value=-5 * S, max_value=50 * S),
        st.one_of(
            st.sampled_from([1.0, 1.0, 1.2, 1.5, 5.0, 11.0, -9999.0, math.nan, math.inf]),
            st.floats(min_value=-20, max_value=30),
        ),
        st.sampled_from([0, 0, 0, 3, 7]),
    ),
    max_size=60,
)


def play(
    rule: Rule, steps: list[Op], state: Any = None, clock: int = T0
) -> tuple[Any, list[RuleEvent]]:
    """Apply readings and ticks; the clock moves by each op's offset (and may go back)."""
    state = rule.initial() if state is None else state
    events = []
    for what, dt, value, q in steps:
        clock += dt
        if what == "read":
            state, event = rule.evaluate(state, clock, value, q)
        else:
            state, event = rule.tick(state, clock)
        if event is not None:
            events.append(event)
    return state, events


def through_json(rule: Rule, state: Any) -> Any:
    return rule.state_from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)))


def same_events(a: list[RuleEvent], b: list[RuleEvent]) -> bool:
    """Equal, NaN values (out-of-range readings) counting as equal to themselves."""
    return json.dumps([repr(e) for e in a]) == json.dumps([repr(e) for e in b])


@pytest.mark.parametrize("name", sorted(RULES))
@given(steps=ops, data=st.data())
def test_a_split_run_gives_the_same_events_as_an_uninterrupted_one(
    name: str, steps: list[Op], data: st.DataObject
) -> None:
    rule = RULES[name]
    whole_state, whole = play(rule, steps)
    cut = data.draw(st.integers(min_value=0, max_value=len(steps)), label="cut")
    clock = T0 + sum(dt for _, dt, _, _ in steps[:cut])
    first_state, first = play(rule, steps[:cut])
    restored = through_json(rule, first_state)
    assert restored == first_state
    final, second = play(rule, steps[cut:], restored, clock)
    assert same_events(first + second, whole)
    assert final == whole_state


@pytest.mark.parametrize("name", sorted(RULES))
@given(steps=ops)
def test_every_state_is_plain_json_and_reads_back_exactly(name: str, steps: list[Op]) -> None:
    rule = RULES[name]
    state = rule.initial()
    clock = T0
    for what, dt, value, q in steps:
        clock += dt
        if what == "read":
            state, _ = rule.evaluate(state, clock, value, q)
        else:
            state, _ = rule.tick(state, clock)
        assert through_json(rule, state) == state


@pytest.mark.parametrize("name", sorted(RULES))
@given(steps=ops)
def test_events_alternate_and_one_alarm_keeps_its_start(name: str, steps: list[Op]) -> None:
    rule = RULES[name]
    _, events = play(rule, steps)
    level = None
    for e in events:
        assert e.kind == rule.kind and e.rule_id == rule.rule_id
        assert e.previous == level and e.level != level
        assert math.isfinite(e.setpoint)
        level = e.level


@pytest.mark.parametrize("name", sorted(RULES))
@given(steps=ops)
def test_replaying_the_same_readings_adds_no_events(name: str, steps: list[Op]) -> None:
    rule = RULES[name]
    reads = [s for s in steps if s[0] == "read"]
    state, _ = play(rule, reads)
    _, again = play(rule, reads, state)  # same timestamps again: all stale
    assert again == []


@pytest.mark.parametrize("rule", list(RULES.values()), ids=sorted(RULES))
def test_the_kinds_and_their_clock_behaviour(rule: Rule) -> None:
    assert rule.kind == KINDS[type(rule)]
    state = rule.initial()
    assert engine.state_from_dict([rule], engine.state_to_dict({rule.rule_id: state})) == {
        rule.rule_id: state
    }
    ticked, event = rule.tick(state, T0)
    assert event is None
    if rule.kind != "offline":
        assert ticked is state, "only offline acts on the clock"


def test_the_engine_runs_all_four_kinds_for_one_sensor() -> None:
    rules: list[Rule] = [
        OfflineRule("offline", interval_ms=10 * S),
        StuckRule("stuck", window_ms=20 * S, epsilon=0.0, min_points=3),
        OutOfRangeRule("range", 0.0, 100.0),
        SpikeRule("spike", window_points=10, min_points=3),
    ]
    state: dict[str, Any] = {}
    kinds: list[str] = []
    state, events = engine.tick_sensor(rules, state, T0)  # watch starts, nothing heard yet
    for now in range(T0 + 10 * S, T0 + 31 * S, 10 * S):
        state, events = engine.tick_sensor(rules, state, now)
        kinds += [e.kind for e in events]
    assert kinds == ["offline"]
    for i in range(5):
        state, events = engine.evaluate_sensor(rules, state, T0 + (20 + 10 * i) * S, 50.0)
        kinds += [f"{e.kind}:{e.change}" for e in events]
    state, events = engine.evaluate_sensor(rules, state, T0 + 71 * S, 500.0)
    kinds += [f"{e.kind}:{e.change}" for e in events]
    assert kinds == [
        "offline",
        "offline:cleared",  # the reading at +20 s is not stale though the clock is at +30 s
        "stuck:raised",  # 50.0 at +20, +30, +40 s: three points over 20 s
        "stuck:cleared",
        "out_of_range:raised",
        "spike:raised",
    ]
    data = json.loads(json.dumps(engine.state_to_dict(state)))
    assert engine.state_from_dict(rules, data) == state


@pytest.mark.parametrize(
    ("given_level", "expected"),
    [(Level.RED, Level.RED), ("orange", Level.ORANGE), ("蓝色", Level.BLUE), (2, Level.YELLOW)],
)
def test_a_level_may_be_a_level_a_name_or_a_number(given_level: object, expected: Level) -> None:
    assert quality.as_level("r", given_level) is expected


@pytest.mark.parametrize(
    ("given_level", "words"),
    [("pink", "rule 'r': unknown level 'pink'"), (0, "not a valid Level"), (None, "one of blue")],
)
def test_a_bad_level_is_refused_in_plain_words(given_level: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        quality.as_level("r", given_level)
