"""Rain over the gauges, and tipping-bucket gauges reading it.

:class:`RainField` knows, for every gauge, how much rain has fallen since the scenario began:
design storms (exact, from the Chicago hyetograph's closed form) and steady rain, each scaled
per gauge. Catchments above water-level gauges read the same field, so a storm over the
gauges is the storm the river sees.

:class:`TippingBucket` turns depth into tips of 0.1, 0.2 or 0.5 mm. The bucket starts partly
filled (a random fraction of one tip, from the seed), so two gauges under the same rain tip
at different moments, as real ones do. It reports either the rain since its previous report
(``interval``, as SL 651 stations send 5-minute rain) or a counter (``cumulative``) that only
falls at a declared reset or when it wraps at ``counter_max``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulators.rain_formula import ChicagoStorm
from simulators.scenario import CounterReset, Rain, RainParams, Storm

BUCKETS_MM = (0.1, 0.2, 0.5)


@dataclass(frozen=True, slots=True)
class _PlacedStorm:
    storm: ChicagoStorm
    start_ms: int
    scale: float

    def depth_mm(self, t_ms: int) -> float:
        return self.scale * self.storm.cumulative_mm((t_ms - self.start_ms) / 60_000.0)


@dataclass(frozen=True, slots=True)
class _PlacedRain:
    rain: Rain

    def depth_mm(self, t_ms: int) -> float:
        w = self.rain.window
        end = t_ms if w.end_ms is None else min(t_ms, w.end_ms)
        return max(end - w.start_ms, 0) / 3_600_000.0 * self.rain.intensity_mm_h


class RainField:
    """Cumulative rain depth at each gauge (by sensor uid) since the scenario's start."""

    def __init__(self, storms: Sequence[Storm], rains: Sequence[Rain]) -> None:
        self._parts: dict[str, list[_PlacedStorm | _PlacedRain]] = {}
        for s in storms:
            shape = ChicagoStorm(s.formula, s.return_period_y, s.duration_s / 60.0, s.peak_ratio)
            for uid, scale in s.gauges:
                self._parts.setdefault(uid, []).append(_PlacedStorm(shape, s.start_ms, scale))
        for r in rains:
            for uid in r.gauges:
                self._parts.setdefault(uid, []).append(_PlacedRain(r))

    def depth_mm(self, gauge: str, t_ms: int) -> float:
        """Rain fallen at ``gauge`` by ``t_ms``."""
        return sum(p.depth_mm(t_ms) for p in self._parts.get(gauge, ()))

    def mean_depth_mm(self, gauges: Sequence[str], t_ms: int) -> float:
        """Areal rain over several gauges (their mean), for a catchment."""
        if not gauges:
            return 0.0
        return sum(self.depth_mm(g, t_ms) for g in gauges) / len(gauges)


class TippingBucket:
    """A gauge's reports: rain since the last report, or a counter."""

    def __init__(
        self,
        uid: str,
        params: RainParams,
        field: RainField,
        rng: np.random.Generator,
        resets: Sequence[CounterReset] = (),
    ) -> None:
        if params.bucket_mm <= 0:
            msg = f"a tipping bucket must hold some rain, got {params.bucket_mm} mm"
            raise ValueError(msg)
        self.uid = uid
        self.params = params
        self.field = field
        self.fill = float(rng.uniform(0.0, params.bucket_mm))
        self.resets = sorted(r.at_ms for r in resets if uid in r.gauges)
        self._last_tips: int | None = None

    def tips(self, t_ms: int) -> int:
        """Tips counted by ``t_ms`` since the scenario began."""
        depth = self.field.depth_mm(self.uid, t_ms) + self.fill
        return math.floor(depth / self.params.bucket_mm + 1e-9)

    def report(self, t_ms: int) -> float:
        """The reading sent at ``t_ms`` (each call is one report)."""
        tips = self.tips(t_ms)
        bucket = self.params.bucket_mm
        if not self.params.cumulative:
            since = tips - (self._last_tips if self._last_tips is not None else tips)
            self._last_tips = tips
            return round(since * bucket, 1)
        base = max((r for r in self.resets if r <= t_ms), default=None)
        counted = tips - (self.tips(base) if base is not None else 0)
        total = counted * bucket
        if self.params.counter_max is not None:
            total = math.fmod(total, self.params.counter_max)
        return round(total, 1)
