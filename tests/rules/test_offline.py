"""The offline (deadman) rule: evaluated on the clock, cleared by data, never fooled by ticks."""

from __future__ import annotations

import json
import math

import pytest

from rules import engine
from rules.events import Change, RuleEvent
from rules.levels import Level
from rules.offline import OfflineRule, OfflineState

T0 = 1_795_000_000_000
MIN = 60_000

# Reports every minute; offline after 3 minutes of silence.
RULE = OfflineRule("offline", interval_ms=MIN)


def ticks(
    rule: OfflineRule, state: OfflineState, start_ms: int, end_ms: int, every_ms: int = 10_000
) -> tuple[OfflineState, list[RuleEvent]]:
    """Tick from ``start_ms`` to ``end_ms`` inclusive; return the state and the events."""
    events = []
    for now in range(start_ms, end_ms + 1, every_ms):
        state, event = rule.tick(state, now)
        if event is not None:
            events.append(event)
    return state, events


def test_a_sensor_never_heard_from_fires_after_factor_times_interval() -> None:
    state, events = ticks(RULE, RULE.initial(), T0, T0 + 10 * MIN)
    assert len(events) == 1
    event = events[0]
    assert event.change is Change.RAISED and event.level is Level.YELLOW
    assert event.ts_ms == T0 + 3 * MIN, "the first tick starts the watch"
    assert event.kind == "offline" and event.direction == "high"
    assert event.value == 180.0 and event.setpoint == 180.0
    assert event.setpoint_label == "3 × 上报周期"
    assert event.window_ms == 3 * MIN
    assert state.watch_since_ms == T0 and state.last_reading_ms is None


def test_silence_exactly_at_the_limit_fires_and_a_millisecond_less_does_not() -> None:
    state, _ = RULE.tick(RULE.initial(), T0)
    state, event = RULE.tick(state, T0 + 3 * MIN - 1)
    assert event is None and state.latch.level == 0
    _, event = RULE.tick(state, T0 + 3 * MIN)
    assert event is not None and event.change is Change.RAISED


def test_fires_while_the_whole_feed_is_silent() -> None:
    state, event = RULE.evaluate(RULE.initial(), T0, 20.0)
    assert event is None
    state, events = ticks(RULE, state, T0 + 10_000, T0 + 30 * MIN)
    assert [e.ts_ms - T0 for e in events] == [3 * MIN], "one alarm, on time, then it holds"
    assert state.latch.level == Level.YELLOW


def test_silence_counts_from_the_last_reading_not_from_the_watch() -> None:
    state, _ = RULE.tick(RULE.initial(), T0)
    state, _ = RULE.evaluate(state, T0 + 2 * MIN, 1.0)  # a gap shorter than the limit
    state, events = ticks(RULE, state, T0 + 2 * MIN + 10_000, T0 + 10 * MIN)
    assert [e.ts_ms - T0 for e in events] == [5 * MIN]
    assert events[0].value == 180.0


def test_a_reading_clears_and_reports_the_silence_it_ended() -> None:
    state, raised = ticks(RULE, RULE.initial(), T0, T0 + 5 * MIN)
    state, cleared = RULE.evaluate(state, T0 + 5 * MIN + 500, 20.0)
    assert cleared is not None
    assert cleared.change is Change.CLEARED and cleared.level is None
    assert cleared.previous is Level.YELLOW
    assert cleared.start_ms == raised[0].start_ms == T0 + 3 * MIN
    assert cleared.value == 300.5
    assert state.latch.level == 0 and state.last_reading_ms == T0 + 5 * MIN + 500


def test_a_new_silence_after_recovery_raises_a_new_alarm() -> None:
    state, first = ticks(RULE, RULE.initial(), T0, T0 + 4 * MIN)
    state, _ = RULE.evaluate(state, T0 + 4 * MIN + 1, 1.0)
    state, second = ticks(RULE, state, T0 + 4 * MIN + 10_000, T0 + 8 * MIN)
    assert [e.ts_ms - T0 for e in first + second] == [3 * MIN, 7 * MIN + 10_000]


def test_readings_alone_never_raise_however_long_the_gaps() -> None:
    state = RULE.initial()
    for ts in (T0, T0 + 10 * MIN, T0 + 24 * 60 * MIN, T0 + 48 * 60 * MIN):
        state, event = RULE.evaluate(state, ts, 1.0)
        assert event is None
    assert state.latch.level == 0


def test_a_tick_does_not_make_the_next_reading_stale() -> None:
    # The service clock runs ahead of the device clock: the tick at +100 s must not turn a
    # reading stamped +50 s into a "stale" one.
    state, _ = RULE.tick(RULE.initial(), T0 + 100_000)
    assert state.latch.last_ts_ms is None
    assert not engine.is_stale({"offline": state}, T0 + 50_000)
    state, _ = RULE.evaluate(state, T0 + 50_000, 1.0)
    assert state.last_reading_ms == T0 + 50_000
    state, _ = RULE.tick(state, T0 + 200_000)
    assert state.latch.last_ts_ms == T0 + 50_000, "ticks never move the reading time"
    assert not engine.is_stale({"offline": state}, T0 + 60_000)


def test_a_clear_from_a_lagging_device_clock_is_not_dated_before_the_raise() -> None:
    state, raised = ticks(RULE, RULE.initial(), T0, T0 + 3 * MIN)
    state, cleared = RULE.evaluate(state, T0 + 3 * MIN - 5_000, 1.0)
    assert cleared is not None and cleared.change is Change.CLEARED
    assert cleared.ts_ms == raised[0].ts_ms
    assert state.last_reading_ms == T0 + 3 * MIN - 5_000


@pytest.mark.parametrize("offset", [-1, 0])
def test_ticks_not_after_the_last_tick_change_nothing(offset: int) -> None:
    state, _ = ticks(RULE, RULE.initial(), T0, T0 + MIN)
    again, event = RULE.tick(state, T0 + MIN + offset)
    assert event is None and again == state
    # Even one far past the limit, if it is dated before the last tick.
    late, event = RULE.tick(state, T0 - 10 * MIN)
    assert event is None and late == state


def test_duplicate_and_out_of_order_readings_change_nothing() -> None:
    state, _ = ticks(RULE, RULE.initial(), T0, T0 + 5 * MIN)
    state, _ = RULE.evaluate(state, T0 + 5 * MIN, 1.0)
    state, _ = ticks(RULE, state, T0 + 5 * MIN + 10_000, T0 + 9 * MIN)
    assert state.latch.level == Level.YELLOW
    for ts in (T0 + 5 * MIN, T0 + MIN):
        after, event = RULE.evaluate(state, ts, 1.0)
        assert event is None and after == state, "a stale reading does not clear the alarm"


@pytest.mark.parametrize("value", [math.nan, math.inf, -9999.0])
def test_any_reading_is_a_sign_of_life(value: float) -> None:
    state, _ = ticks(RULE, RULE.initial(), T0, T0 + 3 * MIN)
    _, event = RULE.evaluate(state, T0 + 3 * MIN + 1, value, quality=99)
    assert event is not None and event.change is Change.CLEARED


def test_off_delay_clears_only_once_the_sensor_has_stayed_back() -> None:
    rule = OfflineRule("offline", interval_ms=MIN, off_delay_ms=2 * MIN)
    state, _ = ticks(rule, rule.initial(), T0, T0 + 3 * MIN)
    state, event = rule.evaluate(state, T0 + 3 * MIN + 1, 1.0)
    assert event is None and state.latch.level == Level.YELLOW
    state, events = ticks(rule, state, T0 + 3 * MIN + 10_000, T0 + 6 * MIN)
    assert [(e.change, e.ts_ms - T0) for e in events] == [(Change.CLEARED, 5 * MIN + 10_000)]


def test_off_delay_does_not_clear_a_sensor_that_drops_again() -> None:
    rule = OfflineRule("offline", interval_ms=MIN, off_delay_ms=5 * MIN)
    state, _ = ticks(rule, rule.initial(), T0, T0 + 3 * MIN)
    state, _ = rule.evaluate(state, T0 + 3 * MIN + 1, 1.0)  # one reading, then silent again
    state, events = ticks(rule, state, T0 + 3 * MIN + 10_000, T0 + 20 * MIN)
    assert events == [] and state.latch.level == Level.YELLOW


def test_level_and_factor_are_configurable() -> None:
    rule = OfflineRule("offline", interval_ms=300_000, factor=1.5, level=Level.RED)
    assert rule.limit_ms == 450_000
    _, events = ticks(rule, rule.initial(), T0, T0 + 900_000, every_ms=150_000)
    assert [(e.ts_ms - T0, e.level) for e in events] == [(450_000, Level.RED)]
    assert events[0].setpoint_label == "1.5 × 上报周期" and events[0].setpoint == 450.0


def test_state_round_trips_through_json() -> None:
    rule = OfflineRule("offline", interval_ms=MIN, off_delay_ms=MIN)
    state, _ = ticks(rule, rule.initial(), T0, T0 + 4 * MIN)
    state, _ = rule.evaluate(state, T0 + 4 * MIN + 1, 1.0)
    assert state.latch.release_ms is not None, "an off-delay in progress is part of the state"
    data = json.loads(json.dumps(engine.state_to_dict({"offline": state})))
    assert engine.state_from_dict([rule], data) == {"offline": state}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"interval_ms": -60_000}, "reporting interval must be a positive"),
        ({"interval_ms": 0}, "reporting interval must be a positive"),
        ({"interval_ms": MIN, "factor": 0.5}, "factor 0.5 is below 1"),
        ({"interval_ms": MIN, "factor": math.nan}, "factor must be a finite number"),
        ({"interval_ms": MIN, "off_delay_ms": -1}, "must not be negative"),
        ({"interval_ms": MIN, "level": "purple"}, "unknown level 'purple'"),
    ],
)
def test_invalid_rules_are_refused_in_plain_words(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        OfflineRule("r", **kwargs)  # type: ignore[arg-type]


def test_a_level_may_be_given_by_name() -> None:
    assert OfflineRule("r", MIN, level="红色").level is Level.RED  # type: ignore[arg-type]
