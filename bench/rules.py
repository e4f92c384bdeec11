"""Rules-engine benchmark: readings/s of the fleet engine (streaming micro-batches and batch)
against the reference reading-by-reading engine over a fleet of sensors with mixed rules, and
bytes of rule state per sensor.

A benchmark that prints figures; it asserts nothing about speed.

The issue's targets, printed next to the figures: batch >= 1,000,000 readings/s on one core;
streaming >= 100,000 readings/s; <= 4 KB of state per sensor with a 24 h rain window.
Everything runs in this one process, on one core, calling the pure engines directly
(:mod:`rules.engine`, :mod:`rules.fleet`, :mod:`rules.batch`): no MQTT, no registry, no alarm
messages, no I/O. Times are wall clock (``time.perf_counter``); the cyclic GC stays on,
collected before each path.

What it measures
----------------
All three paths take the same measured input: the readings of all sensors interleaved in time
order, with every sensor ticked (offline detection) at every whole simulated second, before
the readings stamped at or after that second (as ``earlywarn backtest`` orders them).
Reported for each: readings/s of the evaluations alone, the ticks (sensor-ticks/s, and ms of
CPU to tick the whole fleet once per simulated second), readings/s with the ticks included,
and the speed-up over the reference.

1. **Reference.** One reading at a time through ``engine.evaluate_sensor`` with that sensor's
   state; ``engine.tick_sensor`` for every sensor at each tick. The baseline, and the source of
   truth for the identity checks.
2. **Streaming.** A :class:`rules.fleet.FleetEngine` (default lanes: whatever
   :func:`rules.fleet.default_lanes` offers when it runs) with every sensor's rules and starting
   state, fed micro-batches of at most ``--batch`` readings (500 by default: what arrives in
   5 ms at 100,000 readings/s, as the earlywarn runner hands them over), a batch never
   straddling a tick; ``FleetEngine.tick`` at each whole simulated second (timed as the ticks).
   Building the engine is timed apart and is in no rate.
3. **Batch.** The whole recording in one ``FleetEngine.replay`` call with a tick at each whole
   simulated second: every lane but the clock kinds' takes all readings at once, offline goes
   from tick to tick inside the call. Its ticks cannot be timed apart, so the same replay
   without ticks runs on a fresh engine and the difference is reported as the ticks' time.

   Identity: the reference against streaming and against batch: the count and a SHA-256 of the
   sorted (sensor, rule, ts, level, change) of the events (and whether they come in the same
   order), and whether ``FleetEngine.state(s)`` equals the reference's final state of every
   sensor; "identical: yes/no". When not identical, a summary per rule kind: events in each
   path, events not in both, and (sensor, rule) states that differ.
4. **Placement.** ``FleetEngine.placement()``: how many (sensor, rule) instances of each rule
   kind a numpy lane evaluates, and how many the object lane (the reference code, reading by
   reading) does.
5. **Batch-size sweep.** The streaming path over the first ``--sweep-readings`` readings
   (100,000; ``--quick`` 20,000) with batches of at most 10, 50, 200, 500 and 2,000 readings,
   a fresh engine each: readings/s of the evaluations alone and with the ticks, next to the
   reference over the same readings; each run checked against the reference's events and
   states at that point. It shows from which batch size the columns pay.
6. **Recorded histories.** Each profile's long history (gas 1 h of 1 s readings, tank 1 h of
   10 s, water level 6 h of 1 min, rain 24 h of 5 min; see below) from an empty state, readings
   only: reading by reading through ``evaluate_sensor`` and in one
   ``rules.batch.evaluate_history`` call (the fleet engine with one sensor), with the speed-up
   and whether both give the same events and state.
7. **State size.** Bytes of ``json.dumps(engine.state_to_dict(state))`` per sensor after the
   reference run: mean, p99 and max per sensor kind (and the max with compact separators); and,
   against the 4 KB target, a rain gauge that had rain in every 5-minute bucket of the last
   24 h (both accumulation windows full, light and heavy rain: the bucket sums are integers of
   micro-mm, so the bytes grow with the digits), with its bytes per rule.
8. ``--profile``: cProfile of the streaming path (batches of ``--batch``) over the first
   200,000 readings and their ticks, engine construction excluded; the top 10 functions by
   tottime.

The fleet
---------
Sensor ``i`` is of kind ``KIND_CYCLE[i % 10]``: 40 % combustible gas, 20 % tank level, 20 %
rain gauges, 20 % river water level. Rule objects are built directly (no registry), with the
presets' and the example registry's set-points:

- gas (every 1 s): threshold orange 25 / red 50 %LEL (clear 5 below), offline (3 × 1 s),
  out_of_range 0-100 (+ sentinel -9999, fault quality 7), spike (median/MAD of 30 readings);
- tank level (10 s): threshold H 16.5 / HH 17.5 m, threshold L 1.5 / LL 1.0 m, rate of rise
  over 10 min (yellow 2, orange 3 m/h), offline, out_of_range 0-20 m;
- rain gauge (5 min, rain per interval): accumulation CMA rainstorm signals (3/6/12 h) and
  flash-flood critical rainfall (1/3/6/24 h; the example county's table scaled ±20 % per
  watershed), 5-minute buckets, offline, out_of_range 0-300 mm;
- water level (1 min): threshold 设防/警戒/加强戒备/保证 (4 levels), rate of rise over 1 h,
  projection to 警戒水位 over 1 h, offline, out_of_range.

Data are deterministic (``--seed``). Each kind has 16 *profiles*: set-points and a recorded
history (calm, rising, filling and emptying, dry, drizzling, stormy, a gauge dead for 40 min).
The histories go through the engine before the measured input, and every sensor of a profile
starts from the resulting state (states are immutable values, so they can be shared), then
continues its profile's signal with its own random numbers: rain windows are full and trends
under way when the measured input starts at ``T_LIVE``. The measured input is the first
``--readings`` readings from there: gas noise around a background with rare glitches, leak
episodes, fault codes and dropouts; tanks filling and emptying; rivers rising; storms going on.
It alarms now and then (several hundred events per million readings).

``.venv/bin/python bench/rules.py --quick`` takes about 40 s; the default run about 2 minutes
on a 2-core machine, most of it the reference path (``--profile`` adds about half a minute).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import hashlib
import io
import json
import math
import os
import platform
import pstats
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is bench/rules.py: with bench/ on sys.path, ``import rules`` would find this file
# instead of the rules package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from rules import engine  # noqa: E402
from rules.accumulation import AccumulationRule, LevelWindows, Mode, WindowSetpoint  # noqa: E402
from rules.base import Rule  # noqa: E402
from rules.batch import evaluate_history  # noqa: E402
from rules.events import RuleEvent  # noqa: E402
from rules.fleet import FleetEngine  # noqa: E402
from rules.lanes.columns import Floats, Ints  # noqa: E402
from rules.levels import Level  # noqa: E402
from rules.offline import OfflineRule  # noqa: E402
from rules.out_of_range import OutOfRangeRule  # noqa: E402
from rules.projection import ProjectionRule  # noqa: E402
from rules.rate import RateRule  # noqa: E402
from rules.spike import SpikeRule  # noqa: E402
from rules.threshold import Direction, Setpoint, ThresholdRule  # noqa: E402

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
T_LIVE = 1_752_537_600_000
"""2025-07-15 08:00 in UTC+8 (00:00 UTC): the measured input starts here; a whole second."""

TARGET_BATCH = 1_000_000
TARGET_STREAMING = 100_000
TARGET_STATE_BYTES = 4096
PROFILES = 16
PROFILE_READINGS = 200_000
"""Readings of the streaming path run under cProfile with ``--profile``."""
DEFAULT_BATCH = 500
"""Readings per micro-batch of the streaming path: what arrives in 5 ms at 100,000/s."""

KIND_CYCLE = ("gas", "gas", "gas", "gas", "tank", "tank", "rain", "rain", "water", "water")

FAULT_VALUE = -9999.0
FAULT_QUALITY = 7
GAS_NOISE = 0.3  # %LEL, standard deviation around the background
GAS_GLITCH = 1e-4  # per reading: a single high reading (spike)
GAS_EPISODE = 0.01  # per sensor: a leak episode during the live period
FAULT = 3e-5  # per reading: the sentinel value or a fault quality code
DROPOUT = 0.005  # per gas or tank sensor: a silence of 4-20 intervals during the live period

Rules = tuple[Rule, ...]
State = dict[str, Any]
EventKey = tuple[int, str, int, int, str, str]
"""sensor index, rule id, ts_ms, level (0 = cleared), change, rule kind."""


@dataclass(frozen=True, slots=True)
class KindSpec:
    """What a sensor kind reports and how long its profiles' histories are."""

    name: str
    interval_ms: int
    history_ms: int
    dropout: float
    rules: str


KINDS = {
    "gas": KindSpec(
        "combustible gas",
        SECOND_MS,
        HOUR_MS,
        DROPOUT,
        "threshold orange 25/red 50 %LEL, offline, out_of_range, spike",
    ),
    "tank": KindSpec(
        "tank level",
        10 * SECOND_MS,
        HOUR_MS,
        DROPOUT,
        "threshold H/HH, threshold L/LL, rate 10 min, offline, out_of_range",
    ),
    "rain": KindSpec(
        "rain gauge",
        5 * MINUTE_MS,
        24 * HOUR_MS,
        0.0,
        "accumulation CMA 3/6/12 h + flash flood 1/3/6/24 h (5-min buckets), offline, out_of_range",
    ),
    "water": KindSpec(
        "water level",
        MINUTE_MS,
        6 * HOUR_MS,
        0.0,
        "threshold 4 levels, rate 1 h, projection 1 h, offline, out_of_range",
    ),
}


def _record(out: list[EventKey], sensor: int, events: Sequence[RuleEvent]) -> None:
    """Append the events of ``sensor`` as :data:`EventKey`."""
    for e in events:
        level = 0 if e.level is None else int(e.level)
        out.append((sensor, e.rule_id, e.ts_ms, level, str(e.change), e.kind))


# --- signals -------------------------------------------------------------------------------


class Model(Protocol):
    """A sensor's signal: called with increasing timestamps, returns (value, quality)."""

    def reading(self, ts_ms: int) -> tuple[float, int]:
        """The reading at ``ts_ms``."""
        ...

    def live(self, rng: random.Random, start_ms: int, end_ms: int) -> Model:
        """A copy going on from here with its own random numbers (and live-only events)."""
        ...


def _fault(rng: random.Random, value: float) -> tuple[float, int] | None:
    u = rng.random()
    if u >= FAULT:
        return None
    return (FAULT_VALUE, 0) if u < FAULT / 2 else (value, FAULT_QUALITY)


@dataclass(slots=True)
class GasModel:
    """Noise around a background; rare glitches; an optional leak episode (ramp, hold, decay)."""

    rng: random.Random
    background: float
    episode: tuple[int, int, int, int, float] | None = None
    """start, end of ramp, end of hold, end, peak above the background (%LEL)."""

    def reading(self, ts_ms: int) -> tuple[float, int]:
        """See :class:`Model`."""
        rng = self.rng
        value = self.background + rng.gauss(0.0, GAS_NOISE)
        if self.episode is not None:
            start, ramp_end, hold_end, end, peak = self.episode
            if start <= ts_ms < ramp_end:
                value += peak * (ts_ms - start) / (ramp_end - start)
            elif ramp_end <= ts_ms < hold_end:
                value += peak
            elif hold_end <= ts_ms < end:
                value += peak * (end - ts_ms) / (end - hold_end)
        if rng.random() < GAS_GLITCH:
            value += rng.uniform(15.0, 35.0)
        value = round(max(value, 0.0), 1)
        return _fault(rng, value) or (value, 0)

    def live(self, rng: random.Random, start_ms: int, end_ms: int) -> GasModel:
        """See :class:`Model`; one sensor in 100 has a leak episode."""
        episode = None
        if rng.random() < GAS_EPISODE:
            begin = rng.randrange(start_ms, end_ms)
            ramp = begin + rng.randrange(5_000, 40_000)
            hold = ramp + rng.randrange(5_000, 60_000)
            end = hold + rng.randrange(10_000, 60_000)
            episode = (begin, ramp, hold, end, rng.uniform(20.0, 80.0))
        return GasModel(rng, self.background, episode)


@dataclass(slots=True)
class TrendModel:
    """A level moving at ``trend`` units per hour between ``low`` and ``high``, with noise.

    At a bound the trend turns round (a tank's pump stops and the outflow takes over); rivers
    simply stop there.
    """

    rng: random.Random
    level: float
    trend: float
    low: float
    high: float
    noise: float
    digits: int
    bounce: bool
    last_ts: int | None = None

    def reading(self, ts_ms: int) -> tuple[float, int]:
        """See :class:`Model`."""
        if self.last_ts is not None:
            self.level += self.trend * (ts_ms - self.last_ts) / HOUR_MS
            if (self.level >= self.high and self.trend > 0) or (
                self.level <= self.low and self.trend < 0
            ):
                self.trend = -self.trend if self.bounce else 0.0
        self.last_ts = ts_ms
        value = round(self.level + self.rng.gauss(0.0, self.noise), self.digits)
        return _fault(self.rng, value) or (value, 0)

    def live(self, rng: random.Random, start_ms: int, end_ms: int) -> TrendModel:
        """See :class:`Model`; the trend varies by ±25 % from sensor to sensor."""
        return dataclasses.replace(self, rng=rng, trend=self.trend * rng.uniform(0.75, 1.25))


@dataclass(slots=True)
class RainModel:
    """Rain per 5-minute interval: drizzle plus storms, each a (start, end, mean mm) span."""

    rng: random.Random
    drizzle: float
    storms: tuple[tuple[int, int, float], ...]

    def reading(self, ts_ms: int) -> tuple[float, int]:
        """See :class:`Model`."""
        mean = self.drizzle + sum(m for s, e, m in self.storms if s <= ts_ms < e)
        value = round(mean * self.rng.uniform(0.3, 1.7), 1) if mean > 0 else 0.0
        return _fault(self.rng, value) or (value, 0)

    def live(self, rng: random.Random, start_ms: int, end_ms: int) -> RainModel:
        """See :class:`Model`; storms under way go on."""
        return RainModel(rng, self.drizzle, self.storms)


def generate(
    model: Model,
    rng: random.Random,
    interval_ms: int,
    start_ms: int,
    end_ms: int,
    gap: tuple[int, int] | None = None,
) -> tuple[list[int], list[float], list[int]]:
    """Readings every ``interval_ms`` from a random phase, with up to 50 ms of jitter."""
    jitter = min(50, interval_ms // 10)
    out_ts: list[int] = []
    values: list[float] = []
    qualities: list[int] = []
    t = start_ms + rng.randrange(interval_ms)
    while t < end_ms:
        ts = t + rng.randrange(jitter)
        t += interval_ms
        if gap is not None and gap[0] <= ts < gap[1]:
            continue
        value, quality = model.reading(ts)
        out_ts.append(ts)
        values.append(value)
        qualities.append(quality)
    return out_ts, values, qualities


# --- rules and profiles --------------------------------------------------------------------


def _sp(level: Level, set_: float, clear: float, label: str = "") -> Setpoint:
    return Setpoint(level, set_, clear, label)


GAS_RULES: Rules = (
    ThresholdRule(
        "combustible_gas",
        Direction.HIGH,
        (_sp(Level.ORANGE, 25.0, 20.0, "一级报警"), _sp(Level.RED, 50.0, 45.0, "二级报警")),
    ),
    OfflineRule("offline", interval_ms=SECOND_MS),
    OutOfRangeRule("range", 0.0, 100.0, fault_values=(FAULT_VALUE,), fault_qualities=(7,)),
    SpikeRule("spike", window_points=30, k=6.0, min_points=10, min_scale=1.0),
)

TANK_RULES: Rules = (
    ThresholdRule(
        "tank_level_high",
        Direction.HIGH,
        (_sp(Level.ORANGE, 16.5, 16.45, "高限"), _sp(Level.RED, 17.5, 17.45, "高高限")),
    ),
    ThresholdRule(
        "tank_level_low",
        Direction.LOW,
        (_sp(Level.ORANGE, 1.5, 1.55, "低限"), _sp(Level.RED, 1.0, 1.05, "低低限")),
    ),
    RateRule(
        "tank_level_rate",
        Direction.HIGH,
        (_sp(Level.YELLOW, 2.0, 1.8, "涨率预警"), _sp(Level.ORANGE, 3.0, 2.8, "涨率警报")),
        window_ms=10 * MINUTE_MS,
        min_points=4,
    ),
    OfflineRule("offline", interval_ms=10 * SECOND_MS),
    OutOfRangeRule("range", 0.0, 20.0, fault_values=(FAULT_VALUE,), fault_qualities=(7,)),
)


def _windows(
    level: Level, label: str, windows: Sequence[tuple[int, float]], scale: float = 1.0
) -> LevelWindows:
    return LevelWindows(
        level,
        label,
        tuple(
            WindowSetpoint(hours * HOUR_MS, round(mm * scale), round(mm * scale) - 5.0)
            for hours, mm in windows
        ),
    )


CMA_RULE = AccumulationRule(
    "rainstorm_cma",
    Mode.INTERVAL,
    (
        _windows(Level.BLUE, "暴雨蓝色预警", [(12, 50)]),
        _windows(Level.YELLOW, "暴雨黄色预警", [(6, 50)]),
        _windows(Level.ORANGE, "暴雨橙色预警", [(3, 50)]),
        _windows(Level.RED, "暴雨红色预警", [(3, 100)]),
    ),
)

FLASH_FLOOD = (
    (Level.BLUE, "山洪蓝色预警", ((1, 35), (3, 55), (6, 70), (24, 100))),
    (Level.YELLOW, "山洪黄色预警", ((1, 45), (3, 75), (6, 95), (24, 130))),
    (Level.ORANGE, "山洪橙色预警", ((1, 60), (3, 100), (6, 120), (24, 160))),
    (Level.RED, "山洪红色预警", ((1, 80), (3, 120), (6, 150), (24, 200))),
)
"""The example county's critical rainfall (mm over 1/3/6/24 h), see examples/registry."""


def rain_rules(scale: float) -> Rules:
    """CMA signals and the flash-flood table scaled for a watershed."""
    flash_flood = AccumulationRule(
        "flash_flood",
        Mode.INTERVAL,
        tuple(_windows(level, label, ws, scale) for level, label, ws in FLASH_FLOOD),
    )
    return (
        CMA_RULE,
        flash_flood,
        OfflineRule("offline", interval_ms=5 * MINUTE_MS),
        OutOfRangeRule("range", 0.0, 300.0, fault_values=(FAULT_VALUE,), fault_qualities=(7,)),
    )


def water_rules(zero: float) -> Rules:
    """Set-points of one river gauge, relative to its local datum ``zero`` (m)."""
    marks = (
        (Level.BLUE, 2.0, "设防水位"),
        (Level.YELLOW, 3.5, "警戒水位"),
        (Level.ORANGE, 4.5, "加强戒备水位"),
        (Level.RED, 5.8, "保证水位"),
    )
    warning = round(zero + 3.5, 2)
    return (
        ThresholdRule(
            "water_level",
            Direction.HIGH,
            tuple(
                _sp(lv, round(zero + h, 2), round(zero + h - 0.05, 2), lb) for lv, h, lb in marks
            ),
        ),
        RateRule(
            "water_level_rise",
            Direction.HIGH,
            (_sp(Level.YELLOW, 0.3, 0.25, "涨率预警"), _sp(Level.ORANGE, 0.5, 0.45, "涨率警报")),
            window_ms=HOUR_MS,
            min_points=4,
        ),
        ProjectionRule(
            "water_level_projection",
            warning,
            "警戒水位",
            Direction.HIGH,
            (
                _sp(Level.YELLOW, 120.0, 135.0, "提前预警"),
                _sp(Level.ORANGE, 60.0, 75.0, "临近预警"),
                _sp(Level.RED, 30.0, 45.0, "紧急预警"),
            ),
            window_ms=HOUR_MS,
            min_points=4,
        ),
        OfflineRule("offline", interval_ms=MINUTE_MS),
        OutOfRangeRule(
            "range", round(zero - 5.0, 2), round(zero + 10.0, 2), fault_values=(FAULT_VALUE,)
        ),
    )


@dataclass(frozen=True, slots=True)
class Profile:
    """Set-points, the state after the recorded history, and the signal going on from there."""

    rules: Rules
    state: State
    model: Model
    ts: list[int]
    values: list[float]
    qualities: list[int]
    loop_s: float
    """Time the history took through ``evaluate_sensor``, reading by reading."""
    events: list[EventKey]
    dead: bool = False
    """A gauge that stopped reporting before the live period (rain profile 5)."""


def _profile_model(kind: str, p: int, rng: random.Random) -> tuple[Rules, Model, int]:
    """Rules, signal and end of history (ms) of profile ``p`` of ``kind``."""
    if kind == "gas":
        return GAS_RULES, GasModel(rng, rng.choice((0.0, 0.5, 1.0, 2.0, 3.0, 5.0))), T_LIVE
    if kind == "tank":
        flow = (0.0, 0.0, 0.0, 0.6, -0.8, 1.2, -1.5, 2.4, 3.2, -2.2)[p % 10]
        start = rng.uniform(1.5, 17.0) - flow  # after the hour of history it is about here
        model = TrendModel(rng, start, flow, 0.6, 19.4, 0.003, 3, bounce=True)
        return TANK_RULES, model, T_LIVE
    if kind == "water":
        zero = round(rng.uniform(95.0, 105.0), 2)
        trend = (0.0, 0.0, 0.02, -0.05, 0.15, 0.35, 0.6, -0.2)[p % 8]
        start = zero + rng.uniform(0.0, 2.5) - trend * 4
        model = TrendModel(rng, start, trend, zero - 3.0, zero + 7.0, 0.005, 2, bounce=False)
        return water_rules(zero), model, T_LIVE
    scale = rng.uniform(0.8, 1.2)
    day = T_LIVE - 24 * HOUR_MS
    storms: tuple[tuple[int, int, float], ...] = ()
    drizzle = 0.0
    if p % 4 == 1:  # steady light rain all day
        drizzle = rng.uniform(0.2, 0.6)
    elif p % 4 == 2:  # a storm of 2-6 h somewhere in the day, maybe still going on
        start = day + rng.randrange(12 * HOUR_MS, 23 * HOUR_MS)
        storms = ((start, start + rng.randrange(2 * HOUR_MS, 6 * HOUR_MS), rng.uniform(2, 7)),)
    elif p % 4 == 3:  # continuous rain for 24 h and on
        drizzle = rng.uniform(0.3, 1.5)
    end = T_LIVE - 40 * MINUTE_MS if p == 5 else T_LIVE
    return rain_rules(scale), RainModel(rng, drizzle, storms), end


def build_profiles(kind: str, seed: int) -> list[Profile]:
    """Profiles of ``kind``: each history through ``evaluate_sensor`` reading by reading
    (readings only, no ticks), timed."""
    spec = KINDS[kind]
    out = []
    for p in range(PROFILES):
        rng = random.Random(f"{seed}/profile/{kind}/{p}")
        rules, model, end = _profile_model(kind, p, rng)
        ts, values, qualities = generate(
            model, rng, spec.interval_ms, T_LIVE - spec.history_ms, end
        )
        state: State = {}
        events: list[EventKey] = []
        started = time.perf_counter()
        for t, v, q in zip(ts, values, qualities, strict=True):
            state, ev = engine.evaluate_sensor(rules, state, t, v, q)
            if ev:
                _record(events, p, ev)
        loop_s = time.perf_counter() - started
        profile = Profile(rules, state, model, ts, values, qualities, loop_s, events, end < T_LIVE)
        out.append(profile)
    return out


@dataclass(slots=True)
class HistoryTiming:
    """The profiles' recorded histories of one kind: reading by reading and in one call."""

    profiles: int = 0
    readings: int = 0
    loop_s: float = 0.0
    history_s: float = 0.0
    identical: bool = True


def run_histories(profiles: dict[str, list[Profile]]) -> dict[str, HistoryTiming]:
    """Each profile's recorded history again, through ``evaluate_history`` in one call."""
    out = {}
    gc.collect()
    for kind, kind_profiles in profiles.items():
        timing = HistoryTiming()
        for p, profile in enumerate(kind_profiles):
            started = time.perf_counter()
            state, ev = evaluate_history(
                profile.rules, {}, profile.ts, profile.values, profile.qualities
            )
            timing.history_s += time.perf_counter() - started
            events: list[EventKey] = []
            _record(events, p, ev)
            timing.identical &= state == profile.state and events == profile.events
            timing.profiles += 1
            timing.readings += len(profile.ts)
            timing.loop_s += profile.loop_s
        out[kind] = timing
    return out


# --- the fleet and the measured input ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fleet:
    """Per sensor: kind, rules and starting state; and the history behind the states."""

    kinds: list[str]
    rules: list[Rules]
    initial: list[State]
    profiles: dict[str, list[Profile]]


@dataclass(frozen=True, slots=True)
class Readings:
    """Readings in time order (ties in sensor order), as parallel lists."""

    ts: list[int]
    sensor: list[int]
    value: list[float]
    quality: list[int]

    def head(self, n: int) -> Readings:
        """The first ``n`` readings."""
        return Readings(self.ts[:n], self.sensor[:n], self.value[:n], self.quality[:n])


@dataclass(frozen=True, slots=True)
class Columns:
    """The same readings as numpy columns, as :meth:`FleetEngine.evaluate` takes them."""

    ts: Ints
    sensor: Ints
    value: Floats
    quality: Ints

    def head(self, n: int) -> Columns:
        """The first ``n`` readings (views)."""
        return Columns(self.ts[:n], self.sensor[:n], self.value[:n], self.quality[:n])


@dataclass(frozen=True, slots=True)
class LiveInput:
    """The measured input in time order: as lists (reference path) and as columns."""

    stream: Readings
    columns: Columns
    last_tick_ms: int

    @property
    def ticks(self) -> int:
        """Whole simulated seconds ticked, from ``T_LIVE`` to ``last_tick_ms``."""
        return (self.last_tick_ms - T_LIVE) // SECOND_MS + 1


def build(sensors: int, readings: int, seed: int) -> tuple[Fleet, LiveInput]:
    """The fleet with its starting states, and the first ``readings`` of the live period."""
    profiles = {kind: build_profiles(kind, seed) for kind in KINDS}
    kinds = [KIND_CYCLE[i % len(KIND_CYCLE)] for i in range(sensors)]
    per_ms = sum(1 / KINDS[k].interval_ms for k in kinds)
    span_ms = math.ceil(readings / per_ms * 1.02 / SECOND_MS + 2) * SECOND_MS
    end = T_LIVE + span_ms
    rules: list[Rules] = []
    initial: list[State] = []
    ts_all: list[int] = []
    sensor_all: list[int] = []
    value_all: list[float] = []
    quality_all: list[int] = []
    for i, kind in enumerate(kinds):
        spec = KINDS[kind]
        profile = profiles[kind][(i // len(KIND_CYCLE)) % PROFILES]
        rules.append(profile.rules)
        initial.append(profile.state)
        if profile.dead:
            continue
        rng = random.Random(f"{seed}/sensor/{i}")
        model = profile.model.live(rng, T_LIVE, end)
        gap = None
        if rng.random() < spec.dropout:
            start = rng.randrange(T_LIVE, end)
            gap = (start, start + spec.interval_ms * rng.randrange(4, 20))
        ts, values, qualities = generate(model, rng, spec.interval_ms, T_LIVE, end, gap)
        ts_all += ts
        sensor_all += [i] * len(ts)
        value_all += values
        quality_all += qualities
    order = np.argsort(np.array(ts_all, dtype=np.int64), kind="stable")[:readings]
    columns = Columns(
        np.array(ts_all, dtype=np.int64)[order],
        np.array(sensor_all, dtype=np.int64)[order],
        np.array(value_all, dtype=np.float64)[order],
        np.array(quality_all, dtype=np.int64)[order],
    )
    stream = Readings(
        columns.ts.tolist(),
        columns.sensor.tolist(),
        columns.value.tolist(),
        columns.quality.tolist(),
    )
    last_tick = T_LIVE + (stream.ts[-1] - T_LIVE) // SECOND_MS * SECOND_MS
    fleet = Fleet(kinds, rules, initial, profiles)
    return fleet, LiveInput(stream, columns, last_tick)


# --- the paths -----------------------------------------------------------------------------


@dataclass(slots=True)
class PathResult:
    """What one path did and how long it took."""

    name: str
    readings: int
    total_s: float
    tick_s: float
    sensor_ticks: int
    events: list[EventKey]
    states: list[State]
    build_s: float = 0.0
    """Time to build the fleet engine (not in any rate)."""
    batches: int = 0
    """Calls of :meth:`FleetEngine.evaluate` (0: the reference path)."""
    placement: dict[str, int] = dataclasses.field(default_factory=dict)
    """:meth:`FleetEngine.placement` (empty: the reference path)."""
    note: str = ""

    @property
    def eval_s(self) -> float:
        """Time spent on readings (the total less the ticks)."""
        return self.total_s - self.tick_s

    @property
    def rate(self) -> float:
        """Readings/s of the evaluations alone."""
        return self.readings / self.eval_s if self.eval_s > 0 else math.inf

    @property
    def rate_with_ticks(self) -> float:
        """Readings/s with the ticks included."""
        return self.readings / self.total_s if self.total_s > 0 else math.inf

    @property
    def tick_rate(self) -> float:
        """Sensor-ticks/s."""
        return self.sensor_ticks / self.tick_s if self.tick_s > 0 else math.inf


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The reference path's states, events and times just before a given reading."""

    readings: int
    states: list[State]
    events: list[EventKey]
    total_s: float
    tick_s: float


def run_reference(
    fleet: Fleet, stream: Readings, snapshot_at: int | None = None
) -> tuple[PathResult, Snapshot | None]:
    """One reading at a time in time order through ``engine.evaluate_sensor``; every sensor
    ticked (``engine.tick_sensor``) at each whole second.

    With ``snapshot_at``, also the states, events and times as they were before that reading
    (and before the ticks it brings on): what a run of only the first ``snapshot_at`` readings
    gives.
    """
    states = list(fleet.initial)
    rules = fleet.rules
    events: list[EventKey] = []
    evaluate, tick = engine.evaluate_sensor, engine.tick_sensor
    n_sensors = len(states)
    next_tick = T_LIVE
    tick_s = 0.0
    ticks = 0
    snapshot: Snapshot | None = None
    gc.collect()
    started = time.perf_counter()
    for i, (ts, sensor, value, quality) in enumerate(
        zip(stream.ts, stream.sensor, stream.value, stream.quality, strict=True)
    ):
        if i == snapshot_at:
            paused = time.perf_counter()
            snapshot = Snapshot(i, list(states), list(events), paused - started, tick_s)
            started += time.perf_counter() - paused  # the copies are not timed
        if ts >= next_tick:
            t0 = time.perf_counter()
            while ts >= next_tick:
                for s in range(n_sensors):
                    states[s], ev = tick(rules[s], states[s], next_tick)
                    if ev:
                        _record(events, s, ev)
                ticks += 1
                next_tick += SECOND_MS
            tick_s += time.perf_counter() - t0
        states[sensor], ev = evaluate(rules[sensor], states[sensor], ts, value, quality)
        if ev:
            _record(events, sensor, ev)
    total = time.perf_counter() - started
    n = len(stream.ts)
    if snapshot is None and snapshot_at is not None:
        snapshot = Snapshot(n, list(states), list(events), total, tick_s)
    note = "engine.evaluate_sensor reading by reading, engine.tick_sensor per sensor"
    result = PathResult("reference", n, total, tick_s, ticks * n_sensors, events, states, note=note)
    return result, snapshot


def build_engine(fleet: Fleet) -> tuple[FleetEngine, float]:
    """A :class:`FleetEngine` with the default lanes, every sensor's rules and starting
    state added; and the seconds it took."""
    gc.collect()
    started = time.perf_counter()
    fleet_engine = FleetEngine()
    for rules, state in zip(fleet.rules, fleet.initial, strict=True):
        fleet_engine.add(rules, state)
    fleet_engine.settle()  # the one-off layout adding defers: part of building, not of rates
    return fleet_engine, time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class Fed:
    """Times, counts and events of :func:`feed`."""

    total_s: float
    tick_s: float
    ticks: int
    batches: int
    events: list[EventKey]


def feed(fleet_engine: FleetEngine, columns: Columns, batch: int | None) -> Fed:
    """The readings in time order through ``fleet_engine.evaluate``, ``batch`` at a time
    (``None``: one call per simulated second), a batch never straddling a whole second;
    ``fleet_engine.tick`` at each whole simulated second before the readings stamped at or
    after it."""
    ts, sensor, value, quality = columns.ts, columns.sensor, columns.value, columns.quality
    n_ticks = int(ts[-1] - T_LIVE) // SECOND_MS + 1 if len(ts) else 0
    # Reading positions where each simulated second starts: the plan, made before timing.
    bounds = np.searchsorted(
        ts, T_LIVE + SECOND_MS * np.arange(n_ticks + 1, dtype=np.int64), side="left"
    ).tolist()
    events: list[EventKey] = []
    append = events.append
    perf = time.perf_counter
    tick_s = 0.0
    batches = 0
    gc.collect()
    started = perf()
    for k in range(n_ticks):
        t0 = perf()
        for s, e in fleet_engine.tick(T_LIVE + k * SECOND_MS):
            level = 0 if e.level is None else int(e.level)
            append((s, e.rule_id, e.ts_ms, level, str(e.change), e.kind))
        tick_s += perf() - t0
        a, b = bounds[k], bounds[k + 1]
        step = max(b - a, 1) if batch is None else batch
        for start in range(a, b, step):
            end = min(start + step, b)
            found = fleet_engine.evaluate(
                sensor[start:end], ts[start:end], value[start:end], quality[start:end]
            )
            batches += 1
            for _r, s, e in found:
                level = 0 if e.level is None else int(e.level)
                append((s, e.rule_id, e.ts_ms, level, str(e.change), e.kind))
    total = perf() - started
    return Fed(total, tick_s, n_ticks, batches, events)


def replay(fleet_engine: FleetEngine, columns: Columns, *, ticks: bool) -> Fed:
    """The whole recording in one ``fleet_engine.replay`` call, with a tick at each whole
    simulated second (or none: readings only)."""
    ts = columns.ts
    n_ticks = int(ts[-1] - T_LIVE) // SECOND_MS + 1 if len(ts) and ticks else 0
    times = T_LIVE + SECOND_MS * np.arange(n_ticks, dtype=np.int64)
    gc.collect()
    started = time.perf_counter()
    found = fleet_engine.replay(columns.sensor, ts, columns.value, columns.quality, times)
    total = time.perf_counter() - started
    events: list[EventKey] = []
    _record_pairs(events, found)
    return Fed(total, 0.0, n_ticks, 1, events)


def _record_pairs(out: list[EventKey], found: Sequence[tuple[int, RuleEvent]]) -> None:
    for s, e in found:
        level = 0 if e.level is None else int(e.level)
        out.append((s, e.rule_id, e.ts_ms, level, str(e.change), e.kind))


def run_fleet(name: str, fleet: Fleet, columns: Columns, batch: int | None) -> PathResult:
    """A fresh fleet engine fed ``columns`` (see :func:`feed`; ``batch`` None: the whole
    recording through :func:`replay`); final states read back."""
    fleet_engine, build_s = build_engine(fleet)
    if batch is None:
        fed = replay(fleet_engine, columns, ticks=True)
        # replay cannot time its ticks apart: the same recording without ticks, on a fresh
        # engine, gives the evaluations alone; the difference is the ticks.
        bare_engine, _ = build_engine(fleet)
        bare = replay(bare_engine, columns, ticks=False)
        fed = Fed(fed.total_s, max(fed.total_s - bare.total_s, 0.0), fed.ticks, 1, fed.events)
    else:
        fed = feed(fleet_engine, columns, batch)
    n_sensors = len(fleet.rules)
    states = [fleet_engine.state(s) for s in range(n_sensors)]
    n = len(columns.ts)
    if batch is None:
        note = (
            "the whole recording in one FleetEngine.replay call (clock lanes go tick by tick "
            "inside it); ticks s = its time less that of the same replay without ticks"
        )
    else:
        note = (
            f"{fed.batches:,} evaluate calls of at most {batch:,} readings "
            f"({n / max(fed.batches, 1):,.1f} on average)"
        )
    note += f"; FleetEngine built in {build_s:.2f} s (not in the rates)"
    return PathResult(
        name,
        n,
        fed.total_s,
        fed.tick_s,
        fed.ticks * n_sensors,
        fed.events,
        states,
        build_s=build_s,
        batches=fed.batches,
        placement=fleet_engine.placement(),
        note=note,
    )


SWEEP_BATCHES = (10, 50, 200, 500, 2000)


@dataclass(frozen=True, slots=True)
class SweepRow:
    """The streaming path over the first readings with one batch size."""

    batch: int
    readings: int
    batches: int
    total_s: float
    tick_s: float
    identical: bool

    @property
    def rate(self) -> float:
        """Readings/s of the evaluations alone."""
        return self.readings / (self.total_s - self.tick_s)

    @property
    def rate_with_ticks(self) -> float:
        """Readings/s with the ticks included."""
        return self.readings / self.total_s


def run_sweep(fleet: Fleet, columns: Columns, snapshot: Snapshot) -> list[SweepRow]:
    """The streaming path over the snapshot's readings for each of :data:`SWEEP_BATCHES`,
    each with a fresh engine; events and final states checked against the snapshot."""
    head = columns.head(snapshot.readings)
    expected = events_digest(snapshot.events)
    rows = []
    for batch in SWEEP_BATCHES:
        fleet_engine, _ = build_engine(fleet)
        fed = feed(fleet_engine, head, batch)
        same = (
            len(fed.events) == len(snapshot.events)
            and events_digest(fed.events) == expected
            and all(fleet_engine.state(s) == st for s, st in enumerate(snapshot.states))
        )
        rows.append(SweepRow(batch, len(head.ts), fed.batches, fed.total_s, fed.tick_s, same))
    return rows


# --- output --------------------------------------------------------------------------------


def events_digest(events: Sequence[EventKey]) -> str:
    """SHA-256 of the sorted (sensor, rule, ts, level, change)."""
    digest = hashlib.sha256()
    for sensor, rule, ts, level, change, _ in sorted(events):
        digest.update(f"{sensor}|{rule}|{ts}|{level}|{change}\n".encode())
    return digest.hexdigest()


def _verdict(value: float, target: float) -> str:
    """``met`` when ``value`` is at least ``target``."""
    return "met" if value >= target else "NOT met"


def _verdict_at_most(value: float, limit: float) -> str:
    """``met`` when ``value`` is at most ``limit``."""
    return "met" if value <= limit else "NOT met"


def machine_info() -> list[str]:
    """Where the figures come from."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"machine: {os.cpu_count()} CPUs ({usable} usable), {platform.platform()}, "
        f"{platform.processor() or platform.machine()}, load average {load}",
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"numpy {np.__version__}; one process, one thread, gc enabled (collected before "
        "each path)",
    ]


def print_paths(results: Sequence[PathResult], n_sensors: int) -> None:
    """The table of the paths; the first is the reference."""
    reference = results[0]
    print(
        f"\n{'path':10} {'readings':>10} {'eval s':>7} {'readings/s':>11} {'× ref':>6} "
        f"{'ticks s':>8} {'ticks/s':>10} {'ms/sim s':>9} {'readings/s':>11} {'events':>7}"
    )
    print(
        f"{'':10} {'':>10} {'':>7} {'(eval only)':>11} {'':>6} {'':>8} {'(sensor)':>10} "
        f"{'(fleet)':>9} {'(w/ ticks)':>11}"
    )
    for r in results:
        seconds = r.sensor_ticks / n_sensors
        per_second_ms = r.tick_s / seconds * 1000 if seconds else math.nan
        print(
            f"{r.name:10} {r.readings:>10,} {r.eval_s:>7.2f} {r.rate:>11,.0f} "
            f"{r.rate / reference.rate:>6.1f} {r.tick_s:>8.2f} {r.tick_rate:>10,.0f} "
            f"{per_second_ms:>9.1f} {r.rate_with_ticks:>11,.0f} {len(r.events):>7,}"
        )
    print(
        "  ticks: every sensor at every whole simulated second; 'ms/sim s' = CPU time to tick "
        "the whole fleet once (it must stay well under 1000 ms)"
    )
    for r in results:
        if r.note:
            print(f"  {r.name}: {r.note}")


def print_placement(fleet: Fleet, placement: dict[str, int]) -> None:
    """Rule instances per rule kind: in a numpy lane or in the object lane."""
    totals: Counter[str] = Counter(rule.kind for rules in fleet.rules for rule in rules)
    print(
        "\nrule instances (sensor, rule) by kind, as FleetEngine.placement() places them: "
        "numpy lane, or object lane (the reference code, reading by reading)"
    )
    print(f"  {'kind':14} {'instances':>10} {'numpy lane':>11} {'object lane':>12}")
    for kind in sorted(totals):
        lane = placement.get(kind, 0)
        print(f"  {kind:14} {totals[kind]:>10,} {lane:>11,} {totals[kind] - lane:>12,}")
    total = sum(totals.values())
    objects = placement.get("object", 0)
    print(
        f"  {'all':14} {total:>10,} {total - objects:>11,} {objects:>12,}  "
        f"({(total - objects) / total:.0%} in numpy lanes)"
    )


def print_sweep(rows: Sequence[SweepRow], snapshot: Snapshot) -> None:
    """Streaming readings/s by batch size."""
    print(
        f"\nstreaming by batch size: first {snapshot.readings:,} readings, a fresh engine each "
        "(events and final states checked against the reference path's)"
    )
    print(
        f"  {'batch':>6} {'calls':>8} {'eval s':>7} {'readings/s':>11} {'readings/s':>11}  "
        f"identical"
    )
    print(f"  {'':>6} {'':>8} {'':>7} {'(eval only)':>11} {'(w/ ticks)':>11}")
    eval_s = snapshot.total_s - snapshot.tick_s
    print(
        f"  {'ref':>6} {snapshot.readings:>8,} {eval_s:>7.2f} {snapshot.readings / eval_s:>11,.0f} "
        f"{snapshot.readings / snapshot.total_s:>11,.0f}  (evaluate_sensor)"
    )
    for r in rows:
        print(
            f"  {r.batch:>6,} {r.batches:>8,} {r.total_s - r.tick_s:>7.2f} {r.rate:>11,.0f} "
            f"{r.rate_with_ticks:>11,.0f}  {'yes' if r.identical else 'no'}"
        )


def _compare(reference: PathResult, other: PathResult) -> bool:
    """One line: events and final states of ``other`` against the reference."""
    da, db = events_digest(reference.events), events_digest(other.events)
    events_same = len(reference.events) == len(other.events) and da == db
    states_same = reference.states == other.states
    order = "same order" if reference.events == other.events else "NOT in the same order"
    print(
        f"  reference vs {other.name}, {other.readings:,} readings: {len(reference.events):,} / "
        f"{len(other.events):,} events, sha256 {da[:16]}… / {db[:16]}…: "
        f"{'identical' if events_same else 'DIFFERENT'}"
        f"{f' ({order})' if events_same else ''}; final states: "
        f"{'identical' if states_same else 'DIFFERENT'}"
    )
    return events_same and states_same


def _diff_by_kind(fleet: Fleet, reference: PathResult, others: Sequence[PathResult]) -> None:
    """Per rule kind: events and differing events / states of each path against the reference."""
    kinds = sorted({rule.kind for rules in fleet.rules for rule in rules})
    ref_events = Counter(reference.events)
    names = " / ".join(r.name for r in others)
    print(
        f"  by rule kind: events in reference / {names} (in parentheses: events not in both, "
        f"{names}); (sensor, rule) states that differ, {names}"
    )
    for kind in kinds:
        ref_kind = Counter({e: c for e, c in ref_events.items() if e[5] == kind})
        parts = [f"{ref_kind.total():,}"]
        diffs = []
        for r in others:
            mine = Counter(e for e in r.events if e[5] == kind)
            parts.append(f"{mine.total():,}")
            diffs.append(((ref_kind - mine) + (mine - ref_kind)).total())
        states = []
        for r in others:
            differ = sum(
                ref_s[rule.rule_id] != r_s.get(rule.rule_id)
                for rules, ref_s, r_s in zip(fleet.rules, reference.states, r.states, strict=True)
                for rule in rules
                if rule.kind == kind
            )
            states.append(f"{differ:,}")
        flag = "" if not any(diffs) and all(s == "0" for s in states) else "   <-- differs"
        print(
            f"    {kind:14} events {' / '.join(parts)} ({' / '.join(f'{d:,}' for d in diffs)}); "
            f"states {' / '.join(states)}{flag}"
        )


def print_identity(fleet: Fleet, reference: PathResult, others: Sequence[PathResult]) -> bool:
    """Whether the fleet paths give the reference's events and final states."""
    print("\nevents (sensor, rule, ts, level, change) and final states against the reference")
    ok = True
    for other in others:
        ok &= _compare(reference, other)
    print(f"  identical: {'yes' if ok else 'no'}")
    by_kind: Counter[tuple[str, str]] = Counter((e[5], e[4]) for e in reference.events)
    parts = []
    for kind in sorted({k for k, _ in by_kind}):
        changes = ", ".join(
            f"{c} {by_kind[(kind, c)]:,}"
            for c in ("raised", "level_changed", "cleared")
            if by_kind[(kind, c)]
        )
        parts.append(f"{kind} ({changes})")
    print("  reference events by rule kind: " + "; ".join(parts))
    if not ok:
        _diff_by_kind(fleet, reference, others)
    return ok


def _target_line(label: str, result: PathResult, target: int, extra: str = "") -> None:
    print(
        f"  {label:9} target >= {target:>9,} readings/s on one core: eval only "
        f"{result.rate:>10,.0f} ({result.rate / target:.2f} of target, "
        f"{_verdict(result.rate, target)}); with ticks {result.rate_with_ticks:>10,.0f} "
        f"({result.rate_with_ticks / target:.2f}, {_verdict(result.rate_with_ticks, target)})"
        f"{extra}"
    )


def print_targets(
    streaming: PathResult, batch: PathResult, histories: HistoryTiming, batch_size: int
) -> None:
    """Figures against the issue's targets."""
    print("\ntargets (issue)")
    _target_line("streaming", streaming, TARGET_STREAMING, f"; batches of <= {batch_size:,}")
    _target_line("batch", batch, TARGET_BATCH, "; one replay call")
    rate = histories.readings / histories.history_s
    print(
        f"  {'':9} for comparison, one sensor's history alone (evaluate_history, the 16 profiles "
        f"per kind): {rate:,.0f} readings/s; a lone sensor gives numpy little to work on"
    )


def print_histories(histories: dict[str, HistoryTiming]) -> HistoryTiming:
    """The profiles' long recorded histories, reading by reading and in one call; the total."""
    print(
        f"\nrecorded histories: the {PROFILES} profiles per kind, each from an empty state, "
        "readings only (no ticks, so offline never raises)"
    )
    print(
        f"  {'kind':16} {'history':>16} {'readings':>9} {'evaluate_sensor':>16} "
        f"{'evaluate_history':>17} {'speed-up':>9}  identical"
    )
    total = HistoryTiming()
    for kind, t in histories.items():
        spec = KINDS[kind]
        length = f"{spec.history_ms // HOUR_MS} h of {_duration(spec.interval_ms)}"
        loop_rate = t.readings / t.loop_s
        history_rate = t.readings / t.history_s
        print(
            f"  {spec.name:16} {length:>16} {t.readings:>9,} {loop_rate:>12,.0f} r/s "
            f"{history_rate:>13,.0f} r/s {t.loop_s / t.history_s:>8.2f}×  "
            f"{'yes' if t.identical else 'no'}"
        )
        total.profiles += t.profiles
        total.readings += t.readings
        total.loop_s += t.loop_s
        total.history_s += t.history_s
        total.identical &= t.identical
    print(
        f"  {'all':16} {'':>16} {total.readings:>9,} "
        f"{total.readings / total.loop_s:>12,.0f} r/s {total.readings / total.history_s:>13,.0f} "
        f"r/s {total.loop_s / total.history_s:>8.2f}×  {'yes' if total.identical else 'no'}"
    )
    return total


def _duration(ms: int) -> str:
    if ms % HOUR_MS == 0:
        return f"{ms // HOUR_MS} h"
    if ms % MINUTE_MS == 0:
        return f"{ms // MINUTE_MS} min"
    return f"{ms // SECOND_MS} s"


def state_bytes(state: State, *, compact: bool = False) -> int:
    """Bytes of the sensor's state as JSON (``json.dumps`` defaults, or compact separators)."""
    data = engine.state_to_dict(state)
    text = json.dumps(data, separators=(",", ":")) if compact else json.dumps(data)
    return len(text.encode())


def _p99(values: Sequence[int]) -> int:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.99 * len(ordered)) - 1, 0)]


def full_day_gauge(low: float, high: float, seed: int) -> tuple[int, int, dict[str, int]]:
    """A rain gauge with rain (``low``–``high`` mm per 5 min) in all 288 buckets of 24 h.

    Returns bytes (default and compact) and bytes per rule.
    """
    rng = random.Random(f"{seed}/full-day/{low}/{high}")
    rules = rain_rules(1.0)
    state: State = {}
    start = T_LIVE - 24 * HOUR_MS
    for k in range(24 * 12):
        ts = start + k * 5 * MINUTE_MS + 60_000
        value = round(rng.uniform(low, high), 1)
        state, _ = engine.evaluate_sensor(rules, state, ts, value)
    state, _ = engine.tick_sensor(rules, state, T_LIVE)
    per_rule = {rid: len(json.dumps(s.to_dict()).encode()) for rid, s in state.items()}
    return state_bytes(state), state_bytes(state, compact=True), per_rule


def print_state_sizes(fleet: Fleet, states: Sequence[State], seed: int) -> None:
    """State bytes per sensor kind after the run, and the full 24 h rain gauge."""
    print("\nstate per sensor after the run: bytes of json.dumps(engine.state_to_dict(state))")
    print(
        f"  {'kind':16} {'sensors':>8} {'mean':>7} {'p99':>7} {'max':>7} {'max compact':>12}  "
        f"target <= {TARGET_STATE_BYTES:,}"
    )
    sizes: dict[str, list[int]] = {k: [] for k in KINDS}
    compact: dict[str, int] = dict.fromkeys(KINDS, 0)
    full_rain: list[int] = []
    for kind, rules, state in zip(fleet.kinds, fleet.rules, states, strict=True):
        size = state_bytes(state)
        sizes[kind].append(size)
        compact[kind] = max(compact[kind], state_bytes(state, compact=True))
        for rule in rules:
            if (
                isinstance(rule, AccumulationRule)
                and rule.rule_id == "flash_flood"
                and len(state[rule.rule_id].amounts) == rule.horizon
            ):
                full_rain.append(size)
    for kind, values in sizes.items():
        if not values:
            continue
        mean = sum(values) / len(values)
        print(
            f"  {KINDS[kind].name:16} {len(values):>8,} {mean:>7,.0f} {_p99(values):>7,} "
            f"{max(values):>7,} {compact[kind]:>12,}  "
            f"{_verdict_at_most(max(values), TARGET_STATE_BYTES)} (max)"
        )
    if full_rain:
        print(
            f"  rain gauges of the fleet with a full 24 h flash-flood window (288 buckets): "
            f"{len(full_rain):,}, max {max(full_rain):,} bytes"
        )
    for label, low, high in (
        ("light rain, 0.1-0.9 mm per 5 min", 0.1, 0.9),
        ("heavy rain, 1.0-9.9 mm per 5 min", 1.0, 9.9),
    ):
        size, size_compact, per_rule = full_day_gauge(low, high, seed)
        rules_text = ", ".join(f"{rid} {n:,}" for rid, n in per_rule.items())
        print(
            f"  rain gauge, rain in every 5-min bucket of the last 24 h ({label}): "
            f"{size:,} bytes ({size_compact:,} compact): target <= {TARGET_STATE_BYTES:,} "
            f"bytes {_verdict_at_most(size, TARGET_STATE_BYTES)}"
        )
        print(f"    by rule: {rules_text}")


def print_profile(fleet: Fleet, columns: Columns, batch: int) -> None:
    """cProfile of the streaming fleet path, top 10 by tottime."""
    n = min(PROFILE_READINGS, len(columns.ts))
    head = columns.head(n)
    ticks = int(head.ts[-1] - T_LIVE) // SECOND_MS + 1
    fleet_engine, _ = build_engine(fleet)
    profiler = cProfile.Profile()
    profiler.enable()
    feed(fleet_engine, head, batch)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime")
    stats.print_stats(10)
    print(
        f"\nprofile of the streaming path (batches of <= {batch:,}): first {n:,} readings and "
        f"{ticks} ticks of {len(fleet.rules):,} sensors, engine construction excluded, top 10 "
        "by tottime (cProfile slows it down)"
    )
    lines = out.getvalue().strip("\n").splitlines()
    for line in lines:
        if line.strip():
            print(f"  {line.rstrip()}")


# --- main ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """Parsed command line."""

    sensors: int
    readings: int
    batch: int
    sweep_readings: int
    seed: int
    profile: bool


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Command-line options; ``--quick`` changes the defaults, explicit flags still win."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sensors", type=int, default=10_000, help="sensors in the fleet (10,000)")
    p.add_argument(
        "--readings",
        type=int,
        help="readings in the measured input (default 1,000,000; --quick 100,000)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        help=f"streaming path: at most N readings per evaluate call (default {DEFAULT_BATCH}: "
        "what arrives in 5 ms at 100,000 readings/s)",
    )
    p.add_argument(
        "--sweep-readings",
        type=int,
        help="the batch-size sweep takes the first N readings (default 100,000; --quick 20,000)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the generated data (1)")
    p.add_argument(
        "--profile",
        action="store_true",
        help=f"also profile the streaming path (first {PROFILE_READINGS:,} readings)",
    )
    p.add_argument("--quick", action="store_true", help="a short run: 100,000 readings")
    a = p.parse_args(argv)
    readings = a.readings if a.readings is not None else (100_000 if a.quick else 1_000_000)
    sweep = a.sweep_readings
    if sweep is None:
        sweep = 20_000 if a.quick else 100_000
    if a.sensors < 1 or readings < 1 or sweep < 1 or a.batch < 1:
        p.error("--sensors, --readings, --sweep-readings and --batch must be positive")
    return Options(a.sensors, readings, a.batch, min(sweep, readings), a.seed, a.profile)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    opts = parse_args(argv)
    started = time.perf_counter()
    print("earlywarn rules-engine benchmark (bench/rules.py)")
    for line in machine_info():
        print(line)
    fleet, live = build(opts.sensors, opts.readings, opts.seed)
    built = time.perf_counter() - started
    counts = Counter(fleet.kinds)
    print(f"fleet: {opts.sensors:,} sensors, {PROFILES} profiles per kind, seed {opts.seed}")
    for kind, spec in KINDS.items():
        interval = _duration(spec.interval_ms)
        print(f"  {counts[kind]:>6,} {spec.name:16} every {interval:6} {spec.rules}")
    stream = live.stream
    mix = Counter(fleet.kinds[s] for s in stream.sensor)
    mix_text = ", ".join(f"{KINDS[k].name} {mix[k] / len(stream.ts):.1%}" for k in KINDS)
    print(
        "starting states: the engine state after each profile's history "
        f"({sum(len(p.ts) for ps in fleet.profiles.values() for p in ps):,} readings through "
        "evaluate_sensor; see 'recorded histories' below)"
    )
    print(
        f"measured input: {len(stream.ts):,} readings over {(stream.ts[-1] - T_LIVE) / 1000:,.1f} "
        f"simulated s ({mix_text}); ticks at every simulated second: {live.ticks} × "
        f"{opts.sensors:,} sensors; generated in {built:.1f} s",
        flush=True,
    )
    print(
        f"streaming: micro-batches of at most {opts.batch:,} readings (500 = what arrives in "
        "5 ms at 100,000 readings/s), never across a tick; batch: the whole recording in one "
        "FleetEngine.replay call",
        flush=True,
    )

    reference, snapshot = run_reference(fleet, stream, snapshot_at=opts.sweep_readings)
    if snapshot is None:  # cannot happen: snapshot_at was given
        msg = "the reference path took no snapshot"
        raise RuntimeError(msg)
    print(f"  reference done in {reference.total_s:.1f} s", flush=True)
    streaming = run_fleet("streaming", fleet, live.columns, opts.batch)
    print(f"  streaming done in {streaming.total_s:.1f} s", flush=True)
    batch = run_fleet("batch", fleet, live.columns, None)
    print(f"  batch done in {batch.total_s:.1f} s", flush=True)
    sweep = run_sweep(fleet, live.columns, snapshot)
    print(f"  sweep done in {sum(r.total_s for r in sweep):.1f} s", flush=True)
    histories = run_histories(fleet.profiles)

    print_paths((reference, streaming, batch), opts.sensors)
    print_placement(fleet, streaming.placement)
    print_identity(fleet, reference, (streaming, batch))
    print_sweep(sweep, snapshot)
    histories_total = print_histories(histories)
    print_targets(streaming, batch, histories_total, opts.batch)
    print_state_sizes(fleet, reference.states, opts.seed)
    if opts.profile:
        print_profile(fleet, live.columns, opts.batch)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s; load average now {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
