"""Accumulation rule: rolling rainfall sums over several windows (1, 3, 6, 12, 24 h…).

One rule expresses both the CMA rainstorm signals (one window per level: blue 50 mm in 12 h,
yellow 50 mm in 6 h, orange 50 mm in 3 h, red 100 mm in 3 h) and flash-flood critical
rainfall tables (several windows per level: 1, 3, 6 and 24 h). A level is *reached* when the
sum of ANY of its windows is at or above that window's set-point (equality alarms) and *held*
while the sum of any of its windows is at or above that window's clear set-point; the shared
latch (:mod:`rules.latch`) turns that into one alarm per (sensor, rule).

Readings come from one of two kinds of gauge (``mode``):

- ``interval``: each reading is the rain since the previous report (a tipping bucket's
  0.1/0.2/0.5 mm, a 5-minute total). Negative readings are refused like NaN (ignored).
- ``cumulative``: a counter that grows. The increment is the rise since the previous reading;
  the first reading only sets the baseline. A counter lower than the previous one was reset
  and counts again from zero (increment = the new value) or, when ``counter_max`` is given,
  wrapped round (increment = value + counter_max - previous). Negative counters, and
  counters above ``counter_max``, are ignored.

Sums are kept per time bucket of ``bucket_ms`` (default 5 min), buckets aligned to the epoch
(so to the wall clock in UTC+8). Windows are judged at bucket resolution: a 3 h window is the
last 36 five-minute buckets including the bucket of the newest reading; every window must be
a whole number of buckets, and the longest at most :data:`MAX_BUCKETS` of them.

An increment goes to the bucket of its reading; when the previous reading is more than one
bucket older (a gap, a slow tipping bucket), the increment is spread evenly over the buckets
after the previous reading's up to this one, since the rain fell somewhere in between. So a
gauge that comes back after a day offline with 100 mm more on its counter does not raise a
3 h red signal for rain that may have fallen the day before.

Sums do not drift: every increment is rounded once to a whole number of micro-units (10⁻⁶ mm
for a gauge in mm) and bucket sums are exact integers. A cumulative counter's increment is
taken between rounded counter values, so bucket sums add up exactly to the counter's rise.

Between readings nothing happens (``tick`` changes nothing): a gauge that reports nothing
while dry keeps its alarm until it next reports, even a zero.
"""

from __future__ import annotations

import base64
import itertools
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rules import latch
from rules.events import RuleEvent
from rules.latch import Delays, LatchState, cached_delays
from rules.levels import Level
from rules.setpoints import check_delays

MICRO = 1_000_000
"""Bucket sums are integers of 1/MICRO of the reading's unit."""

MAX_BUCKETS = 288
"""The longest window may span at most this many buckets (24 h of 5 min, 72 h of 15 min),
which keeps the state under 4 KB of JSON."""

DEFAULT_BUCKET_MS = 300_000
"""Five minutes."""


class Mode(StrEnum):
    """What a reading is: the rain since the previous report, or a growing counter."""

    INTERVAL = "interval"
    CUMULATIVE = "cumulative"


@dataclass(frozen=True, slots=True)
class WindowSetpoint:
    """One window of a level: reached at ``set`` or more in ``window_ms``, held down to
    ``clear``."""

    window_ms: int
    set: float
    clear: float


@dataclass(frozen=True, slots=True)
class LevelWindows:
    """A level and its windows; the level is reached when any of its windows is."""

    level: Level
    label: str
    windows: tuple[WindowSetpoint, ...]


@dataclass(frozen=True, slots=True)
class AccumulationState:
    """The latch, the bucket sums and the last counter value.

    ``amounts`` are the sums (integers of 1/:data:`MICRO`) of consecutive buckets ending with
    the bucket of ``latch.last_ts_ms``, newest last, at most :data:`MAX_BUCKETS` of them; older
    empty buckets are left out, so a dry gauge keeps an empty tuple.
    """

    latch: LatchState = field(default_factory=LatchState)
    amounts: tuple[int, ...] = ()
    last_value: float | None = None
    """The cumulative counter's previous reading; ``None`` in interval mode or before any."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: ``{"latch": {…}, "amounts": "<base64>", "last_value": x}``.

        The bucket sums are packed (unsigned LEB128 varints, base64): a day of 5-minute
        buckets as a JSON list of micro-unit integers took 2.5–2.8 KB, packed about 1.2 KB,
        which keeps a rain gauge with two accumulation rules within 4 KB.
        """
        return {
            "latch": self.latch.to_dict(),
            "amounts": pack_amounts(self.amounts),
            "last_value": self.last_value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AccumulationState:
        """Inverse of :meth:`to_dict`; also reads the earlier plain list of integers."""
        last = data.get("last_value")
        raw = data.get("amounts", ())
        amounts = unpack_amounts(raw) if isinstance(raw, str) else tuple(int(a) for a in raw)
        return cls(
            latch=LatchState.from_dict(data["latch"]),
            amounts=amounts,
            last_value=None if last is None else float(last),
        )


def pack_amounts(amounts: tuple[int, ...]) -> str:
    """Non-negative integers as unsigned LEB128 varints, base64-encoded."""
    out = bytearray()
    for amount in amounts:
        if amount < 0:
            msg = f"bucket sums are never negative, got {amount}"
            raise ValueError(msg)
        rest = amount
        while True:
            byte = rest & 0x7F
            rest >>= 7
            if rest:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                break
    return base64.b64encode(bytes(out)).decode("ascii")


def unpack_amounts(text: str) -> tuple[int, ...]:
    """Inverse of :func:`pack_amounts`."""
    values: list[int] = []
    current = shift = 0
    for byte in base64.b64decode(text.encode("ascii"), validate=True):
        current |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
        else:
            values.append(current)
            current = shift = 0
    return tuple(values)


@dataclass(frozen=True, slots=True)
class AccumulationRule:
    """A rolling-sum rule; levels, windows and buckets are checked when constructed.

    Levels are sorted ascending and each level's windows by length.
    """

    rule_id: str
    mode: Mode
    levels: tuple[LevelWindows, ...]
    bucket_ms: int = DEFAULT_BUCKET_MS
    counter_max: float | None = None
    on_delay_ms: int = 0
    off_delay_ms: int = 0
    consecutive: int = 1

    def __post_init__(self) -> None:
        rid = f"rule {self.rule_id!r}"
        check_delays(self.rule_id, self.on_delay_ms, self.off_delay_ms, self.consecutive)
        try:
            object.__setattr__(self, "mode", Mode(self.mode))
        except ValueError:
            msg = f"{rid}: mode must be 'interval' or 'cumulative', got {self.mode!r}"
            raise ValueError(msg) from None
        if self.counter_max is not None:
            if self.mode is not Mode.CUMULATIVE:
                msg = f"{rid}: counter_max applies only to a cumulative gauge"
                raise ValueError(msg)
            if not (math.isfinite(self.counter_max) and self.counter_max > 0):
                msg = f"{rid}: counter_max must be a number above zero"
                raise ValueError(msg)
        if self.bucket_ms <= 0:
            msg = f"{rid}: bucket_ms must be longer than zero"
            raise ValueError(msg)
        if not self.levels:
            msg = f"{rid}: an accumulation rule needs at least one level"
            raise ValueError(msg)
        ordered = sorted(self.levels, key=lambda lw: lw.level)
        if len({lw.level for lw in ordered}) != len(ordered):
            msg = f"{rid}: each level may appear only once"
            raise ValueError(msg)
        normalised = []
        for lw in ordered:
            name = lw.level.label
            if not lw.windows:
                msg = f"{rid}: {name} needs at least one window"
                raise ValueError(msg)
            windows = tuple(sorted(lw.windows, key=lambda w: w.window_ms))
            if len({w.window_ms for w in windows}) != len(windows):
                msg = f"{rid}: {name} lists the same window twice"
                raise ValueError(msg)
            for w in windows:
                self._check_window(name, w)
            normalised.append(LevelWindows(lw.level, lw.label, windows))
        for lower, upper in itertools.pairwise(normalised):
            below = {w.window_ms: w for w in lower.windows}
            for w in upper.windows:
                if w.window_ms in below and w.set <= below[w.window_ms].set:
                    msg = (
                        f"{rid}: {upper.level.label} set-point {w.set:g} in "
                        f"{_duration(w.window_ms)} must be above {lower.level.label} set-point "
                        f"{below[w.window_ms].set:g} in the same window"
                    )
                    raise ValueError(msg)
        object.__setattr__(self, "levels", tuple(normalised))

    def _check_window(self, name: str, w: WindowSetpoint) -> None:
        rid = f"rule {self.rule_id!r}"
        if w.window_ms <= 0:
            msg = f"{rid}: {name} window must be longer than zero"
            raise ValueError(msg)
        if w.window_ms % self.bucket_ms:
            msg = (
                f"{rid}: {name} window of {w.window_ms} ms is not a whole number of "
                f"{_duration(self.bucket_ms)} buckets"
            )
            raise ValueError(msg)
        if w.window_ms // self.bucket_ms > MAX_BUCKETS:
            msg = (
                f"{rid}: {name} window {_duration(w.window_ms)} spans more than {MAX_BUCKETS} "
                f"buckets of {_duration(self.bucket_ms)}; use longer buckets"
            )
            raise ValueError(msg)
        if not (math.isfinite(w.set) and math.isfinite(w.clear)):
            msg = f"{rid}: set-points must be finite numbers"
            raise ValueError(msg)
        if w.set <= 0:
            msg = (
                f"{rid}: {name} set-point {w.set:g} in {_duration(w.window_ms)} must be above zero"
            )
            raise ValueError(msg)
        if not 0 < w.clear <= w.set:
            msg = (
                f"{rid}: {name} clear set-point {w.clear:g} in {_duration(w.window_ms)} must be "
                f"above zero and not above its set-point {w.set:g}"
            )
            raise ValueError(msg)

    @property
    def delays(self) -> Delays:
        """On-delay, off-delay and consecutive readings, for the latch."""
        return cached_delays(self.on_delay_ms, self.off_delay_ms, self.consecutive)

    @property
    def level_numbers(self) -> tuple[int, ...]:
        """The rule's levels as integers, ascending."""
        return tuple(int(lw.level) for lw in self.levels)

    @property
    def horizon(self) -> int:
        """Buckets kept: those of the longest window."""
        return max(w.window_ms for lw in self.levels for w in lw.windows) // self.bucket_ms

    def limits(self) -> list[list[tuple[int, int, int]]]:
        """Per level, per window: (buckets, set, clear), the set-points in micro-units."""
        return [
            [(w.window_ms // self.bucket_ms, _micro(w.set), _micro(w.clear)) for w in lw.windows]
            for lw in self.levels
        ]

    @property
    def kind(self) -> str:
        """``accumulation``."""
        return "accumulation"

    def initial(self) -> AccumulationState:
        """No alarm, no rain, no counter yet."""
        return AccumulationState()

    def evaluate(
        self, state: AccumulationState, ts_ms: int, value: float, quality: int = 0
    ) -> tuple[AccumulationState, RuleEvent | None]:
        """See :func:`evaluate` (quality is not this kind's concern)."""
        return evaluate(self, state, ts_ms, value)

    def tick(
        self, state: AccumulationState, now_ms: int
    ) -> tuple[AccumulationState, RuleEvent | None]:
        """Nothing happens between readings."""
        return state, None

    def state_from_dict(self, data: dict[str, Any]) -> AccumulationState:
        """Read back :meth:`AccumulationState.to_dict`."""
        return AccumulationState.from_dict(data)

    def sums(self, state: AccumulationState) -> dict[int, float]:
        """Window length (ms) → its current sum, for every window of the rule."""
        return {
            w.window_ms: sum(state.amounts[-(w.window_ms // self.bucket_ms) :]) / MICRO
            for lw in self.levels
            for w in lw.windows
        }


def increment(rule: AccumulationRule, state: AccumulationState, value: float) -> int | None:
    """The rain a reading adds, in micro-units; ``None`` when the reading is refused."""
    if value < 0:
        return None
    if rule.counter_max is not None and value > rule.counter_max:
        return None  # a counter cannot pass its own maximum: a garbled reading, not rain
    if rule.mode is Mode.INTERVAL:
        return _micro(value)
    if state.last_value is None:
        return 0
    now, before = _micro(value), _micro(state.last_value)
    if now >= before:
        return now - before
    if rule.counter_max is None:
        return now
    return now + _micro(rule.counter_max) - before


def add(
    amounts: tuple[int, ...],
    last_ts_ms: int | None,
    ts_ms: int,
    amount: int,
    rule: AccumulationRule,
) -> tuple[int, ...]:
    """Shift the buckets on to the bucket of ``ts_ms`` and add ``amount``, spread evenly over
    the buckets since the previous reading's when that is more than one bucket back."""
    bucket = ts_ms // rule.bucket_ms
    horizon = rule.horizon
    previous = bucket if last_ts_ms is None else last_ts_ms // rule.bucket_ms
    spread = max(bucket - previous, 1)  # buckets the amount is shared by
    span = min(spread, horizon)  # of which these are still inside the horizon
    shifted = [*amounts, *([0] * min(bucket - previous, horizon))]
    shifted = [*([0] * (span - len(shifted))), *shifted][-horizon:]
    base, extra = divmod(amount, spread)
    for back in range(span):  # back 0 is the newest bucket
        shifted[-1 - back] += base + (1 if back < extra else 0)
    first = next((i for i, a in enumerate(shifted) if a), len(shifted))
    return tuple(shifted[first:])


def evaluate(
    rule: AccumulationRule, state: AccumulationState, ts_ms: int, value: float
) -> tuple[AccumulationState, RuleEvent | None]:
    """Apply one reading; return the new state and the transition it caused, if any.

    Stale readings (not newer than the last one), NaN, infinite and negative values leave the
    state untouched.
    """
    if state.latch.is_stale(ts_ms) or not math.isfinite(value):
        return state, None
    amount = increment(rule, state, value)
    if amount is None:
        return state, None
    amounts = add(state.amounts, state.latch.last_ts_ms, ts_ms, amount, rule)
    table = rule.limits()
    sums = [[sum(amounts[-n:]) for n, _, _ in level] for level in table]
    reached = [
        any(s >= setp for s, (_, setp, _) in zip(level_sums, level, strict=True))
        for level_sums, level in zip(sums, table, strict=True)
    ]
    held = [
        any(s >= clear for s, (_, _, clear) in zip(level_sums, level, strict=True))
        for level_sums, level in zip(sums, table, strict=True)
    ]
    new_latch, moved = latch.step(
        rule.delays, rule.level_numbers, reached, held, state.latch, ts_ms
    )
    last_value = value if rule.mode is Mode.CUMULATIVE else None
    new_state = AccumulationState(new_latch, amounts, last_value)
    if moved is None:
        return new_state, None
    return new_state, _event(rule, moved, sums, table, ts_ms)


def _event(
    rule: AccumulationRule,
    moved: latch.Transition,
    sums: list[list[int]],
    table: list[list[tuple[int, int, int]]],
    ts_ms: int,
) -> RuleEvent:
    """The window that decided: rising, the new level's window furthest past its set-point;
    falling, the left level's window nearest to its clear set-point (the last to let go).
    Both measured as sum / set-point; on a tie, the shorter window."""
    rising = moved.new > moved.old
    index = rule.level_numbers.index(moved.new if rising else moved.old)
    level = rule.levels[index]
    ratios = [
        s / (setp if rising else clear)
        for s, (_, setp, clear) in zip(sums[index], table[index], strict=True)
    ]
    pick = ratios.index(max(ratios))  # the first (shortest) window on a tie
    chosen = level.windows[pick]
    return RuleEvent(
        rule_id=rule.rule_id,
        direction="high",
        change=moved.change,
        level=Level(moved.new) if moved.new else None,
        previous=Level(moved.old) if moved.old else None,
        value=sums[index][pick] / MICRO,
        setpoint=chosen.set if rising else chosen.clear,
        setpoint_label=level.label,
        ts_ms=ts_ms,
        start_ms=moved.start_ms,
        kind="accumulation",
        window_ms=chosen.window_ms,
    )


def _micro(value: float) -> int:
    return round(value * MICRO)


def _duration(ms: int) -> str:
    """``3 h``, ``5 min``, ``90 s`` or ``1500 ms``: the plainest exact unit."""
    for unit, size in (("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"
