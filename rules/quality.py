"""What the data-quality kinds share: one alarm level each, and the same validation words.

The data-quality kinds say whether a sensor's data can be trusted, not what it measures:

- :mod:`rules.offline` — no data for ``factor`` × the reporting interval (clock-driven);
- :mod:`rules.stuck` — no variation beyond ε for a window;
- :mod:`rules.out_of_range` — outside the instrument range, or a device fault code;
- :mod:`rules.spike` — a robust (median/MAD) outlier.

Each has a single, configurable level and runs it through the shared latch
(:func:`rules.latch.step` with one level) so on- and off-delays behave as for thresholds. The
condition is its own clear condition: these kinds have no hysteresis band, a level is held
exactly while its condition holds.
"""

from __future__ import annotations

import math
from typing import Any

from rules import latch
from rules.events import RuleEvent
from rules.latch import Delays, LatchState
from rules.levels import Level


def as_level(rule_id: str, value: object) -> Level:
    """The rule's level: a :class:`Level`, its integer, or a name ``Level.parse`` accepts."""
    if isinstance(value, Level):
        return value
    try:
        if isinstance(value, str):
            return Level.parse(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return Level(value)
    except ValueError as exc:
        msg = f"rule {rule_id!r}: {exc}"
        raise ValueError(msg) from None
    msg = f"rule {rule_id!r}: level must be one of blue, yellow, orange, red; got {value!r}"
    raise ValueError(msg)


def check_delays(rule_id: str, on_delay_ms: int, off_delay_ms: int, consecutive: int = 1) -> None:
    """Refuse negative delays and fewer than one consecutive reading, naming the rule."""
    try:
        Delays(on_delay_ms, off_delay_ms, consecutive)
    except ValueError as exc:
        msg = f"rule {rule_id!r}: {exc}"
        raise ValueError(msg) from None


def check_finite(rule_id: str, name: str, value: float) -> None:
    """Refuse NaN and infinity for a set-point."""
    if not math.isfinite(value):
        msg = f"rule {rule_id!r}: {name} must be a finite number, got {value!r}"
        raise ValueError(msg)


def step_one(
    delays: Delays, level: Level, condition: bool, state: LatchState, ts_ms: int
) -> tuple[LatchState, latch.Transition | None]:
    """Advance a one-level latch: the level is reached, and held, exactly while ``condition``."""
    return latch.step(delays, (int(level),), (condition,), (condition,), state, ts_ms)


def opt_int(value: Any) -> int | None:
    """``None`` stays ``None``; anything else becomes an ``int`` (for ``from_dict``)."""
    return None if value is None else int(value)


def make_event(
    rule_id: str,
    kind: str,
    moved: latch.Transition,
    *,
    direction: str,
    value: float,
    setpoint: float,
    label: str,
    ts_ms: int,
    window_ms: int | None,
) -> RuleEvent:
    """The :class:`RuleEvent` of a transition of a one-level latch."""
    return RuleEvent(
        rule_id=rule_id,
        direction=direction,
        change=moved.change,
        level=Level(moved.new) if moved.new else None,
        previous=Level(moved.old) if moved.old else None,
        value=value,
        setpoint=setpoint,
        setpoint_label=label,
        ts_ms=ts_ms,
        start_ms=moved.start_ms,
        kind=kind,
        window_ms=window_ms,
    )
