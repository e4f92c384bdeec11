"""Durations as written in YAML and on the command line: ``30``, ``30s``, ``5min``, ``2h``."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def parse_seconds(value: object) -> float:
    """Seconds from a number (already seconds) or a string with a unit; ``ValueError`` if not."""
    if isinstance(value, bool):
        msg = f"expected a duration such as 30s, 5min or 2h, got {value!r}"
        raise ValueError(msg)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _PATTERN.match(value.lower())):
        number, unit = match.groups()
        if unit not in _UNITS and unit != "":
            msg = f"unknown time unit {unit!r} in {value!r}: use ms, s, min, h or d"
            raise ValueError(msg)
        seconds = float(number) * _UNITS.get(unit, 1.0)
    else:
        msg = f"expected a duration such as 30s, 5min or 2h, got {value!r}"
        raise ValueError(msg)
    if not math.isfinite(seconds) or seconds < 0:
        msg = f"a duration must be a finite, non-negative time, got {value!r}"
        raise ValueError(msg)
    return seconds
