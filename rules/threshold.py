"""Multi-level threshold rule: per-level clear set-points (hysteresis), on- and off-delay, and
"N consecutive readings".

The value itself is the signal: a level's set-point is reached when the value is at or past it
(equality alarms), and the level is held until the value goes past its clear set-point. The
shared latch (:mod:`rules.latch`) turns that into one alarm per (sensor, rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rules import latch
from rules.events import RuleEvent
from rules.latch import LatchState
from rules.setpoints import Banded, Direction, Setpoint, check_delays, ordered_setpoints

__all__ = ["Direction", "Setpoint", "ThresholdRule", "ThresholdState", "evaluate", "is_stale"]


@dataclass(frozen=True, slots=True)
class ThresholdRule(Banded):
    """A threshold rule; set-points are checked for order and hysteresis when constructed."""

    rule_id: str
    direction: Direction
    setpoints: tuple[Setpoint, ...]
    on_delay_ms: int = 0
    off_delay_ms: int = 0
    consecutive: int = 1

    def __post_init__(self) -> None:
        check_delays(self.rule_id, self.on_delay_ms, self.off_delay_ms, self.consecutive)
        high = self.direction is Direction.HIGH
        ordered = ordered_setpoints(
            self.rule_id,
            "threshold",
            self.setpoints,
            high=high,
            clear_hint=f"a {self.direction.value} alarm clears on the {'low' if high else 'high'} "
            "side",
        )
        object.__setattr__(self, "setpoints", ordered)

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
    return new_state, rule.band_event(moved, value, ts_ms, "threshold")
