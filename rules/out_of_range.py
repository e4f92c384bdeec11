"""Out-of-range rule: a reading outside the instrument range, or a device fault code.

A reading is *invalid* when any of these holds:

- its value is below ``low`` or above ``high`` (the bounds themselves are in range);
- its value is NaN or ±infinity — unlike the other kinds, which ignore such readings, here they
  are exactly what the rule looks for;
- its value is one of ``fault_values`` (a sentinel such as ``-9999`` sent as a value; compared
  exactly, so ``-9999`` and ``-9999.0`` match);
- its quality code is one of ``fault_qualities``. A nonzero quality *not* listed is not a fault:
  the value is judged on its own.

The alarm raises on an invalid reading and clears on the next valid one; ``on_delay_ms``,
``off_delay_ms`` and ``consecutive`` work as for thresholds (e.g. ``consecutive: 3`` ignores a
lone sentinel). Stale readings change nothing. The state is the latch alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rules import quality
from rules.events import RuleEvent
from rules.latch import Delays, LatchState, Transition, cached_delays
from rules.levels import Level

KIND = "out_of_range"


@dataclass(frozen=True, slots=True)
class OutOfRangeRule:
    """Raise on a reading outside ``[low, high]``, non-finite, or carrying a fault code."""

    rule_id: str
    low: float
    high: float
    fault_values: tuple[float, ...] = ()
    fault_qualities: tuple[int, ...] = ()
    level: Level = Level.YELLOW
    on_delay_ms: int = 0
    off_delay_ms: int = 0
    consecutive: int = 1

    def __post_init__(self) -> None:
        quality.check_finite(self.rule_id, "the low end of the range", self.low)
        quality.check_finite(self.rule_id, "the high end of the range", self.high)
        if self.low >= self.high:
            msg = (
                f"rule {self.rule_id!r}: the low end of the range {self.low:g} must be below "
                f"the high end {self.high:g}"
            )
            raise ValueError(msg)
        values = tuple(float(v) for v in self.fault_values)
        for v in values:
            if not math.isfinite(v):
                msg = (
                    f"rule {self.rule_id!r}: fault values must be finite numbers, got {v!r} "
                    "(NaN and infinity already count as out of range)"
                )
                raise ValueError(msg)
        codes = tuple(self.fault_qualities)
        for q in codes:
            if isinstance(q, bool) or not isinstance(q, int):
                msg = f"rule {self.rule_id!r}: fault quality codes must be whole numbers, got {q!r}"
                raise ValueError(msg)
        quality.check_delays(self.rule_id, self.on_delay_ms, self.off_delay_ms, self.consecutive)
        object.__setattr__(self, "fault_values", values)
        object.__setattr__(self, "fault_qualities", codes)
        object.__setattr__(self, "level", quality.as_level(self.rule_id, self.level))

    @property
    def delays(self) -> Delays:
        """On-delay, off-delay and consecutive readings, for the latch."""
        return cached_delays(self.on_delay_ms, self.off_delay_ms, self.consecutive)

    @property
    def kind(self) -> str:
        """``out_of_range``."""
        return KIND

    def initial(self) -> LatchState:
        """No alarm, nothing seen."""
        return LatchState()

    def evaluate(
        self, state: LatchState, ts_ms: int, value: float, quality: int = 0
    ) -> tuple[LatchState, RuleEvent | None]:
        """See :func:`evaluate`."""
        return evaluate(self, state, ts_ms, value, quality)

    def tick(self, state: LatchState, now_ms: int) -> tuple[LatchState, RuleEvent | None]:
        """Nothing happens between readings."""
        return state, None

    def state_from_dict(self, data: dict[str, Any]) -> LatchState:
        """Read back :meth:`LatchState.to_dict`."""
        return LatchState.from_dict(data)

    def fault(self, value: float, quality: int = 0) -> tuple[str, float, str] | None:
        """Why a reading is invalid — ``(direction, set-point, label)`` — or ``None`` if valid.

        Checked in this order: fault quality, NaN, fault value, below range, above range.
        """
        if quality in self.fault_qualities:
            return "high", float(quality), f"故障质量码 {quality}"
        if math.isnan(value):
            return "high", self.high, "无效值"
        if value in self.fault_values:
            return "high", value, "故障值"
        if value < self.low:
            return "low", self.low, "量程下限"
        if value > self.high:
            return "high", self.high, "量程上限"
        return None


OutOfRangeState = LatchState
"""An out-of-range rule keeps nothing but its latch."""


def evaluate(
    rule: OutOfRangeRule, state: LatchState, ts_ms: int, value: float, quality_code: int = 0
) -> tuple[LatchState, RuleEvent | None]:
    """Apply one reading; NaN and infinity are invalid readings here, not ignored ones.

    A raise (or a change while raised) reports the reading and why it is invalid; a clear
    reports the valid reading and the range bound nearer to it.
    """
    if state.is_stale(ts_ms):
        return state, None
    why = rule.fault(value, quality_code)
    new_state, moved = quality.step_one(rule.delays, rule.level, why is not None, state, ts_ms)
    if moved is None:
        return new_state, None
    return new_state, _event(rule, moved, value, why, ts_ms)


def _event(
    rule: OutOfRangeRule,
    moved: Transition,
    value: float,
    why: tuple[str, float, str] | None,
    ts_ms: int,
) -> RuleEvent:
    if why is None:
        nearer_low = math.isfinite(value) and value - rule.low < rule.high - value
        why = ("low", rule.low, "量程下限") if nearer_low else ("high", rule.high, "量程上限")
    direction, setpoint, label = why
    return quality.make_event(
        rule.rule_id,
        KIND,
        moved,
        direction=direction,
        value=value,
        setpoint=setpoint,
        label=label,
        ts_ms=ts_ms,
        window_ms=None,
    )
