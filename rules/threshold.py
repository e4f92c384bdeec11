"""Multi-level threshold rule with per-level clear set-points (hysteresis) and an on-delay.

Each level behaves like a latch: it sets when the value reaches its set-point for at least the
on-delay, and it resets only when the value goes past its (lower, for a high alarm) clear
set-point. The alarm level is the highest latched level, so one alarm per (sensor, rule) rises
and falls through the levels instead of several alarms competing.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rules.events import Change, RuleEvent
from rules.levels import Level


class Direction(StrEnum):
    """``high`` alarms when the value rises to a set-point; ``low`` when it falls to it."""

    HIGH = "high"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class Setpoint:
    """One level of a threshold rule: alarm at ``set``, return to normal past ``clear``."""

    level: Level
    set: float
    clear: float
    label: str = ""


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """A threshold rule; set-points are checked for order and hysteresis when constructed."""

    rule_id: str
    direction: Direction
    setpoints: tuple[Setpoint, ...]
    on_delay_ms: int = 0

    def __post_init__(self) -> None:
        if not self.setpoints:
            msg = f"rule {self.rule_id!r}: a threshold rule needs at least one level"
            raise ValueError(msg)
        ordered = sorted(self.setpoints, key=lambda s: s.level)
        if [s.level for s in ordered] != sorted({s.level for s in ordered}):
            msg = f"rule {self.rule_id!r}: each level may appear only once"
            raise ValueError(msg)
        if self.on_delay_ms < 0:
            msg = f"rule {self.rule_id!r}: on-delay must not be negative"
            raise ValueError(msg)
        high = self.direction is Direction.HIGH
        for sp in ordered:
            if not (math.isfinite(sp.set) and math.isfinite(sp.clear)):
                msg = f"rule {self.rule_id!r}: set-points must be finite numbers"
                raise ValueError(msg)
            if (sp.clear > sp.set) if high else (sp.clear < sp.set):
                side = "above" if high else "below"
                msg = (
                    f"rule {self.rule_id!r}: {sp.level.label} clear set-point {sp.clear:g} is "
                    f"{side} its set-point {sp.set:g}; a {self.direction.value} alarm clears "
                    f"on the {'low' if high else 'high'} side"
                )
                raise ValueError(msg)
        for lower, upper in itertools.pairwise(ordered):
            if (upper.set <= lower.set) if high else (upper.set >= lower.set):
                msg = (
                    f"rule {self.rule_id!r}: {upper.level.label} set-point {upper.set:g} must be "
                    f"{'above' if high else 'below'} {lower.level.label} set-point {lower.set:g}"
                )
                raise ValueError(msg)
        object.__setattr__(self, "setpoints", tuple(ordered))

    def reached(self, value: float, limit: float) -> bool:
        """True when ``value`` is at or past ``limit`` on the alarm side (equality alarms)."""
        return value >= limit if self.direction is Direction.HIGH else value <= limit


@dataclass(frozen=True, slots=True)
class ThresholdState:
    """Per-(sensor, rule) state: small and plain, so it serialises to a dict of ints.

    ``pending`` maps a level above the current one to the time its set-point was first reached
    in the current uninterrupted run; the level latches once that run lasts the on-delay.
    """

    level: int = 0
    start_ms: int | None = None
    last_ts_ms: int | None = None
    pending: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (string keys) for tables and files."""
        return {
            "level": self.level,
            "start_ms": self.start_ms,
            "last_ts_ms": self.last_ts_ms,
            "pending": {str(k): v for k, v in self.pending.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThresholdState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            level=int(data["level"]),
            start_ms=None if data["start_ms"] is None else int(data["start_ms"]),
            last_ts_ms=None if data["last_ts_ms"] is None else int(data["last_ts_ms"]),
            pending={int(k): int(v) for k, v in data["pending"].items()},
        )


def is_stale(state: ThresholdState, ts_ms: int) -> bool:
    """A reading not newer than the last one evaluated (duplicate or out of order)."""
    return state.last_ts_ms is not None and ts_ms <= state.last_ts_ms


def evaluate(
    rule: ThresholdRule, state: ThresholdState, ts_ms: int, value: float
) -> tuple[ThresholdState, RuleEvent | None]:
    """Apply one reading; return the new state and the transition it caused, if any.

    Stale readings (see :func:`is_stale`) leave the state untouched: the alarm follows the
    newest value, and a replayed duplicate can never raise a second alarm.
    """
    if is_stale(state, ts_ms) or not math.isfinite(value):
        return state, None
    current = state.level
    held = 0
    pending: dict[int, int] = {}
    confirmed = 0
    for sp in rule.setpoints:
        lvl = int(sp.level)
        if lvl <= current:
            if rule.reached(value, sp.clear):
                held = lvl
        elif rule.reached(value, sp.set):
            since = state.pending.get(lvl, ts_ms)
            pending[lvl] = since
            if ts_ms - since >= rule.on_delay_ms:
                confirmed = lvl
    new_level = max(held, confirmed)
    pending = {lvl: since for lvl, since in pending.items() if lvl > new_level}
    start_ms = state.start_ms
    event: RuleEvent | None = None
    if new_level != current:
        if current == 0:
            start_ms = ts_ms
        event = _transition(rule, current, new_level, value, ts_ms, start_ms)
        if new_level == 0:
            start_ms = None
    return ThresholdState(new_level, start_ms, ts_ms, pending), event


def _transition(
    rule: ThresholdRule, old: int, new: int, value: float, ts_ms: int, start_ms: int | None
) -> RuleEvent:
    by_level = {int(sp.level): sp for sp in rule.setpoints}
    if new > old:
        crossed = by_level[new]
        setpoint, label = crossed.set, crossed.label
    else:
        left = by_level[old]
        setpoint, label = left.clear, left.label
    change = Change.RAISED if old == 0 else Change.CLEARED if new == 0 else Change.LEVEL_CHANGED
    return RuleEvent(
        rule_id=rule.rule_id,
        direction=rule.direction.value,
        change=change,
        level=Level(new) if new else None,
        previous=Level(old) if old else None,
        value=value,
        setpoint=setpoint,
        setpoint_label=label,
        ts_ms=ts_ms,
        start_ms=start_ms if start_ms is not None else ts_ms,
    )
