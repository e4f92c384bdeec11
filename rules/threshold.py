"""Multi-level threshold rule: per-level clear set-points (hysteresis), on- and off-delay, and
"N consecutive readings".

The value itself is the signal: a level's set-point is reached when the value is at or past it
(equality alarms), and the level is held until the value goes past its clear set-point. The
shared latch (:mod:`rules.latch`) turns that into one alarm per (sensor, rule).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rules import latch
from rules.events import RuleEvent
from rules.latch import Delays, LatchState
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
    off_delay_ms: int = 0
    consecutive: int = 1

    def __post_init__(self) -> None:
        if not self.setpoints:
            msg = f"rule {self.rule_id!r}: a threshold rule needs at least one level"
            raise ValueError(msg)
        ordered = sorted(self.setpoints, key=lambda s: s.level)
        if [s.level for s in ordered] != sorted({s.level for s in ordered}):
            msg = f"rule {self.rule_id!r}: each level may appear only once"
            raise ValueError(msg)
        try:
            Delays(self.on_delay_ms, self.off_delay_ms, self.consecutive)
        except ValueError as exc:
            msg = f"rule {self.rule_id!r}: {exc}"
            raise ValueError(msg) from None
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

    @property
    def delays(self) -> Delays:
        """On-delay, off-delay and consecutive readings, for the latch."""
        return Delays(self.on_delay_ms, self.off_delay_ms, self.consecutive)

    @property
    def levels(self) -> tuple[int, ...]:
        """The rule's levels as integers, ascending."""
        return tuple(int(sp.level) for sp in self.setpoints)

    @property
    def kind(self) -> str:
        """``threshold``."""
        return "threshold"

    def initial(self) -> LatchState:
        """No alarm, nothing seen."""
        return LatchState()

    def evaluate(
        self, state: LatchState, ts_ms: int, value: float, quality: int = 0
    ) -> tuple[LatchState, RuleEvent | None]:
        """See :func:`evaluate` (quality is not this kind's concern)."""
        return evaluate(self, state, ts_ms, value)

    def tick(self, state: LatchState, now_ms: int) -> tuple[LatchState, RuleEvent | None]:
        """Nothing happens between readings."""
        return state, None

    def state_from_dict(self, data: dict[str, Any]) -> LatchState:
        """Read back :meth:`LatchState.to_dict`."""
        return LatchState.from_dict(data)

    def reached(self, value: float, limit: float) -> bool:
        """True when ``value`` is at or past ``limit`` on the alarm side (equality alarms)."""
        return value >= limit if self.direction is Direction.HIGH else value <= limit


ThresholdState = LatchState
"""A threshold rule keeps nothing but its latch."""


def is_stale(state: LatchState, ts_ms: int) -> bool:
    """A reading not newer than the last one evaluated (duplicate or out of order)."""
    return state.is_stale(ts_ms)


def evaluate(
    rule: ThresholdRule, state: LatchState, ts_ms: int, value: float
) -> tuple[LatchState, RuleEvent | None]:
    """Apply one reading; return the new state and the transition it caused, if any.

    Stale readings (see :func:`is_stale`) and NaN leave the state untouched: the alarm follows
    the newest value, and a replayed duplicate can never raise a second alarm.
    """
    if state.is_stale(ts_ms) or not math.isfinite(value):
        return state, None
    reached = [rule.reached(value, sp.set) for sp in rule.setpoints]
    held = [rule.reached(value, sp.clear) for sp in rule.setpoints]
    new_state, moved = latch.step(rule.delays, rule.levels, reached, held, state, ts_ms)
    if moved is None:
        return new_state, None
    return new_state, _event(rule, moved, value, ts_ms)


def _event(rule: ThresholdRule, moved: latch.Transition, value: float, ts_ms: int) -> RuleEvent:
    by_level = {int(sp.level): sp for sp in rule.setpoints}
    if moved.new > moved.old:
        crossed = by_level[moved.new]
        setpoint, label = crossed.set, crossed.label
    else:
        left = by_level[moved.old]
        setpoint, label = left.clear, left.label
    return RuleEvent(
        rule_id=rule.rule_id,
        direction=rule.direction.value,
        change=moved.change,
        level=Level(moved.new) if moved.new else None,
        previous=Level(moved.old) if moved.old else None,
        value=value,
        setpoint=setpoint,
        setpoint_label=label,
        ts_ms=ts_ms,
        start_ms=moved.start_ms,
        kind="threshold",
    )
