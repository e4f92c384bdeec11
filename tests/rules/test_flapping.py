"""Flapping ("chattering alarms"): the latch counts level changes over its last evaluations.

Every call of ``latch.step`` is one evaluation. With the defaults (20 evaluations, flapping at
30 % changes once half a window is seen, settled at 10 % or less) an alarm oscillating around
its set-point becomes flapping, its events say so, and a steady value lets it settle.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import pytest

from alerting.codec import event_to_dict
from alerting.console import FLAPPING_NOTE, format_event
from earlywarn.alarms import to_alarm_event
from earlywarn.registry import Registry
from rules import engine, latch
from rules.events import Change, RuleEvent, with_flapping
from rules.latch import Delays, LatchState
from rules.levels import Level
from rules.threshold import Direction, Setpoint, ThresholdRule

T0 = 1_795_000_000_000

# No hysteresis: the alarm clears exactly where it sets, so a value wobbling around 25 chatters.
GAS = ThresholdRule("combustible_gas", Direction.HIGH, (Setpoint(Level.ORANGE, 25.0, 25.0),))
ABOVE, BELOW = 26.0, 24.0


def feed(
    rule: ThresholdRule, values: Sequence[float], state: LatchState | None = None, start: int = 0
) -> tuple[LatchState, list[tuple[int, RuleEvent]], list[bool]]:
    """Feed readings one second apart the way the engine does: each event carries the latch's
    flag (``with_flapping``). Return the state, (reading index, event) pairs and the flag after
    every reading."""
    state = state or rule.initial()
    events: list[tuple[int, RuleEvent]] = []
    flags: list[bool] = []
    for i, value in enumerate(values, start):
        state, event = rule.evaluate(state, T0 + i * 1000, value)
        if event is not None:
            events.append((i, with_flapping(event, state.latch.flapping)))
        flags.append(state.flapping)
    return state, events, flags


def oscillating(n: int) -> list[float]:
    return [ABOVE if i % 2 == 0 else BELOW for i in range(n)]


def drive(
    delays: Delays, changes: Sequence[int], state: LatchState | None = None
) -> tuple[LatchState, list[bool], list[latch.Transition | None]]:
    """Step a one-level latch so that evaluation ``i`` changes the level iff ``changes[i]``."""
    state = state or LatchState()
    flags: list[bool] = []
    moves: list[latch.Transition | None] = []
    for change in changes:
        condition = (state.level != 0) != bool(change)
        ts = 0 if state.last_ts_ms is None else state.last_ts_ms + 1000
        state, moved = latch.step(delays, (3,), (condition,), (condition,), state, ts)
        assert (moved is not None) == bool(change)
        flags.append(state.flapping)
        moves.append(moved)
    return state, flags, moves


# --- a threshold rule oscillating around its set-point ---------------------------------------


def test_an_oscillating_value_makes_the_alarm_flap_and_its_events_say_so() -> None:
    state, events, flags = feed(GAS, oscillating(20))
    # Every reading changes the level: raised, cleared, raised, …
    assert [i for i, _ in events] == list(range(20))
    assert [e.change for _, e in events[:3]] == [Change.RAISED, Change.CLEARED, Change.RAISED]
    # Never judged on less than half a window (10 evaluations): the 10th reading turns it on.
    assert flags == [False] * 9 + [True] * 11
    assert [e.flapping for _, e in events] == [False] * 9 + [True] * 11
    assert state.flapping and state.changes == 20 and state.evaluations == 20


def test_a_steady_value_lets_the_alarm_settle_and_later_events_are_not_flapping() -> None:
    state, _, _ = feed(GAS, oscillating(20))
    # Steady below the set-point: the 20 changes roll out of the window one by one; the flag
    # drops when only 2 are left (≤ 10 %), after 18 steady readings — without an event.
    state, events, flags = feed(GAS, [BELOW] * 25, state, start=20)
    assert events == []
    assert flags == [True] * 17 + [False] * 8
    # The next transition carries the settled flag.
    state, events, _ = feed(GAS, [ABOVE], state, start=45)
    assert [(e.change, e.flapping) for _, e in events] == [(Change.RAISED, False)]
    assert not state.flapping


def test_a_flag_change_alone_is_not_a_transition_but_the_next_one_carries_it() -> None:
    delays = Delays()
    # Six changes in the first six evaluations: too early to judge (fewer than 10 seen).
    state, flags, _ = drive(delays, [1] * 6)
    assert flags == [False] * 6
    # Four quiet evaluations later half a window is seen: the flag turns on with no change.
    state, flags, moves = drive(delays, [0] * 4, state)
    assert flags == [False, False, False, True]
    assert moves == [None] * 4
    # The next level change is reported flapping.
    state, _, moves = drive(delays, [1], state)
    assert moves[0] is not None and moves[0].flapping and state.flapping


def test_the_transition_that_tips_the_balance_is_itself_flapping() -> None:
    state, flags, moves = drive(Delays(), [0] * 10 + [1] * 6)
    assert flags == [False] * 15 + [True]
    changes = [m for m in moves if m is not None]
    assert [m.flapping for m in changes] == [False] * 5 + [True]
    assert state.changes == 6


# --- hysteresis of the flag itself -------------------------------------------------------------

# Window 10: flapping at ≥ 5 changes, settled at ≤ 2.
NARROW = Delays(flap_window=10, flap_enter=0.5, flap_leave=0.2)
MODERATE = [1, 0, 0] * 10  # 3 or 4 changes in every 10 evaluations: between the two limits


def test_a_moderate_rate_keeps_a_flapping_alarm_flapping() -> None:
    state, flags, _ = drive(NARROW, [1] * 5)
    assert flags == [False] * 4 + [True]
    state, flags, _ = drive(NARROW, MODERATE, state)
    assert all(flags)


def test_a_moderate_rate_does_not_make_a_settled_alarm_flap() -> None:
    _, flags, _ = drive(NARROW, [0] * 10 + MODERATE)
    assert not any(flags)


def test_after_settling_the_moderate_rate_does_not_turn_the_flag_back_on() -> None:
    state, _, _ = drive(NARROW, [1] * 10)
    assert state.flapping
    state, flags, _ = drive(NARROW, [0] * 10, state)
    # 10 changes in the window; the 8th quiet evaluation leaves 2 (20 %): settled.
    assert flags == [True] * 7 + [False] * 3
    _, flags, _ = drive(NARROW, MODERATE, state)
    assert not any(flags)


def test_a_shorter_window_forgets_older_evaluations() -> None:
    state, _, _ = drive(Delays(), [1] * 20)
    assert state.changes == 20
    state, _, _ = drive(NARROW, [0], state)
    assert state.changes == 9 and state.evaluations == 10


# --- persisted state -----------------------------------------------------------------------------


def test_the_state_round_trips_through_json_with_the_flapping_fields() -> None:
    state, _, _ = feed(GAS, oscillating(15))
    data = json.loads(json.dumps(state.to_dict()))
    assert data["flapping"] is True
    assert data["evaluations"] == 15 and data["history"] == (1 << 15) - 1
    back = GAS.state_from_dict(data)
    assert back == state
    # Through the engine's sensor-state serialisation as well.
    sensor = engine.state_from_dict(
        [GAS], json.loads(json.dumps(engine.state_to_dict({GAS.rule_id: state})))
    )
    assert sensor == {GAS.rule_id: state}


def test_a_state_written_before_flapping_detection_still_loads() -> None:
    old = {"level": 3, "start_ms": T0, "last_ts_ms": T0 + 5000, "pending": [], "release_ms": None}
    state = LatchState.from_dict(old)
    assert (state.level, state.start_ms, state.last_ts_ms) == (3, T0, T0 + 5000)
    assert (state.history, state.evaluations, state.flapping) == (0, 0, False)
    # And it keeps working: the next reading below the set-point clears it, not flapping.
    _, events, _ = feed(GAS, [BELOW], state, start=6)
    assert [(e.change, e.flapping) for _, e in events] == [(Change.CLEARED, False)]


# --- validation --------------------------------------------------------------------------------


def test_existing_delays_calls_keep_their_meaning_and_the_defaults() -> None:
    d = Delays(1000, 2000, 3)
    assert (d.on_delay_ms, d.off_delay_ms, d.consecutive) == (1000, 2000, 3)
    assert (d.flap_window, d.flap_enter, d.flap_leave) == (
        latch.FLAP_WINDOW,
        latch.FLAP_ENTER,
        latch.FLAP_LEAVE,
    )
    assert (latch.FLAP_WINDOW, latch.FLAP_ENTER, latch.FLAP_LEAVE) == (20, 0.3, 0.1)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"flap_window": 1}, "flapping window must be between 2 and 64 evaluations, got 1"),
        ({"flap_window": 65}, "flapping window must be between 2 and 64 evaluations"),
        ({"flap_window": 20.5}, "flapping window must be a whole number of evaluations"),
        ({"flap_window": True}, "flapping window must be a whole number"),
        ({"flap_enter": 0.0}, "flapping limit must be a fraction of the window above 0"),
        ({"flap_enter": 1.5}, "at most 1, got 1.5"),
        ({"flap_enter": math.nan}, "flapping limit must be a fraction"),
        ({"flap_leave": -0.1}, "settle limit of flapping must be at least 0"),
        ({"flap_leave": 0.3}, "below the flapping limit 0.3, got 0.3"),
        ({"flap_enter": 0.2, "flap_leave": 0.25}, "below the flapping limit 0.2"),
        ({"flap_leave": math.inf}, "settle limit of flapping"),
    ],
)
def test_delays_refuse_bad_flapping_settings_in_plain_words(
    fields: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        Delays(**fields)


def test_the_strictest_valid_flapping_settings_are_accepted() -> None:
    Delays(flap_window=2, flap_enter=1.0, flap_leave=0.0)
    Delays(flap_window=64)


# --- the flag on the way out -------------------------------------------------------------------


def test_the_engine_marks_events_of_a_flapping_alarm() -> None:
    state: dict[str, object] = {}
    flags = []
    for i, value in enumerate(oscillating(12)):
        state, events = engine.evaluate_sensor([GAS], state, T0 + i * 1000, value)
        flags += [e.flapping for e in events]
    assert flags == [False] * 9 + [True] * 3


def test_with_flapping_sets_the_flag_and_keeps_the_rest() -> None:
    _, events, _ = feed(GAS, [ABOVE])
    _, event = events[0]
    assert not event.flapping
    marked = with_flapping(event, True)
    assert marked.flapping and marked == with_flapping(marked, True)
    assert with_flapping(marked, False) == event


def test_the_alarm_event_its_json_and_its_console_line_carry_the_flag(registry: Registry) -> None:
    sensor = next(s for s in registry.sensors.values() if s.rules)
    _, events, _ = feed(GAS, oscillating(10))
    calm = to_alarm_event(registry, sensor, events[0][1])
    chattering = to_alarm_event(registry, sensor, events[-1][1])
    assert not calm.flapping and chattering.flapping
    assert event_to_dict(calm)["flapping"] is False
    assert json.loads(json.dumps(event_to_dict(chattering)))["flapping"] is True
    assert format_event(chattering).endswith(f"  {FLAPPING_NOTE}")
    assert FLAPPING_NOTE not in format_event(calm)
