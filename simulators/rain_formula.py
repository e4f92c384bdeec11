"""Design storms: the storm-intensity formula (暴雨强度公式) and the Chicago hyetograph
(芝加哥雨型).

Chinese drainage design (GB 50014) gives each city a storm-intensity formula

    q = 167 · A1 · (1 + C · lg P) / (t + b)^n      [L/(s·ha)]

so the mean intensity over a duration of ``t`` minutes for a return period of ``P`` years is
``i = A1 (1 + C lg P) / (t + b)^n`` mm/min (q = 167 i). The defaults are the classic single
formula for Beijing, ``q = 2001 (1 + 0.811 lg P) / (t + 8)^0.711``, a textbook example: use
the formula of your own county's meteorological bureau (scenario ``formula:``), since rain
depths differ from one city to the next by a factor of two.

The Chicago hyetograph (Keifer & Chu, 1957) distributes a storm of duration ``T`` so that,
for every ``t ≤ T``, the heaviest ``t`` minutes around the peak hold exactly the depth the
formula gives for ``t``: the 1-hour peak of a 3-hour 50-year storm is itself a 1-hour
50-year rain. The peak sits at ``r · T`` (``r``, the peak ratio, is about 0.4 in Chinese
practice). Its cumulative depth has a closed form, used here so that gauges and catchments
see exact totals whatever step they are read at:

    F_r(x) = A · x / (x / r + b)^n       depth of the x minutes before the peak (r)
                                          or after it (with 1 − r)
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StormFormula:
    """``i = A1 (1 + C lg P) / (t + b)^n`` mm/min, ``t`` in minutes, ``P`` in years."""

    a1: float = 11.98
    c: float = 0.811
    b: float = 8.0
    n: float = 0.711

    def __post_init__(self) -> None:
        if self.a1 <= 0 or self.c < 0 or self.b < 0 or not 0 < self.n < 1:
            msg = "a storm formula needs A1 > 0, C ≥ 0, b ≥ 0 and 0 < n < 1"
            raise ValueError(msg)

    def scale(self, return_period_y: float) -> float:
        """``A = A1 (1 + C lg P)``."""
        if return_period_y <= 0:
            msg = f"a return period must be positive, got {return_period_y}"
            raise ValueError(msg)
        return self.a1 * (1.0 + self.c * math.log10(return_period_y))

    def intensity_mm_min(self, duration_min: float, return_period_y: float) -> float:
        """Mean intensity over ``duration_min`` minutes."""
        return self.scale(return_period_y) / math.pow(duration_min + self.b, self.n)

    def q(self, duration_min: float, return_period_y: float) -> float:
        """The formula's own unit, L/(s·ha): ``167 i``."""
        return 167.0 * self.intensity_mm_min(duration_min, return_period_y)

    def depth_mm(self, duration_min: float, return_period_y: float) -> float:
        """Rain depth over ``duration_min`` minutes."""
        return self.intensity_mm_min(duration_min, return_period_y) * duration_min


@dataclass(frozen=True, slots=True)
class ChicagoStorm:
    """One design storm: cumulative depth and intensity at any minute after its start."""

    formula: StormFormula
    return_period_y: float
    duration_min: float
    peak_ratio: float = 0.4

    def __post_init__(self) -> None:
        if not 0.0 < self.peak_ratio < 1.0:
            msg = f"the peak ratio must lie strictly between 0 and 1, got {self.peak_ratio}"
            raise ValueError(msg)
        if self.duration_min <= 0:
            msg = f"a storm must last some time, got {self.duration_min} min"
            raise ValueError(msg)

    def _f(self, x: float, ratio: float) -> float:
        a = self.formula.scale(self.return_period_y)
        return a * x / math.pow(x / ratio + self.formula.b, self.formula.n)

    @property
    def total_mm(self) -> float:
        """The whole storm's depth (the formula's depth for its duration)."""
        return self.formula.depth_mm(self.duration_min, self.return_period_y)

    def cumulative_mm(self, t_min: float) -> float:
        """Rain fallen from the start until ``t_min`` minutes after it (0 before, total after)."""
        if t_min <= 0.0:
            return 0.0
        r = self.peak_ratio
        t_peak = r * self.duration_min
        before = self._f(t_peak, r)
        if t_min <= t_peak:
            return before - self._f(t_peak - t_min, r)
        after = min(t_min, self.duration_min) - t_peak
        return before + self._f(after, 1.0 - r)

    def intensity_mm_min(self, t_min: float) -> float:
        """Instantaneous intensity (the hyetograph itself)."""
        if not 0.0 <= t_min <= self.duration_min:
            return 0.0
        a = self.formula.scale(self.return_period_y)
        b, n = self.formula.b, self.formula.n
        t_peak = self.peak_ratio * self.duration_min
        ratio = self.peak_ratio if t_min <= t_peak else 1.0 - self.peak_ratio
        x = abs(t_peak - t_min) / ratio
        return a * ((1.0 - n) * x + b) / math.pow(x + b, 1.0 + n)
