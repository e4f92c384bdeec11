"""The composite rule: k of n members at or above a level raise one zone alarm."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import composite
from rules.composite import CompositeRule, CompositeState
from rules.events import Change, RuleEvent
from rules.levels import Level

T0 = 1_795_000_000_000
A, B, C = "ent/site/GD-01", "ent/site/GD-02", "ent/site/GD-03"

# Two of three detectors at orange or above: zone red.
RULE = CompositeRule("two_detectors", (A, B, C), 2, Level.ORANGE, Level.RED)


def run(
    rule: CompositeRule, steps: list[tuple[str, int]], state: CompositeState | None = None
) -> tuple[CompositeState, list[RuleEvent | None]]:
    """Feed ``(member, level)`` updates one second apart; return the state and every result."""
    state = rule.initial() if state is None else state
    out: list[RuleEvent | None] = []
    for i, (member, level) in enumerate(steps):
        state, event = composite.update(rule, state, member, level, T0 + i * 1000)
        out.append(event)
    return state, out


def changes(events: list[RuleEvent | None]) -> list[tuple[Change, Level | None] | None]:
    return [None if e is None else (e.change, e.level) for e in events]


def test_k_members_at_the_level_raise_the_zone_alarm() -> None:
    state, events = run(RULE, [(A, Level.ORANGE), (B, Level.RED)])
    assert events[0] is None, "one detector is not enough"
    event = events[1]
    assert event is not None
    assert (event.change, event.level, event.previous) == (Change.RAISED, Level.RED, None)
    assert event.rule_id == "two_detectors"
    assert event.kind == "composite" and event.direction == "high"
    assert (event.value, event.setpoint) == (2.0, 2.0)
    assert event.setpoint_label == "2/3 测点≥橙色"
    assert event.ts_ms == event.start_ms == T0 + 1000
    assert event.window_ms is None
    assert state.latch.level == Level.RED
    assert state.member_levels == {A: Level.ORANGE, B: Level.RED}


def test_members_below_the_level_do_not_count() -> None:
    _, events = run(RULE, [(A, Level.YELLOW), (B, Level.BLUE), (C, Level.ORANGE)])
    assert events == [None, None, None]


def test_dropping_below_k_clears_the_same_alarm() -> None:
    _, events = run(RULE, [(A, Level.ORANGE), (B, Level.ORANGE), (A, 0)])
    raised, cleared = events[1], events[2]
    assert raised is not None and cleared is not None
    assert (cleared.change, cleared.level, cleared.previous) == (Change.CLEARED, None, Level.RED)
    assert (cleared.value, cleared.setpoint) == (1.0, 2.0)
    assert cleared.start_ms == raised.start_ms, "every event of one alarm carries its start"


def test_member_levels_moving_up_and_down() -> None:
    _, events = run(
        RULE,
        [
            (A, Level.ORANGE),
            (B, Level.ORANGE),  # 2 of 3: raised
            (A, Level.RED),  # still 2: nothing new
            (C, Level.ORANGE),  # 3: nothing new, the alarm is already up
            (A, Level.YELLOW),  # 2 (B, C): held
            (B, 0),  # 1: cleared
            (B, Level.RED),  # 2 again: a new alarm
        ],
    )
    assert changes(events) == [
        None,
        (Change.RAISED, Level.RED),
        None,
        None,
        None,
        (Change.CLEARED, None),
        (Change.RAISED, Level.RED),
    ]
    first, second = events[1], events[6]
    assert first is not None and second is not None
    assert second.start_ms != first.start_ms


def test_the_same_member_never_counts_twice() -> None:
    _, events = run(RULE, [(A, Level.ORANGE), (A, Level.RED), (A, Level.ORANGE)])
    assert events == [None, None, None]


def test_one_of_n() -> None:
    rule = CompositeRule("any", (A, B), 1, Level.YELLOW, Level.YELLOW)
    _, events = run(rule, [(A, Level.BLUE), (B, Level.YELLOW), (B, 0)])
    assert changes(events) == [None, (Change.RAISED, Level.YELLOW), (Change.CLEARED, None)]


def test_member_rule_is_kept_for_the_caller() -> None:
    rule = CompositeRule("gas", (A, B), 2, Level.ORANGE, Level.RED, member_rule="combustible_gas")
    assert rule.member_rule == "combustible_gas"
    assert rule.kind == "composite"


def test_on_delay_needs_the_condition_to_last() -> None:
    rule = CompositeRule("slow", (A, B), 2, Level.ORANGE, Level.RED, on_delay_ms=5000)
    state = rule.initial()
    state, event = composite.update(rule, state, A, Level.ORANGE, T0)
    state, event = composite.update(rule, state, B, Level.ORANGE, T0 + 1000)
    assert event is None
    state, event = composite.update(rule, state, A, Level.ORANGE, T0 + 5999)
    assert event is None
    state, event = composite.update(rule, state, B, Level.ORANGE, T0 + 6000)
    assert event is not None and event.change is Change.RAISED
    assert event.start_ms == T0 + 6000


def test_off_delay_holds_the_alarm() -> None:
    rule = CompositeRule("sticky", (A, B), 2, Level.ORANGE, Level.RED, off_delay_ms=10_000)
    state, events = run(rule, [(A, Level.ORANGE), (B, Level.ORANGE), (A, 0)])
    assert changes(events) == [None, (Change.RAISED, Level.RED), None]
    state, event = composite.update(rule, state, B, Level.ORANGE, T0 + 2000 + 9999)
    assert event is None
    state, event = composite.update(rule, state, B, Level.ORANGE, T0 + 2000 + 10_000)
    assert event is not None and event.change is Change.CLEARED


def test_an_update_dated_before_the_last_still_counts_and_time_does_not_go_back() -> None:
    state, _ = run(RULE, [(A, Level.ORANGE)])
    # B's reading carries an older device time than A's: its level is still recorded.
    state, event = composite.update(RULE, state, B, Level.ORANGE, T0 - 5000)
    assert event is not None and event.change is Change.RAISED
    assert event.ts_ms == T0, "the latch runs on the newest time it has seen"
    assert state.latch.last_ts_ms == T0


def test_a_zone_alarm_coming_and_going_is_flagged_as_flapping() -> None:
    # A stays at orange; B toggles, so every update raises or clears the zone alarm.
    steps = [(A, Level.ORANGE)] + [(B, Level.ORANGE if i % 2 == 0 else 0) for i in range(20)]
    state, events = run(RULE, steps)
    flags = [e.flapping for e in events if e is not None]
    assert len(flags) == 20
    assert not flags[0] and flags[-1], "flapping once enough of the window changed"
    assert state.latch.flapping


def test_update_refuses_a_stranger_or_a_bad_level() -> None:
    with pytest.raises(ValueError, match="not a member"):
        composite.update(RULE, RULE.initial(), "ent/site/GD-99", Level.RED, T0)
    with pytest.raises(ValueError, match="member level"):
        composite.update(RULE, RULE.initial(), A, 5, T0)
    with pytest.raises(ValueError, match="member level"):
        composite.update(RULE, RULE.initial(), A, -1, T0)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"members": (A,)}, "at least 2 members"),
        ({"members": ()}, "at least 2 members"),
        ({"members": (A, B, A)}, "only once"),
        ({"members": (A, "")}, "members must be"),
        ({"min_count": 0}, "min_count"),
        ({"min_count": 4}, "min_count"),
        ({"min_count": True}, "min_count"),
        ({"min_count": 1.5}, "min_count"),
        ({"at_level": Level.RED, "level": Level.ORANGE}, "below the member level"),
        ({"at_level": 7}, "not a valid Level"),
        ({"on_delay_ms": -1}, "negative"),
        ({"off_delay_ms": -1}, "negative"),
        ({"rule_id": ""}, "rule id"),
        ({"member_rule": ""}, "member_rule"),
    ],
)
def test_validation(kwargs: dict[str, Any], words: str) -> None:
    args: dict[str, Any] = {
        "rule_id": "z",
        "members": (A, B, C),
        "min_count": 2,
        "at_level": Level.ORANGE,
        "level": Level.RED,
        **kwargs,
    }
    with pytest.raises(ValueError, match=words):
        CompositeRule(**args)


def test_levels_may_be_given_as_integers_and_the_same_level_is_allowed() -> None:
    rule = CompositeRule("z", [A, B], 2, 4, 4)  # type: ignore[arg-type]
    assert rule.at_level is Level.RED and rule.level is Level.RED
    assert rule.members == (A, B)


def test_state_round_trips_through_json() -> None:
    rule = CompositeRule("z", (A, B, C), 2, Level.ORANGE, Level.RED, off_delay_ms=5000)
    state, _ = run(rule, [(A, Level.RED), (B, Level.ORANGE), (B, 0)])  # off-delay running
    assert state.latch.release_ms is not None
    restored = rule.state_from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    # The restored state behaves as the original: the off-delay completes and clears.
    later = T0 + 2000 + 5000
    assert composite.update(rule, restored, C, 0, later) == composite.update(
        rule, state, C, 0, later
    )
    _, event = composite.update(rule, restored, C, 0, later)
    assert event is not None and event.change is Change.CLEARED


def test_state_of_members_no_longer_configured_is_dropped() -> None:
    state, _ = run(RULE, [(A, Level.ORANGE), (C, Level.ORANGE)])
    smaller = CompositeRule("two_detectors", (A, B), 2, Level.ORANGE, Level.RED)
    restored = smaller.state_from_dict(state.to_dict())
    assert restored.member_levels == {A: Level.ORANGE}


@given(
    st.lists(
        st.tuples(st.sampled_from((A, B, C)), st.integers(min_value=0, max_value=4)), max_size=40
    ),
    st.integers(min_value=1, max_value=3),
)
def test_the_zone_is_active_exactly_while_k_members_count(
    steps: list[tuple[str, int]], k: int
) -> None:
    rule = CompositeRule("z", (A, B, C), k, Level.ORANGE, Level.RED)
    state = rule.initial()
    latest: dict[str, int] = {}
    active = False
    for i, (member, level) in enumerate(steps):
        state, event = composite.update(rule, state, member, level, T0 + i)
        latest[member] = level
        should = sum(1 for lvl in latest.values() if lvl >= Level.ORANGE) >= k
        assert (state.latch.level == Level.RED) is should
        if event is not None:
            assert event.change is (Change.RAISED if should else Change.CLEARED)
            assert not active if should else active
        else:
            assert active is should
        active = should
