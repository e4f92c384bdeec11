"""What a rule says when its alarm changes: raised, level changed (up or down), or cleared."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from rules.levels import Level


class Change(StrEnum):
    """The kind of transition a rule reports for its one alarm per (sensor, rule)."""

    RAISED = "raised"
    LEVEL_CHANGED = "level_changed"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class RuleEvent:
    """A transition of the alarm of one rule of one sensor.

    ``direction`` is ``high`` or ``low`` (which side of the set-point alarms).
    ``setpoint`` is the set-point crossed: the set value of the new level when the level rises,
    the clear value of the level left when it falls or clears. ``start_ms`` is when the alarm
    first became active, so every event of one alarm carries the same start.
    ``flapping`` says the alarm is chattering (see :mod:`rules.latch`): its level has changed
    too often over the last evaluations, and re-notification should wait until it settles. The
    flag turning on or off is not an event by itself; the next transition carries it.
    """

    rule_id: str
    direction: str
    change: Change
    level: Level | None
    previous: Level | None
    value: float
    setpoint: float
    setpoint_label: str
    ts_ms: int
    start_ms: int
    kind: str = "threshold"
    window_ms: int | None = None
    """The window the value was computed over (rate, accumulation), if any."""
    flapping: bool = False
    """The latch's flapping flag after this transition."""


def with_flapping(event: RuleEvent, flapping: bool) -> RuleEvent:
    """``event`` with its ``flapping`` flag set (the engine passes the new state's
    ``latch.flapping``; kinds build events without it)."""
    return event if event.flapping == flapping else replace(event, flapping=flapping)
