"""Stuck rule: the readings have not varied by more than ε for a window.

What "stuck for ``window_ms``" means here, exactly. Readings are cut into *runs*:

- the first reading starts a run;
- a reading joins the current run if the run's values and it still lie within ε of each other
  (``max − min ≤ ε``, equality counts as no variation);
- otherwise it *breaks* the run and starts a new one on its own (the values before it are not
  carried over).

The sensor is stuck at a reading when its run began at least ``window_ms`` before it (the
run's first and current reading are ``window_ms`` or more apart) and holds at least
``min_points`` readings. The alarm raises at the first reading where that is true and clears at
the reading that breaks the run (after ``off_delay_ms``, if set).

Only the current run is kept (start, min, max, count), never the samples. The price: a new run
starts from the breaking value alone, so a suffix of the old run that would fit with the new
value is forgotten. The detector can therefore fire later than a sliding window would (a slow
drift that breaks from an old extreme restarts the count), never earlier: it never calls a
varying sensor stuck. Gaps do not break a run — two equal readings a day apart are a day of no
variation — which is why ``min_points`` must also be met; silence itself is
:mod:`rules.offline`'s job.

NaN and infinity are ignored (state unchanged), as are quality codes: a fault is
:mod:`rules.out_of_range`'s job. Stale readings change nothing. Values are compared as floats,
so ``0.3 − 0.2 ≤ 0.1`` is false; choose ε with that in mind.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from rules import quality
from rules.events import RuleEvent
from rules.latch import Delays, LatchState, Transition, cached_delays
from rules.levels import Level

KIND = "stuck"


@dataclass(frozen=True, slots=True)
class StuckRule:
    """Raise when the current run (see the module) spans ``window_ms`` and ``min_points``."""

    rule_id: str
    window_ms: int
    epsilon: float
    min_points: int = 5
    level: Level = Level.YELLOW
    off_delay_ms: int = 0

    def __post_init__(self) -> None:
        if self.window_ms <= 0:
            msg = (
                f"rule {self.rule_id!r}: the window must be a positive number of milliseconds, "
                f"got {self.window_ms}"
            )
            raise ValueError(msg)
        quality.check_finite(self.rule_id, "epsilon", self.epsilon)
        if self.epsilon < 0:
            msg = (
                f"rule {self.rule_id!r}: epsilon {self.epsilon:g} is negative; it is the "
                "largest variation still counted as none (0 means exactly equal readings)"
            )
            raise ValueError(msg)
        if self.min_points < 2:
            msg = (
                f"rule {self.rule_id!r}: min_points must be at least 2 (one reading cannot "
                f"show a lack of variation), got {self.min_points}"
            )
            raise ValueError(msg)
        quality.check_delays(self.rule_id, 0, self.off_delay_ms)
        object.__setattr__(self, "level", quality.as_level(self.rule_id, self.level))

    @property
    def delays(self) -> Delays:
        """Only an off-delay: the window already is the on-delay."""
        return cached_delays(0, self.off_delay_ms)

    @property
    def kind(self) -> str:
        """``stuck``."""
        return KIND

    def initial(self) -> StuckState:
        """No alarm, no run."""
        return StuckState()

    def evaluate(
        self, state: StuckState, ts_ms: int, value: float, quality: int = 0
    ) -> tuple[StuckState, RuleEvent | None]:
        """See :func:`evaluate` (quality is not this kind's concern)."""
        return evaluate(self, state, ts_ms, value)

    def tick(self, state: StuckState, now_ms: int) -> tuple[StuckState, RuleEvent | None]:
        """Nothing happens between readings."""
        return state, None

    def state_from_dict(self, data: dict[str, Any]) -> StuckState:
        """Read back :meth:`StuckState.to_dict`."""
        return StuckState.from_dict(data)


@dataclass(frozen=True, slots=True)
class StuckState:
    """The latch and the current run: when it began, its lowest and highest value, its size.

    ``run_count`` stops counting at the rule's ``min_points`` (more would change nothing), so the
    state stays the same size however long a sensor is stuck. ``run_start_ms`` is ``None``
    before the first reading.
    """

    latch: LatchState = field(default_factory=LatchState)
    run_start_ms: int | None = None
    run_min: float = 0.0
    run_max: float = 0.0
    run_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the run's values are always finite)."""
        return {
            "latch": self.latch.to_dict(),
            "run_start_ms": self.run_start_ms,
            "run_min": self.run_min,
            "run_max": self.run_max,
            "run_count": self.run_count,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StuckState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            latch=LatchState.from_dict(data["latch"]),
            run_start_ms=quality.opt_int(data.get("run_start_ms")),
            run_min=float(data.get("run_min", 0.0)),
            run_max=float(data.get("run_max", 0.0)),
            run_count=int(data.get("run_count", 0)),
        )


def evaluate(
    rule: StuckRule, state: StuckState, ts_ms: int, value: float
) -> tuple[StuckState, RuleEvent | None]:
    """Apply one reading: extend or break the run, then raise or clear.

    The event's value is the reading; its set-point is ε (the largest variation counted as
    none), its direction ``low`` (the variation fell to ε or below) and its window the rule's
    ``window_ms``.
    """
    if state.latch.is_stale(ts_ms) or not math.isfinite(value):
        return state, None
    low, high = min(state.run_min, value), max(state.run_max, value)
    if state.run_start_ms is not None and high - low <= rule.epsilon:
        run = dataclasses.replace(
            state,
            run_min=low,
            run_max=high,
            run_count=min(state.run_count + 1, rule.min_points),
        )
    else:
        run = dataclasses.replace(
            state, run_start_ms=ts_ms, run_min=value, run_max=value, run_count=1
        )
    start = ts_ms if run.run_start_ms is None else run.run_start_ms
    stuck = run.run_count >= rule.min_points and ts_ms - start >= rule.window_ms
    stepped, moved = quality.step_one(rule.delays, rule.level, stuck, state.latch, ts_ms)
    new_state = dataclasses.replace(run, latch=stepped)
    if moved is None:
        return new_state, None
    return new_state, _event(rule, moved, value, ts_ms)


def _event(rule: StuckRule, moved: Transition, value: float, ts_ms: int) -> RuleEvent:
    return quality.make_event(
        rule.rule_id,
        KIND,
        moved,
        direction="low",
        value=value,
        setpoint=rule.epsilon,
        label="窗口内变化幅度",
        ts_ms=ts_ms,
        window_ms=rule.window_ms,
    )
