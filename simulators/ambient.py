"""Outdoor air temperature: the diurnal cycle tanks and outdoor thermometers follow."""

from __future__ import annotations

import math

from simulators.scenario import Ambient

DAY_MS = 86_400_000


def ambient_c(ambient: Ambient, t_ms: int, utc_offset_s: int) -> float:
    """Air temperature at ``t_ms``: a cosine over the local day, warmest at ``warmest_hour``."""
    local_h = ((t_ms + utc_offset_s * 1000) % DAY_MS) / 3_600_000
    phase = 2.0 * math.pi * (local_h - ambient.warmest_hour) / 24.0
    return ambient.mean_c + ambient.amplitude_c * math.cos(phase)
