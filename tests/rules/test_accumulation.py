"""The accumulation rule: rolling rainfall sums, CMA rainstorm signals, flash-flood tables."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import engine
from rules.accumulation import (
    MAX_BUCKETS,
    AccumulationRule,
    AccumulationState,
    LevelWindows,
    Mode,
    WindowSetpoint,
    evaluate,
    pack_amounts,
    unpack_amounts,
)
from rules.events import Change, RuleEvent
from rules.levels import Level

T0 = 1_795_000_200_000  # a five-minute boundary
MIN = 60_000
HOUR = 3_600_000
STEP = 5 * MIN

# CMA rainstorm warning signals: one window per level.
CMA = AccumulationRule(
    "rainstorm",
    Mode.INTERVAL,
    (
        LevelWindows(Level.BLUE, "暴雨蓝色预警", (WindowSetpoint(12 * HOUR, 50, 50),)),
        LevelWindows(Level.YELLOW, "暴雨黄色预警", (WindowSetpoint(6 * HOUR, 50, 50),)),
        LevelWindows(Level.ORANGE, "暴雨橙色预警", (WindowSetpoint(3 * HOUR, 50, 50),)),
        LevelWindows(Level.RED, "暴雨红色预警", (WindowSetpoint(3 * HOUR, 100, 100),)),
    ),
)


def table(*rows: tuple[Level, tuple[float, float, float, float]]) -> tuple[LevelWindows, ...]:
    """Flash-flood critical rainfall: per level, mm in 1/3/6/24 h; clear at 80 %."""
    hours = (1, 3, 6, 24)
    return tuple(
        LevelWindows(
            level,
            f"{level.zh}临界雨量",
            tuple(WindowSetpoint(h * HOUR, mm, mm * 0.8) for h, mm in zip(hours, row, strict=True)),
        )
        for level, row in rows
    )


FLASH = AccumulationRule(
    "flash_flood",
    Mode.INTERVAL,
    table(
        (Level.BLUE, (35, 55, 70, 100)),
        (Level.YELLOW, (45, 75, 95, 130)),
        (Level.ORANGE, (60, 100, 120, 160)),
        (Level.RED, (80, 120, 150, 200)),
    ),
)


def run(
    rule: AccumulationRule,
    readings: list[tuple[int, float]],
    state: AccumulationState | None = None,
) -> tuple[AccumulationState, list[RuleEvent]]:
    """Feed (ts_ms, value) readings; return the final state and every event."""
    state = state or rule.initial()
    events = []
    for ts, v in readings:
        state, event = evaluate(rule, state, ts, v)
        if event is not None:
            events.append(event)
    return state, events


def every_5_min(values: list[float], start: int = T0) -> list[tuple[int, float]]:
    return [(start + i * STEP, v) for i, v in enumerate(values)]


def changes(events: list[RuleEvent]) -> list[tuple[Change, Level | None]]:
    return [(e.change, e.level) for e in events]


def test_52_mm_in_5_h_40_min_is_a_yellow_rainstorm() -> None:
    readings = every_5_min([52 / 68] * 68)  # 68 five-minute readings = 5 h 40 min
    state, events = run(CMA, readings)
    assert changes(events) == [(Change.RAISED, Level.YELLOW)]
    event = events[0]
    assert event.kind == "accumulation" and event.direction == "high"
    assert event.window_ms == 6 * HOUR and event.setpoint == 50
    assert event.setpoint_label == "暴雨黄色预警"
    assert 50 <= event.value < 51
    assert CMA.sums(state)[6 * HOUR] == pytest.approx(52, abs=1e-4)


def test_26_mm_in_an_hour_then_nothing_raises_no_signal() -> None:
    readings = every_5_min([26 / 12] * 12 + [0.0] * (24 * 12))
    state, events = run(CMA, readings)
    assert events == []
    assert state.amounts == (), "a day later every bucket is dry"


def test_100_mm_in_3_h_is_red_after_orange() -> None:
    # 50 mm in 100 min, 50 mm more in the next 80 min: 100 mm in exactly 3 h, then dry.
    readings = every_5_min([2.5] * 20 + [3.125] * 16 + [0.0] * 12)
    _, events = run(CMA, readings)
    assert changes(events) == [
        (Change.RAISED, Level.ORANGE),
        (Change.LEVEL_CHANGED, Level.RED),
        (Change.LEVEL_CHANGED, Level.ORANGE),
    ]
    assert events[0].ts_ms == T0 + 19 * STEP and events[0].value == 50.0, "equality alarms"
    assert events[1].ts_ms == T0 + 35 * STEP and events[1].value == 100.0
    assert events[1].window_ms == 3 * HOUR and events[1].setpoint == 100
    # The 3 h window is the newest 36 buckets: the first 2.5 mm leaves it 5 minutes later.
    assert events[2].ts_ms == T0 + 36 * STEP and events[2].value == 97.5
    assert events[2].setpoint == 100 and events[2].previous is Level.RED
    assert len({e.start_ms for e in events}) == 1, "one alarm throughout"


def test_a_level_is_reached_by_any_of_its_windows() -> None:
    # 36 mm in the first hour: blue by its 1 h window.
    state, events = run(FLASH, every_5_min([3.0] * 12))
    assert changes(events) == [(Change.RAISED, Level.BLUE)]
    assert events[0].window_ms == HOUR and events[0].value == 36.0 and events[0].setpoint == 35
    # Then 21 mm an hour: the 1 h sum falls to 21 mm, but 3 h reaches 75 mm after 115 minutes.
    state, events = run(FLASH, every_5_min([1.75] * 24, T0 + HOUR), state)
    assert changes(events) == [(Change.LEVEL_CHANGED, Level.YELLOW)]
    assert events[0].ts_ms == T0 + HOUR + 22 * STEP
    assert events[0].window_ms == 3 * HOUR and events[0].setpoint == 75
    assert events[0].value == 36 + 23 * 1.75


def test_hysteresis_holds_while_any_window_is_past_its_clear() -> None:
    _, events = run(FLASH, every_5_min([3.0] * 12 + [0.0] * (30 * 12)))
    # Blue by 36 mm in 1 h (set 35). Only the 1 h window is past its clear (28 mm; the 3 h
    # clear is 44 mm), so blue holds at 33 and 30 mm and is released at 27 mm, 10 minutes
    # after the rain stopped.
    assert changes(events) == [(Change.RAISED, Level.BLUE), (Change.CLEARED, None)]
    cleared = events[1]
    assert cleared.window_ms == HOUR and cleared.setpoint == 28.0
    assert cleared.value < 28 and cleared.ts_ms == T0 + 14 * STEP


def test_the_clear_event_names_the_last_window_to_let_go() -> None:
    rule = AccumulationRule(
        "r",
        Mode.INTERVAL,
        (
            LevelWindows(
                Level.RED,
                "红",
                (WindowSetpoint(HOUR, 10, 5), WindowSetpoint(3 * HOUR, 20, 15)),
            ),
        ),
    )
    # 25 mm in the first hour, then dry: 1 h lets go after an hour, 3 h after three.
    _, events = run(rule, every_5_min([25 / 12] * 12 + [0.0] * 48))
    assert changes(events) == [(Change.RAISED, Level.RED), (Change.CLEARED, None)]
    assert events[0].window_ms == HOUR, "rising: the window furthest past its set-point"
    assert events[1].window_ms == 3 * HOUR and events[1].setpoint == 15


def test_a_cumulative_gauge_reset_at_midnight_counts_on() -> None:
    rule = AccumulationRule("rain_total", Mode.CUMULATIVE, CMA.levels)
    counter = [round(7.5 + 0.5 * i, 1) for i in range(12)]  # 5.5 mm up to midnight
    counter += [0.0, 0.5, 1.0]  # reset to 0 at midnight, then counts on
    counter += [0.7]  # a reset straight to a value: the rain since the reset
    state, events = run(rule, every_5_min(counter))
    assert events == []
    # 11 rises of 0.5, a reset to 0 (nothing), two rises of 0.5, then 0.7 after a reset.
    assert rule.sums(state)[3 * HOUR] == pytest.approx(5.5 + 1.0 + 0.7)
    assert state.last_value == 0.7


def test_a_cumulative_counter_with_a_maximum_wraps_round() -> None:
    rule = AccumulationRule("rain_total", Mode.CUMULATIVE, CMA.levels, counter_max=100.0)
    state, _ = run(rule, every_5_min([99.0, 99.8, 0.3, 1.3]))
    assert rule.sums(state)[3 * HOUR] == pytest.approx(0.8 + 0.5 + 1.0)


def test_a_counter_above_its_maximum_is_ignored_not_taken_as_negative_rain() -> None:
    """A reading past ``counter_max`` is garbled: wrapping it would give a negative
    increment (and negative bucket sums); it changes nothing, and the next good reading
    continues from the last good one."""
    rule = AccumulationRule("rain_total", Mode.CUMULATIVE, CMA.levels, counter_max=100.0)
    state, _ = run(rule, every_5_min([99.0, 150.0, 99.5]))
    assert rule.sums(state)[3 * HOUR] == pytest.approx(0.5)
    assert state.last_value == 99.5


def test_tipping_bucket_increments_add_up_exactly() -> None:
    """500 tips of 0.1 mm sum to exactly 50 mm (float addition would give 49.99999…)."""
    assert sum([0.1] * 500) != 50.0
    readings = [(T0 + i * 10_000, 0.1) for i in range(500)]  # one tip every 10 s
    state, events = run(CMA, readings)
    assert changes(events) == [(Change.RAISED, Level.ORANGE)]
    assert events[0].value == 50.0 and events[0].ts_ms == readings[-1][0]
    mixed = [0.2, 0.5, 0.1] * 100
    state, _ = run(CMA, [(T0 + i * 20_000, v) for i, v in enumerate(mixed)])
    assert CMA.sums(state)[12 * HOUR] == 80.0


def test_rain_reported_after_a_gap_is_spread_over_the_gap() -> None:
    rule = AccumulationRule("rain_total", Mode.CUMULATIVE, CMA.levels)
    # Offline for a day; the counter comes back 120 mm higher.
    state, events = run(rule, [(T0, 10.0), (T0 + 24 * HOUR, 130.0)])
    # Spread evenly, that is 60 mm in 12 h (blue), not 120 mm in 3 h (red).
    assert changes(events) == [(Change.RAISED, Level.BLUE)]
    assert events[0].window_ms == 12 * HOUR
    sums = rule.sums(state)
    assert sums[3 * HOUR] == pytest.approx(15.0, abs=1e-4)  # 36 of the 288 buckets
    assert sums[12 * HOUR] == pytest.approx(60.0, abs=1e-4)
    # An interval gauge is spread the same way; within one bucket nothing is spread.
    state, _ = run(CMA, [(T0, 0.0), (T0 + HOUR, 12.0)])
    assert state.amounts == (1_000_000,) * 12
    state, _ = run(CMA, [(T0, 0.0), (T0 + MIN, 12.0)])
    assert state.amounts == (12_000_000,)


def test_stale_and_duplicate_readings_change_nothing() -> None:
    state, _ = run(CMA, every_5_min([2.5] * 20))
    last = T0 + 19 * STEP
    assert evaluate(CMA, state, last, 9.0) == (state, None)
    assert evaluate(CMA, state, last - 1, 9.0) == (state, None)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -0.5])
def test_nan_infinity_and_negative_rain_are_ignored(bad: float) -> None:
    state, _ = run(CMA, every_5_min([2.5] * 20))
    assert evaluate(CMA, state, T0 + HOUR * 2, bad) == (state, None)


def test_a_day_of_heavy_rain_keeps_the_state_under_4_kb() -> None:
    """Rain in every one of the 288 buckets of a 24 h window, with a cumulative counter."""
    rule = AccumulationRule(
        "flash_total", Mode.CUMULATIVE, FLASH.levels, on_delay_ms=HOUR, off_delay_ms=HOUR
    )
    counter, values = 12_345.678901, []
    for i in range(3 * 288):
        counter += 7.654321 + (i % 7) * 1.111111
        values.append(counter)
    state, events = run(rule, every_5_min(values))
    assert events and len(state.amounts) == MAX_BUCKETS
    size = len(json.dumps(state.to_dict()))
    assert size <= 4096, f"{size} bytes"
    assert len(json.dumps(engine.state_to_dict({"flash_total": state}))) <= 4096


def test_the_rule_follows_the_protocol_and_the_engine() -> None:
    assert CMA.kind == "accumulation"
    state = CMA.initial()
    assert CMA.tick(state, T0) == (state, None)
    sensor: dict[str, object] = {}
    events: list[RuleEvent] = []
    for ts, v in every_5_min([2.5] * 20):
        sensor, new = engine.evaluate_sensor([CMA], sensor, ts, v)
        events += new
    assert changes(events) == [(Change.RAISED, Level.ORANGE)]
    data = json.loads(json.dumps(engine.state_to_dict(sensor)))
    assert engine.state_from_dict([CMA], data) == sensor


def test_state_round_trips_through_json() -> None:
    rule = AccumulationRule("rain_total", Mode.CUMULATIVE, CMA.levels, on_delay_ms=HOUR)
    state, _ = run(rule, every_5_min([100.0 + 2.6 * i for i in range(25)]))
    assert state.latch.pending and state.amounts and state.last_value is not None
    data = json.loads(json.dumps(state.to_dict()))
    assert rule.state_from_dict(data) == state


def test_levels_and_windows_are_sorted_and_mode_may_be_given_as_text() -> None:
    rule = AccumulationRule("r", "cumulative", tuple(reversed(FLASH.levels)))  # type: ignore[arg-type]
    assert rule.mode is Mode.CUMULATIVE
    assert [lw.level for lw in rule.levels] == [Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED]
    shuffled = AccumulationRule(
        "r",
        Mode.INTERVAL,
        (
            LevelWindows(
                Level.RED, "", (WindowSetpoint(6 * HOUR, 9, 8), WindowSetpoint(HOUR, 5, 4))
            ),
        ),
    )
    assert [w.window_ms for w in shuffled.levels[0].windows] == [HOUR, 6 * HOUR]


def one(level: Level, *windows: WindowSetpoint) -> LevelWindows:
    return LevelWindows(level, level.zh, windows)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"levels": ()}, "an accumulation rule needs at least one level"),
        ({"levels": (one(Level.RED),)}, "red needs at least one window"),
        (
            {"levels": (one(Level.RED, WindowSetpoint(HOUR + MIN, 50, 40)),)},
            "red window of 3660000 ms is not a whole number of 5 min buckets",
        ),
        ({"levels": (one(Level.RED, WindowSetpoint(0, 50, 40)),)}, "longer than zero"),
        (
            {"levels": (one(Level.RED, WindowSetpoint(48 * HOUR, 50, 40)),)},
            "window 48 h spans more than 288 buckets of 5 min; use longer buckets",
        ),
        (
            {"levels": (one(Level.RED, WindowSetpoint(HOUR, 50, 55)),)},
            "clear set-point 55 in 1 h must be above zero and not above its set-point 50",
        ),
        ({"levels": (one(Level.RED, WindowSetpoint(HOUR, 50, 0)),)}, "above zero"),
        ({"levels": (one(Level.RED, WindowSetpoint(HOUR, 0, 0)),)}, "must be above zero"),
        ({"levels": (one(Level.RED, WindowSetpoint(HOUR, math.inf, 1)),)}, "finite"),
        (
            {"levels": (one(Level.RED, WindowSetpoint(HOUR, 5, 4), WindowSetpoint(HOUR, 6, 5)),)},
            "lists the same window twice",
        ),
        (
            {
                "levels": (
                    one(Level.RED, WindowSetpoint(HOUR, 50, 40)),
                    one(Level.RED, WindowSetpoint(3 * HOUR, 80, 70)),
                )
            },
            "each level may appear only once",
        ),
        (
            {
                "levels": (
                    one(Level.ORANGE, WindowSetpoint(HOUR, 50, 40)),
                    one(Level.RED, WindowSetpoint(HOUR, 50, 40)),
                )
            },
            "red set-point 50 in 1 h must be above orange set-point 50 in the same window",
        ),
        ({"mode": "weekly"}, "mode must be 'interval' or 'cumulative'"),
        ({"counter_max": 100.0}, "counter_max applies only to a cumulative gauge"),
        ({"mode": Mode.CUMULATIVE, "counter_max": 0.0}, "counter_max must be a number above"),
        ({"bucket_ms": 0}, "bucket_ms must be longer than zero"),
        ({"on_delay_ms": -1}, "must not be negative"),
    ],
)
def test_invalid_rules_are_refused_in_plain_words(kwargs: dict[str, object], words: str) -> None:
    args: dict[str, object] = {
        "rule_id": "r",
        "mode": Mode.INTERVAL,
        "levels": (one(Level.RED, WindowSetpoint(HOUR, 50, 40)),),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=words):
        AccumulationRule(**args)  # type: ignore[arg-type]


DELAYED = AccumulationRule(
    "delayed",
    Mode.INTERVAL,
    (
        one(Level.YELLOW, WindowSetpoint(15 * MIN, 3, 2), WindowSetpoint(HOUR, 6, 4)),
        one(Level.RED, WindowSetpoint(15 * MIN, 5, 4), WindowSetpoint(HOUR, 9, 7)),
    ),
    on_delay_ms=5 * MIN,
    off_delay_ms=10 * MIN,
)
COUNTER = AccumulationRule("counter", Mode.CUMULATIVE, DELAYED.levels, counter_max=50.0)
tips = st.lists(
    st.tuples(
        st.integers(min_value=-2 * MIN, max_value=40 * MIN),  # ≤ 0: duplicate or late
        st.one_of(st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.7]), st.just(math.nan)),
    ),
    max_size=80,
)


def readings_from(series: list[tuple[int, float]], *, counter: bool) -> list[tuple[int, float]]:
    """Cumulative timestamps (steps may go back); increments, or a counter wrapping at 50."""
    ts, total, out = T0, 0.0, []
    for dt, amount in series:
        ts += dt
        if not math.isnan(amount):
            total = round((total + amount) % 50.0, 6)
        out.append((ts, amount if math.isnan(amount) or not counter else total))
    return out


@pytest.mark.parametrize("rule", [DELAYED, COUNTER], ids=["interval", "cumulative"])
@given(series=tips, data=st.data())
def test_a_json_round_trip_mid_series_changes_nothing(
    rule: AccumulationRule, series: list[tuple[int, float]], data: st.DataObject
) -> None:
    readings = readings_from(series, counter=rule.mode is Mode.CUMULATIVE)
    split = data.draw(st.integers(min_value=0, max_value=len(readings)))
    whole_state, whole = run(rule, readings)
    state, first = run(rule, readings[:split])
    state = rule.state_from_dict(json.loads(json.dumps(state.to_dict())))
    end_state, rest = run(rule, readings[split:], state)
    assert first + rest == whole
    assert end_state == whole_state


@given(tips)
def test_sums_match_a_plain_recount_and_replays_add_nothing(
    series: list[tuple[int, float]],
) -> None:
    """Readings at most one bucket apart are never spread: each window's sum is then the rain
    of the readings in its buckets, recounted from scratch. (NaN is left out here: an ignored
    reading would let the time between counted readings grow past one bucket.)"""
    short = [(min(dt, STEP), amount) for dt, amount in series if not math.isnan(amount)]
    readings = readings_from(short, counter=False)
    state, _ = run(DELAYED, readings)
    accepted, newest = [], None
    for ts, v in readings:
        if (newest is None or ts > newest) and math.isfinite(v):
            accepted.append((ts, v))
            newest = ts
    if newest is not None:
        bucket = newest // STEP
        for window_ms, total in DELAYED.sums(state).items():
            first = bucket - window_ms // STEP + 1
            expected = sum(v for ts, v in accepted if ts // STEP >= first)
            assert total == pytest.approx(expected, abs=1e-9)
    _, again = run(DELAYED, readings, state)
    assert again == []


@given(st.lists(st.integers(0, 2**40), max_size=300))
def test_packed_bucket_sums_round_trip(amounts: list[int]) -> None:
    assert unpack_amounts(pack_amounts(tuple(amounts))) == tuple(amounts)


def test_states_written_as_plain_lists_still_load() -> None:
    old = {
        "latch": {"level": 0, "start_ms": None, "last_ts_ms": 5, "pending": [], "release_ms": None},
        "amounts": [100, 0, 250],
        "last_value": None,
    }
    state = AccumulationState.from_dict(old)
    assert state.amounts == (100, 0, 250)
    assert AccumulationState.from_dict(state.to_dict()) == state
