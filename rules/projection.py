"""Projection rule: minutes until the trend reaches a target, as an early warning.

"The water level will reach 警戒水位 in 30 minutes": a least-squares line is fitted to the
readings of the last ``window_ms`` (as for :mod:`rules.rate`) and followed from its value at
the newest reading to ``target``. The signal is the number of minutes that takes:

- 0 when the newest reading or the line's current value is already at or past the target;
- ``+inf`` when the line is flat or moves away from the target: no level is reached and none
  is held, so an alarm clears (after its off-delay) once the trend turns.

A ``high`` rule watches a value rising towards a target above it, a ``low`` rule a value
falling towards a target below it. Each level's ``set`` is the minutes at or below which it is
reached and ``clear`` the minutes above which it is released; a more urgent (higher) level has
fewer minutes: yellow 120, orange 60, red 30. Set-points lie within :data:`MAX_MINUTES`.

With fewer than ``min_points`` samples in the window the rule makes no judgement, as the rate
rule: nothing new is raised and the current alarm is held.

Events carry ``value`` = the minutes, capped at :data:`MAX_MINUTES` so it stays a finite
number when the trend has turned away; ``setpoint`` = the minutes set-point crossed (the clear
value of the level left when falling); ``setpoint_label`` = the target, as
:func:`target_text` writes it, e.g. ``警戒水位 103.50``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rules import latch, window
from rules.events import RuleEvent
from rules.levels import Level
from rules.setpoints import Banded, Direction, Setpoint, check_delays, ordered_setpoints

MAX_MINUTES = 7 * 24 * 60.0
"""One week: the furthest a projection looks; set-points must lie within it."""


ProjectionState = window.TrendState
"""The latch and the samples inside the window (oldest first)."""


@dataclass(frozen=True, slots=True)
class ProjectionRule(Banded, window.Trend):
    """A time-to-target rule; set-points are minutes, checked when constructed."""

    rule_id: str
    target: float
    target_label: str
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
        if not math.isfinite(self.target):
            msg = f"rule {self.rule_id!r}: the target must be a finite number"
            raise ValueError(msg)
        self.check_window("trend")
        ordered = ordered_setpoints(
            self.rule_id,
            "projection",
            self.setpoints,
            high=False,
            clear_hint="a projection clears when the target is further away (more minutes)",
        )
        for sp in ordered:
            if sp.set < 0 or sp.clear > MAX_MINUTES:
                msg = (
                    f"rule {self.rule_id!r}: {sp.level.label} set-points must be minutes "
                    f"between 0 and {MAX_MINUTES:g} (one week); got set {sp.set:g}, "
                    f"clear {sp.clear:g}"
                )
                raise ValueError(msg)
        object.__setattr__(self, "setpoints", ordered)

    @property
    def kind(self) -> str:
        """``projection``."""
        return "projection"

    def initial(self) -> ProjectionState:
        """No alarm, no samples."""
        return ProjectionState()

    def evaluate(
        self, state: ProjectionState, ts_ms: int, value: float, quality: int = 0
    ) -> tuple[ProjectionState, RuleEvent | None]:
        """See :func:`evaluate` (quality is not this kind's concern)."""
        return evaluate(self, state, ts_ms, value)

    def tick(self, state: ProjectionState, now_ms: int) -> tuple[ProjectionState, RuleEvent | None]:
        """Nothing happens between readings."""
        return state, None

    def state_from_dict(self, data: dict[str, Any]) -> ProjectionState:
        """Read back :meth:`ProjectionState.to_dict`."""
        return ProjectionState.from_dict(data)


def target_text(label: str, target: float) -> str:
    """``警戒水位 103.50``: the label, a space, the target with at least two decimals.

    More decimals are written only when the target needs them to be exact (``0.125``), and
    the label and space are left out when the label is empty.
    """
    number = f"{target:.2f}"
    if float(number) != target:
        number = repr(float(target))
    return f"{label} {number}" if label else number


def minutes_to_target(rule: ProjectionRule, samples: Sequence[window.Sample]) -> float | None:
    """Minutes until the trend reaches the target (``inf`` if never), or ``None`` when there
    are fewer than ``min_points`` samples. Rounded to 12 significant digits."""
    if not rule.enough(samples):
        return None
    line = window.fit(samples)
    if line is None:
        return None
    sign = 1.0 if rule.direction is Direction.HIGH else -1.0
    newest = samples[-1][1]
    if sign * (newest - rule.target) >= 0 or sign * (line.latest - rule.target) >= 0:
        return 0.0
    towards = sign * line.slope_per_hour
    if towards <= 0:
        return math.inf
    return window.significant(abs(rule.target - line.latest) * 60.0 / towards)


def evaluate(
    rule: ProjectionRule, state: ProjectionState, ts_ms: int, value: float
) -> tuple[ProjectionState, RuleEvent | None]:
    """Apply one reading; return the new state and the transition it caused, if any.

    Stale readings (not newer than the last one) and NaN or infinite values leave the state
    untouched.
    """
    if state.latch.is_stale(ts_ms) or not math.isfinite(value):
        return state, None
    samples = window.admit(state.samples, ts_ms, value, rule.window_ms)
    minutes = minutes_to_target(rule, samples)
    if minutes is None:
        unjudged = dataclasses.replace(state.latch, last_ts_ms=ts_ms, pending=())
        return ProjectionState(unjudged, samples), None
    reached = [minutes <= sp.set for sp in rule.setpoints]
    held = [minutes <= sp.clear for sp in rule.setpoints]
    new_latch, moved = latch.step(rule.delays, rule.levels, reached, held, state.latch, ts_ms)
    new_state = ProjectionState(new_latch, samples)
    if moved is None:
        return new_state, None
    return new_state, _event(rule, moved, minutes, ts_ms)


def _event(rule: ProjectionRule, moved: latch.Transition, minutes: float, ts_ms: int) -> RuleEvent:
    by_level = {int(sp.level): sp for sp in rule.setpoints}
    setpoint = by_level[moved.new].set if moved.new > moved.old else by_level[moved.old].clear
    return RuleEvent(
        rule_id=rule.rule_id,
        direction=rule.direction.value,
        change=moved.change,
        level=Level(moved.new) if moved.new else None,
        previous=Level(moved.old) if moved.old else None,
        value=min(minutes, MAX_MINUTES),
        setpoint=setpoint,
        setpoint_label=target_text(rule.target_label, rule.target),
        ts_ms=ts_ms,
        start_ms=moved.start_ms,
        kind="projection",
        window_ms=rule.window_ms,
    )
