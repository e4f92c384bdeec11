"""What a panel draws as threshold lines, read from a sensor's rules.

A duty officer judges a curve by the lines it must not cross, so every line comes from the
same rule objects the engine evaluates (never a copy typed into the dashboard): a threshold
rule's set-points for the value, a rate rule's for the rise rate, an accumulation rule's
windows for rolling rainfall. A rainfall gauge without accumulation rules falls back to the
CMA rainstorm-signal lines of the shared domain notes.
"""

from __future__ import annotations

from dataclasses import dataclass

from earlywarn.model import Level, Sensor
from rules.accumulation import AccumulationRule
from rules.rate import RateRule
from rules.setpoints import Setpoint
from rules.threshold import ThresholdRule

__all__ = [
    "CMA_RAINSTORM",
    "HOUR_MS",
    "Line",
    "envelope",
    "rain_lines",
    "rain_windows_h",
    "rate_lines",
    "value_lines",
]

HOUR_MS = 3_600_000

STANDARD_RAIN_WINDOWS_H = (1, 3, 6, 24)
"""The rolling windows every rainfall dashboard shows (flash-flood critical rainfall)."""

CMA_RAINSTORM: tuple[tuple[int, float, Level], ...] = (
    (12, 50.0, Level.BLUE),
    (6, 50.0, Level.YELLOW),
    (3, 50.0, Level.ORANGE),
    (3, 100.0, Level.RED),
)
"""CMA rainstorm warning signals (window hours, mm, level): the fallback lines for a gauge
whose rules give none."""


@dataclass(frozen=True, slots=True, order=True)
class Line:
    """One threshold line: a value, the level it raises and the rule's label for it."""

    value: float
    level: Level
    label: str = ""


def _from_setpoints(setpoints: tuple[Setpoint, ...]) -> list[Line]:
    return [Line(sp.set, sp.level, sp.label) for sp in setpoints]


def value_lines(sensor: Sensor) -> list[Line]:
    """Set-points of the sensor's threshold rules (high and low), sorted by value."""
    lines: list[Line] = []
    for rule in sensor.rules:
        if isinstance(rule, ThresholdRule):
            lines.extend(_from_setpoints(rule.setpoints))
    return sorted(set(lines))


def rate_lines(sensor: Sensor) -> list[Line]:
    """Set-points of the sensor's rate rules, in the sensor's unit per hour."""
    lines: list[Line] = []
    for rule in sensor.rules:
        if isinstance(rule, RateRule):
            lines.extend(_from_setpoints(rule.setpoints))
    return sorted(set(lines))


def _accumulation_rules(sensor: Sensor) -> list[AccumulationRule]:
    return [r for r in sensor.rules if isinstance(r, AccumulationRule)]


def rain_windows_h(sensor: Sensor) -> list[int]:
    """The standard 1/3/6/24 h windows plus every whole-hour window the sensor's rules judge
    (12 h for the CMA blue signal)."""
    windows = set(STANDARD_RAIN_WINDOWS_H)
    rules = _accumulation_rules(sensor)
    for rule in rules:
        for level in rule.levels:
            windows.update(
                w.window_ms // HOUR_MS for w in level.windows if w.window_ms % HOUR_MS == 0
            )
    if not rules:
        windows.update(hours for hours, _mm, _level in CMA_RAINSTORM)
    return sorted(windows)


def rain_lines(sensor: Sensor, hours: int) -> list[Line]:
    """The rolling-sum set-points of one window, over all the sensor's accumulation rules
    (or the CMA signals when it has none), reduced to their :func:`envelope`."""
    lines: list[Line] = []
    rules = _accumulation_rules(sensor)
    for rule in rules:
        for level in rule.levels:
            lines.extend(
                Line(w.set, level.level, level.label)
                for w in level.windows
                if w.window_ms == hours * HOUR_MS
            )
    if not rules:
        lines = [Line(mm, level, "") for h, mm, level in CMA_RAINSTORM if h == hours]
    return envelope(lines)


def envelope(lines: list[Line]) -> list[Line]:
    """The lines where the highest level reached changes, for a signal that alarms rising.

    Two rules on one rain window (CMA orange at 50 mm in 3 h, flash-flood blue at 55 mm)
    overlap: past 50 mm the alarm is already orange, so a blue line at 55 would only confuse.
    A line is kept when its level is above every level reached at or below its value.
    """
    kept: list[Line] = []
    for line in sorted(lines, key=lambda ln: (ln.value, -ln.level)):
        if all(line.level > k.level for k in kept):
            kept.append(line)
    return kept
