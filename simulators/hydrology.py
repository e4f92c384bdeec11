"""Water levels that answer rain hours later: a river reach and a reservoir.

Rain on the catchment (the mean over its gauges, from the shared :class:`RainField`) becomes
effective rain (``runoff`` coefficient), delayed by ``lag_h`` of travel time, and runs through
a Nash cascade: ``N`` linear reservoirs of ``K`` hours in series (``dS/dt = I − S/K``). Its
response to a burst peaks ``(N − 1) K`` hours later and recedes slowly, the rising and falling
limbs of a real hydrograph; with N = 3 and K = 1.5 h a storm upstream lifts the river about
three hours after its peak. Each reservoir is stepped exactly for its inflow over the step
(the upstream reservoir's mean outflow), so no water is created or lost.

- **River**: discharge is base flow plus the cascade's outflow, and the stage comes from the
  reach's rating curve ``Q = a (H − H0)^b``.
- **Reservoir**: level-pool routing, ``A_s dH/dt = I − O(H)``, with a constant gate release and
  a free spillway ``C L (H − crest)^1.5`` above the crest (Heun steps).
"""

from __future__ import annotations

import math

from simulators.rain import RainField
from simulators.scenario import Catchment, Rating, Reservoir
from simulators.timeline import step_through

MAX_STEP_MS = 60_000


class NashCascade:
    """Direct runoff of a catchment (m³/s) at the outlet, from the rain field."""

    def __init__(self, catchment: Catchment, field: RainField, start_ms: int) -> None:
        if catchment.reservoirs < 1 or catchment.k_h <= 0 or catchment.area_km2 <= 0:
            msg = "a catchment needs at least one reservoir, K > 0 and an area > 0"
            raise ValueError(msg)
        self.catchment = catchment
        self.field = field
        self.t_ms = start_ms
        self.storage_m3 = [0.0] * catchment.reservoirs
        self.outflow_m3_s = 0.0
        self.rained_m3 = 0.0
        self.released_m3 = 0.0
        """Effective rain taken in and water let out since the start: with what is stored
        they balance exactly (the cascade neither creates nor loses water)."""
        self._lag_ms = round(catchment.lag_h * 3_600_000)
        self._start_ms = start_ms

    def _rain_m3(self, a_ms: int, b_ms: int) -> float:
        c = self.catchment
        lo, hi = max(a_ms - self._lag_ms, self._start_ms), max(b_ms - self._lag_ms, self._start_ms)
        depth = self.field.mean_depth_mm(c.gauges, hi) - self.field.mean_depth_mm(c.gauges, lo)
        return c.runoff * depth / 1000.0 * c.area_km2 * 1e6

    def _step(self, a_ms: int, b_ms: int) -> None:
        dt = (b_ms - a_ms) / 1000.0
        k = self.catchment.k_h * 3600.0
        decay = math.exp(-dt / k)
        rain = self._rain_m3(a_ms, b_ms)
        self.rained_m3 += rain
        inflow = rain / dt
        for i, stored in enumerate(self.storage_m3):
            steady = inflow * k
            after = steady + (stored - steady) * decay
            inflow = (inflow * dt + stored - after) / dt  # mean outflow: what went in, less kept
            self.storage_m3[i] = after
        self.released_m3 += inflow * dt
        self.outflow_m3_s = self.storage_m3[-1] / k

    def advance(self, t_ms: int) -> None:
        """Integrate up to ``t_ms``."""
        if t_ms > self.t_ms:
            step_through(self.t_ms, t_ms, MAX_STEP_MS, lambda _t: None, self._step)
            self.t_ms = t_ms


class RiverStage:
    """A river gauge: base flow plus direct runoff through the rating curve."""

    def __init__(self, cascade: NashCascade, rating: Rating) -> None:
        if rating.a <= 0 or rating.b <= 0:
            msg = "a rating curve needs a > 0 and b > 0"
            raise ValueError(msg)
        self.cascade = cascade
        self.rating = rating

    def discharge_m3_s(self, t_ms: int) -> float:
        """Flow past the gauge."""
        self.cascade.advance(t_ms)
        return self.cascade.catchment.base_flow + self.cascade.outflow_m3_s

    def value(self, t_ms: int) -> float:
        """Stage (m) at ``t_ms``."""
        q = self.discharge_m3_s(t_ms)
        return self.rating.zero_stage + math.pow(max(q, 0.0) / self.rating.a, 1.0 / self.rating.b)


class ReservoirLevel:
    """A reservoir's water level, filled by its catchment and drained by gate and spillway."""

    def __init__(self, cascade: NashCascade, reservoir: Reservoir, start_ms: int) -> None:
        if reservoir.surface_km2 <= 0:
            msg = "a reservoir needs a positive surface area"
            raise ValueError(msg)
        self.cascade = cascade
        self.reservoir = reservoir
        self.level_m = reservoir.level_m
        self.t_ms = start_ms

    def outflow_m3_s(self, level_m: float) -> float:
        """Gate release plus the spillway's discharge at ``level_m``."""
        r = self.reservoir
        head = max(level_m - r.crest_m, 0.0)
        release = r.release_m3s if level_m > 0 else 0.0
        return release + r.coefficient * r.spillway_width_m * math.pow(head, 1.5)

    def _step(self, a_ms: int, b_ms: int) -> None:
        dt = (b_ms - a_ms) / 1000.0
        self.cascade.advance(b_ms)
        inflow = self.cascade.catchment.base_flow + self.cascade.outflow_m3_s
        area = self.reservoir.surface_km2 * 1e6
        first = (inflow - self.outflow_m3_s(self.level_m)) / area
        guess = self.level_m + first * dt
        second = (inflow - self.outflow_m3_s(guess)) / area
        self.level_m += 0.5 * (first + second) * dt

    def advance(self, t_ms: int) -> None:
        """Integrate up to ``t_ms``."""
        if t_ms > self.t_ms:
            step_through(self.t_ms, t_ms, MAX_STEP_MS, lambda _t: None, self._step)
            self.t_ms = t_ms

    def value(self, t_ms: int) -> float:
        """Water level (m) at ``t_ms``."""
        self.advance(t_ms)
        return self.level_m
