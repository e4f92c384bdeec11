"""Rate-of-change rule: the least-squares slope over a time window, in units per hour.

A water level rising 0.5 m/h, a tank pressure falling 20 kPa/h: the trend over ``window_ms``
is the signal, judged like a threshold value. A ``high`` rule alarms when the slope is at or
above a level's set-point (rising; set-points above zero), a ``low`` rule when it is at or
below it (falling; set-points below zero). Each level has its own clear set-point
(hysteresis) and the shared latch (:mod:`rules.latch`) applies the delays.

The slope is fitted to every sample in ``[ts - window_ms, ts]`` of the newest reading (see
:mod:`rules.window` for how many are kept). With fewer than ``min_points`` samples in the
window (the first readings, or after a gap in the data) the rule makes no judgement: no level
is reached, so nothing new is raised and a level about to be raised starts its on-delay again,
and the current alarm is held as it is, so an alarm does not clear just because data is
missing. It clears once enough fresh readings show a slope past its clear set-point.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rules import latch, window
from rules.events import RuleEvent
from rules.setpoints import Banded, Direction, Setpoint, check_delays, ordered_setpoints

RateState = window.TrendState
"""The latch and the samples inside the window (oldest first)."""


@dataclass(frozen=True, slots=True)
class RateRule(Banded, window.Trend):
    """A rate-of-change rule; set-points (units per hour) are checked when constructed."""

    rule_id: str
    direction: Direction
    setpoints: tuple[Setpoint, ...]
    window_ms: int
    min_points: int = 3
    on_delay_ms: int = 0
    off_delay_ms: int = 0
    consecutive: int = 1
    min_span_ms: int = 0
    """How much time the samples must cover before a trend is judged. A few readings seconds
    apart make a steep "trend" out of noise; the registry sets half the window by default."""

    def __post_init__(self) -> None:
        check_delays(self.rule_id, self.on_delay_ms, self.off_delay_ms, self.consecutive)
        self.check_window("slope")
        high = self.direction is Direction.HIGH
        ordered = ordered_setpoints(
            self.rule_id,
            "rate",
            self.setpoints,
            high=high,
            clear_hint=(
                f"a {self.direction.value} rate alarm clears on the "
                f"{'low' if high else 'high'} side"
            ),
        )
        for sp in ordered:
            if (sp.set <= 0) if high else (sp.set >= 0):
                msg = (
                    f"rule {self.rule_id!r}: {sp.level.label} set-point {sp.set:g} per hour "
                    f"must be {'above' if high else 'below'} zero for a "
                    f"{'rising (high)' if high else 'falling (low)'} rate"
                )
                raise ValueError(msg)
        object.__setattr__(self, "setpoints", ordered)

    @property
    def kind(self) -> str:
        """``rate``."""
        return "rate"

    def initial(self) -> RateState:
        """No alarm, no samples."""
        return RateState()

    def evaluate(
        self, state: RateState, ts_ms: int, value: float, quality: int = 0
    ) -> tuple[RateState, RuleEvent | None]:
        """See :func:`evaluate` (quality is not this kind's concern)."""
        return evaluate(self, state, ts_ms, value)

    def tick(self, state: RateState, now_ms: int) -> tuple[RateState, RuleEvent | None]:
        """Nothing happens between readings."""
        return state, None

    def state_from_dict(self, data: dict[str, Any]) -> RateState:
        """Read back :meth:`RateState.to_dict`."""
        return RateState.from_dict(data)


def slope(rule: RateRule, samples: Sequence[window.Sample]) -> float | None:
    """The slope in units per hour, or ``None`` with fewer than ``min_points`` samples.

    Rounded to 12 significant digits (:func:`rules.window.significant`).
    """
    if not rule.enough(samples):
        return None
    line = window.fit(samples)
    return None if line is None else window.significant(line.slope_per_hour)


def evaluate(
    rule: RateRule, state: RateState, ts_ms: int, value: float
) -> tuple[RateState, RuleEvent | None]:
    """Apply one reading; return the new state and the transition it caused, if any.

    Stale readings (not newer than the last one) and NaN or infinite values leave the state
    untouched.
    """
    if state.latch.is_stale(ts_ms) or not math.isfinite(value):
        return state, None
    samples = window.admit(state.samples, ts_ms, value, rule.window_ms)
    signal = slope(rule, samples)
    if signal is None:
        unjudged = dataclasses.replace(state.latch, last_ts_ms=ts_ms, pending=())
        return RateState(unjudged, samples), None
    reached = [rule.reached(signal, sp.set) for sp in rule.setpoints]
    held = [rule.reached(signal, sp.clear) for sp in rule.setpoints]
    new_latch, moved = latch.step(rule.delays, rule.levels, reached, held, state.latch, ts_ms)
    new_state = RateState(new_latch, samples)
    if moved is None:
        return new_state, None
    return new_state, rule.band_event(moved, signal, ts_ms, "rate", window_ms=rule.window_ms)
