"""The console sink: one line per alarm event, for the demo, ``run`` and the duty room log.

Each line carries time, level, enterprise, site, sensor, value, set-point and the message, and
ends with ``(flapping: notifications held)`` while the alarm is chattering.
Colours only when writing to a terminal, so logs and pipes stay plain text.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TextIO

from earlywarn.model import AlarmEvent, Change, Level, format_value, signal_unit

_COLOURS = {
    Level.BLUE: "\033[94m",
    Level.YELLOW: "\033[93m",
    Level.ORANGE: "\033[38;5;208m",
    Level.RED: "\033[91m",
}
_GREEN = "\033[92m"
_RESET = "\033[0m"
_ARROWS = {Change.RAISED: "▲ raised ", Change.CLEARED: "✔ cleared"}
FLAPPING_NOTE = "(flapping: notifications held)"
"""Appended to the line of an event whose alarm is flapping."""


def format_event(event: AlarmEvent, *, colour: bool = False) -> str:
    """One line describing an event."""
    when = datetime.fromtimestamp(event.ts_ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    level = event.level.label.upper() if event.level else "CLEARED"
    if event.change is Change.LEVEL_CHANGED:
        up = event.previous is not None and event.level is not None and event.level > event.previous
        arrow = "▲ higher " if up else "▼ lower  "
    else:
        arrow = _ARROWS[event.change]
    tag = f"{level:<7}"
    if colour:
        tint = _COLOURS[event.level] if event.level else _GREEN
        tag = f"{tint}{tag}{_RESET}"
    label = f" {event.setpoint_label}" if event.setpoint_label else ""
    unit = signal_unit(event.rule_kind, event.unit)
    flapping = f"  {FLAPPING_NOTE}" if event.flapping else ""
    return (
        f"{when}  {tag} {arrow}  {event.enterprise_name} | {event.site_name} | "
        f"{event.sensor_id}  {event.rule}  value {format_value(event.value, unit)}  set-point "
        f"{format_value(event.setpoint, unit)}{label}  — {event.message}{flapping}"
    )


class ConsoleSink:
    """Prints every event as it happens."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._colour = self._out.isatty()

    def emit(self, event: AlarmEvent) -> None:
        """Print one line and flush, so a watching operator sees it at once."""
        self._out.write(format_event(event, colour=self._colour) + "\n")
        self._out.flush()
