"""Gas at a detector: a well-mixed volume with sources and ventilation.

The concentration ``C`` (g/m³) in a volume ``V`` aired ``ach`` times an hour, with sources
emitting ``E`` g/s, follows ``dC/dt = E/V − k C`` with ``k = ach/3600``. For constant inputs
the solution is exact, ``C → E/(kV) + (C − E/(kV)) e^(−k dt)``, so a leak's rise and its
decay after the fan starts do not depend on the step. A leak of 0.5 g/s of LPG into an 18 m³
cylinder room aired 0.5 times an hour (a closed restaurant at night) passes 25 %LEL in a few
minutes; the same leak with the kitchen's extraction fan on (20 air changes) settles far lower.

The detector reads the air with a first-order response (T90 ``response_s``) and converts
mass concentration to its unit: %LEL from the lower explosive limit, %OEL from the
occupational exposure limit (GBZ 2.1), ppm and mg/m³ at 20 °C and 101.325 kPa.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from simulators.scenario import GasRoom, Leak, Ventilation
from simulators.timeline import earliest, is_on, step_through

MOLAR_VOLUME_L = 24.04
"""Litres per mole of an ideal gas at 20 °C and 101.325 kPa."""

MAX_STEP_MS = 5_000


@dataclass(frozen=True, slots=True)
class Gas:
    """A gas: molar mass (g/mol), lower explosive limit (% by volume), exposure limit (mg/m³)."""

    name: str
    molar_mass: float
    lel_vol_pct: float | None
    oel_mg_m3: float | None

    @property
    def density_g_m3(self) -> float:
        """Grams per cubic metre of the pure gas at 20 °C."""
        return self.molar_mass / MOLAR_VOLUME_L * 1000.0

    def reading(self, c_g_m3: float, unit: str) -> float:
        """What a detector in ``unit`` shows for ``c_g_m3`` (before its noise and range)."""
        if unit == "%LEL" and self.lel_vol_pct is not None:
            return c_g_m3 / self.density_g_m3 * 100.0 / self.lel_vol_pct * 100.0
        if unit == "%OEL" and self.oel_mg_m3 is not None:
            return c_g_m3 * 1000.0 / self.oel_mg_m3 * 100.0
        if unit == "ppm":
            return c_g_m3 * 1000.0 * MOLAR_VOLUME_L / self.molar_mass
        if unit == "mg/m3":
            return c_g_m3 * 1000.0
        msg = f"a {self.name} detector cannot read in {unit}"
        raise ValueError(msg)


GASES: dict[str, Gas] = {
    # LEL: GB/T 50493-2019 appendix values; OEL: GBZ 2.1-2019 PC-TWA (MAC for H2S).
    "methane": Gas("methane", 16.04, 5.0, None),
    "propane": Gas("propane", 44.10, 2.1, None),
    "lpg": Gas("lpg (as propane)", 44.10, 2.1, None),
    "hydrogen": Gas("hydrogen", 2.016, 4.0, None),
    "methanol": Gas("methanol", 32.04, 6.0, 25.0),
    "toluene": Gas("toluene", 92.14, 1.1, 50.0),
    "hydrogen_sulfide": Gas("hydrogen_sulfide", 34.08, 4.0, 10.0),
    "ammonia": Gas("ammonia", 17.03, 15.0, 20.0),
}
"""Gases the detectors know, by the name a scenario uses."""

UNITS = ("%LEL", "%OEL", "ppm", "mg/m3")


class Emission(Protocol):
    """Something putting gas into a detector's volume (a leak, an evaporating spill)."""

    def rate_g_s(self, t_ms: int) -> float:
        """Grams per second reaching the volume at ``t_ms``."""
        ...

    def next_change(self, t_ms: int) -> int | None:
        """When the rate next jumps (``None``: it varies smoothly or never)."""
        ...


@dataclass(frozen=True, slots=True)
class LeakEmission:
    """A leak event's share reaching one detector."""

    leak: Leak
    share: float

    def rate_g_s(self, t_ms: int) -> float:
        """The leak's rate times the share, while it lasts."""
        return self.leak.rate_g_s * self.share if self.leak.window.contains(t_ms) else 0.0

    def next_change(self, t_ms: int) -> int | None:
        """Its start or its end."""
        return earliest(t_ms, [(self.leak.window, None)])


class GasAtDetector:
    """Concentration in one detector's volume and the detector's (lagging) view of it."""

    def __init__(
        self,
        room: GasRoom,
        gas: Gas,
        unit: str,
        start_ms: int,
        emissions: Sequence[Emission],
        ventilation: Sequence[Ventilation],
    ) -> None:
        if room.volume_m3 <= 0 or room.ach < 0:
            msg = "a detector's volume must be positive and its air changes not negative"
            raise ValueError(msg)
        gas.reading(0.0, unit)  # fails now, not mid-run, for a unit this gas cannot give
        self.room = room
        self.gas = gas
        self.unit = unit
        self.emissions = tuple(emissions)
        self.ventilation = tuple(ventilation)
        self.t_ms = start_ms
        self.c_g_m3 = 0.0
        self.seen_g_m3 = 0.0
        self._tau_s = max(room.response_s, 0.0) / math.log(10.0)

    def ach(self, t_ms: int) -> float:
        """Air changes per hour in force (the latest ventilation event that is on wins)."""
        ach = self.room.ach
        for v in self.ventilation:
            if is_on(v.window, v.cycle, t_ms):
                ach = v.ach
        return ach

    def _next_change(self, t_ms: int) -> int | None:
        found = earliest(t_ms, [(v.window, v.cycle) for v in self.ventilation])
        for e in self.emissions:
            edge = e.next_change(t_ms)
            if edge is not None and (found is None or edge < found):
                found = edge
        return found

    def _step(self, a_ms: int, b_ms: int) -> None:
        dt = (b_ms - a_ms) / 1000.0
        source = sum(e.rate_g_s(a_ms) for e in self.emissions)
        k = self.ach(a_ms) / 3600.0
        before = self.c_g_m3
        if k * dt > 1e-9:  # below that, dividing by k would overflow: the volume is sealed
            steady = source / (k * self.room.volume_m3)
            self.c_g_m3 = steady + (before - steady) * math.exp(-k * dt)
        else:
            self.c_g_m3 = before + source * dt / self.room.volume_m3
        target = 0.5 * (before + self.c_g_m3)
        if self._tau_s > 0.0:
            self.seen_g_m3 = target + (self.seen_g_m3 - target) * math.exp(-dt / self._tau_s)
        else:
            self.seen_g_m3 = self.c_g_m3

    def advance(self, t_ms: int) -> None:
        """Integrate up to ``t_ms`` (never backwards)."""
        if t_ms > self.t_ms:
            step_through(self.t_ms, t_ms, MAX_STEP_MS, self._next_change, self._step)
            self.t_ms = t_ms

    def value(self, t_ms: int) -> float:
        """What the detector's sensing element sees at ``t_ms``, in its unit."""
        self.advance(t_ms)
        return self.gas.reading(self.seen_g_m3, self.unit)
