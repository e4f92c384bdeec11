"""Spike rule: a robust outlier, judged by the median and MAD of the readings before it.

A reading ``v`` is an *outlier* when the window (up to ``window_points`` earlier accepted
readings, not ``v`` itself) holds at least ``min_points`` values and

    |v − median| > k × scale,   scale = max(1.4826 × MAD, min_scale)

where MAD is the median absolute deviation from the median (1.4826 × MAD estimates the standard
deviation of normal data, so ``k`` is a robust z-score). ``min_scale`` is an absolute floor for a
flat window (MAD = 0): only values further than ``k × min_scale`` from the median count then.
With fewer than ``min_points`` values in the window nothing is judged; the reading is taken in.

Outliers are kept out of the window, so one bad value does not widen the scale. A level shift
is not kept out for ever: once ``consecutive_shift`` readings in a row are outliers they are all
taken into the window, and so is every further outlier of that unbroken run. Isolated outliers
(a run shorter than ``consecutive_shift``) never enter the window.

The alarm raises at an outlier and clears at the next reading that is not one (after
``off_delay_ms``, if set). Every outlier is a spike, including those of a level shift taken into
the window: after a genuine step the alarm therefore stays up until the step's readings make up
about half the window and the median has moved — roughly ``window_points / 2`` readings —
then clears by itself.

NaN and infinity are ignored (state unchanged), as are quality codes; stale readings change
nothing. The state holds the window and the current run of outliers not yet taken in.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rules import quality
from rules.events import RuleEvent
from rules.latch import Delays, LatchState, Transition, cached_delays
from rules.levels import Level

KIND = "spike"
MAD_TO_SIGMA = 1.4826
"""1.4826 × MAD estimates the standard deviation of normally distributed data."""


@dataclass(frozen=True, slots=True)
class SpikeRule:
    """Raise at a reading more than ``k`` robust standard deviations from the recent median."""

    rule_id: str
    window_points: int = 30
    k: float = 6.0
    min_points: int = 10
    min_scale: float = 1e-9
    consecutive_shift: int = 3
    level: Level = Level.BLUE
    off_delay_ms: int = 0

    def __post_init__(self) -> None:
        if self.min_points < 3:
            msg = (
                f"rule {self.rule_id!r}: min_points must be at least 3 (a median and spread "
                f"need a few readings), got {self.min_points}"
            )
            raise ValueError(msg)
        if self.window_points < self.min_points:
            msg = (
                f"rule {self.rule_id!r}: window_points {self.window_points} is smaller than "
                f"min_points {self.min_points}; the window could never hold enough readings"
            )
            raise ValueError(msg)
        quality.check_finite(self.rule_id, "k", self.k)
        if self.k <= 0:
            msg = f"rule {self.rule_id!r}: k must be above 0 (robust z-score), got {self.k:g}"
            raise ValueError(msg)
        quality.check_finite(self.rule_id, "min_scale", self.min_scale)
        if self.min_scale <= 0:
            msg = (
                f"rule {self.rule_id!r}: min_scale must be above 0 (the spread assumed for a "
                f"flat window), got {self.min_scale:g}"
            )
            raise ValueError(msg)
        if self.consecutive_shift < 1:
            msg = (
                f"rule {self.rule_id!r}: consecutive_shift must be at least 1, "
                f"got {self.consecutive_shift}"
            )
            raise ValueError(msg)
        quality.check_delays(self.rule_id, 0, self.off_delay_ms)
        object.__setattr__(self, "level", quality.as_level(self.rule_id, self.level))

    @property
    def delays(self) -> Delays:
        """Only an off-delay: a spike is one reading, there is nothing to wait for."""
        return cached_delays(0, self.off_delay_ms)

    @property
    def kind(self) -> str:
        """``spike``."""
        return KIND

    def initial(self) -> SpikeState:
        """No alarm, empty window."""
        return SpikeState()

    def evaluate(
        self, state: SpikeState, ts_ms: int, value: float, quality: int = 0
    ) -> tuple[SpikeState, RuleEvent | None]:
        """See :func:`evaluate` (quality is not this kind's concern)."""
        return evaluate(self, state, ts_ms, value)

    def tick(self, state: SpikeState, now_ms: int) -> tuple[SpikeState, RuleEvent | None]:
        """Nothing happens between readings."""
        return state, None

    def state_from_dict(self, data: dict[str, Any]) -> SpikeState:
        """Read back :meth:`SpikeState.to_dict`."""
        return SpikeState.from_dict(data)

    def spread(self, window: Sequence[float]) -> tuple[float, float] | None:
        """``(median, k × scale)`` of ``window``, or ``None`` below ``min_points`` values."""
        if len(window) < self.min_points:
            return None
        median = statistics.median(window)
        mad = statistics.median([abs(x - median) for x in window])
        return median, self.k * max(MAD_TO_SIGMA * mad, self.min_scale)


@dataclass(frozen=True, slots=True)
class SpikeState:
    """The latch, the window (oldest first), and the current run of outliers.

    ``run`` counts consecutive outliers, stopping at ``consecutive_shift``; ``held`` are those
    of them not yet taken into the window (empty once the run has reached the shift).
    """

    latch: LatchState = field(default_factory=LatchState)
    window: tuple[float, ...] = ()
    held: tuple[float, ...] = ()
    run: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the values are always finite)."""
        return {
            "latch": self.latch.to_dict(),
            "window": list(self.window),
            "held": list(self.held),
            "run": self.run,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpikeState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            latch=LatchState.from_dict(data["latch"]),
            window=tuple(float(v) for v in data.get("window", ())),
            held=tuple(float(v) for v in data.get("held", ())),
            run=int(data.get("run", 0)),
        )


def evaluate(
    rule: SpikeRule, state: SpikeState, ts_ms: int, value: float
) -> tuple[SpikeState, RuleEvent | None]:
    """Apply one reading: judge it against the window, then take it in or hold it out.

    The event's value is the reading; its set-point the bound on the reading's side
    (``median ± k·scale`` of the window before it) and its direction that side.
    """
    if state.latch.is_stale(ts_ms) or not math.isfinite(value):
        return state, None
    spread = rule.spread(state.window)
    outlier = spread is not None and abs(value - spread[0]) > spread[1]
    window: tuple[float, ...] = state.window
    held: tuple[float, ...] = ()
    if not outlier:
        window, run = (*window, value), 0
    elif state.run + 1 >= rule.consecutive_shift:
        window, run = (*window, *state.held, value), rule.consecutive_shift
    else:
        held, run = (*state.held, value), state.run + 1
    stepped, moved = quality.step_one(rule.delays, rule.level, outlier, state.latch, ts_ms)
    new_state = dataclasses.replace(
        state, latch=stepped, window=window[-rule.window_points :], held=held, run=run
    )
    if moved is None:
        return new_state, None
    return new_state, _event(rule, moved, value, spread, ts_ms)


def _event(
    rule: SpikeRule,
    moved: Transition,
    value: float,
    spread: tuple[float, float] | None,
    ts_ms: int,
) -> RuleEvent:
    median, reach = spread if spread is not None else (value, 0.0)
    above = value >= median
    return quality.make_event(
        rule.rule_id,
        KIND,
        moved,
        direction="high" if above else "low",
        value=value,
        setpoint=median + reach if above else median - reach,
        label=f"中位数 {'+' if above else '−'} {rule.k:g}×1.4826×MAD",
        ts_ms=ts_ms,
        window_ms=None,
    )
