"""A vertical cylindrical storage tank: level, temperature and pressure, and what it loses.

- **Level**: ``A dh/dt = Q_in − Q_out − Q_leak``, ``A = π D²/4``. A hole of diameter ``d`` at
  the bottom drains by Torricelli, ``Q_leak = C_d · π d²/4 · √(2 g h)`` (``C_d`` 0.62, a sharp
  orifice). The level stays within ``0 … height``: past the top the tank overflows and the
  excess is spilled, which is what an overfill is.
- **Temperature** of the contents follows the outdoor air (diurnal cycle) with the tank's
  time constant, plus heat input ``P`` (a stuck steam coil, a fire next to it):
  ``dT/dt = (T_air − T)/τ + P/(m c_p)``; it cannot pass the boiling point at the relief
  pressure (the liquid boils off instead).
- **Pressure** (gauge) of a nitrogen-blanketed tank: the blanket behaves as an ideal gas in the
  head space, plus the liquid's vapour pressure (Antoine equation). Heating raises both;
  filling compresses the blanket. The relief valve vents above its set pressure and the
  blanketing regulator feeds nitrogen below its own, 5 kPa under the starting pressure.
- **Loss**: leaked and spilled liquid evaporates (``evaporation``, a mass fraction per
  second of what is lost) and reaches nearby gas detectors by their ``vapour`` share.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulators.scenario import Cycle, Flow, Heat, TankLeak, TankParams, Window
from simulators.timeline import earliest, step_through

G = 9.81
ORIFICE_CD = 0.62
ATMOSPHERE_KPA = 101.325
MMHG_KPA = 0.133322
HEADSPACE = 0.05
"""The shell rises this fraction of the instrument's height above its top: the blanket's
smallest volume, so a full tank's pressure stays finite."""
MAX_STEP_MS = 10_000


@dataclass(frozen=True, slots=True)
class Liquid:
    """Density (kg/m³), heat capacity (kJ/(kg·K)), Antoine constants (mmHg, °C) and the name
    of its vapour among :data:`simulators.gas.GASES` (``None`` for water)."""

    name: str
    density: float
    cp: float
    antoine: tuple[float, float, float]
    vapour: str | None

    def vapour_pressure_kpa(self, t_c: float) -> float:
        """Vapour pressure at ``t_c`` (Antoine: log10 P = A − B/(C + T))."""
        a, b, c = self.antoine
        return float(10.0 ** (a - b / (c + t_c)) * MMHG_KPA)

    def boiling_c(self, p_kpa_abs: float) -> float:
        """Temperature at which the vapour pressure reaches ``p_kpa_abs``."""
        a, b, c = self.antoine
        return b / (a - math.log10(p_kpa_abs / MMHG_KPA)) - c


LIQUIDS: dict[str, Liquid] = {
    # Antoine constants from the NIST/Lange tables for the 15–85 °C range.
    "methanol": Liquid("methanol", 791.0, 2.53, (8.08097, 1582.271, 239.726), "methanol"),
    "toluene": Liquid("toluene", 867.0, 1.70, (6.95464, 1344.8, 219.482), "toluene"),
    "water": Liquid("water", 998.0, 4.18, (8.07131, 1730.63, 233.426), None),
}


class TankPhysics:
    """One tank's state, advanced in steps no longer than :data:`MAX_STEP_MS`."""

    def __init__(
        self,
        params: TankParams,
        start_ms: int,
        air_c: Callable[[int], float],
        *,
        pressure_kpa: float,
        relief_kpa: float,
        flows: Sequence[Flow] = (),
        heats: Sequence[Heat] = (),
        leaks: Sequence[TankLeak] = (),
    ) -> None:
        if params.diameter_m <= 0 or params.height_m <= 0:
            msg = "a tank needs a positive diameter and height"
            raise ValueError(msg)
        self.params = params
        self.liquid = LIQUIDS[params.liquid]
        self.area_m2 = math.pi * params.diameter_m**2 / 4.0
        self.height_m = params.height_m
        self.air_c = air_c
        self.flows, self.heats, self.leaks = tuple(flows), tuple(heats), tuple(leaks)
        self.t_ms = start_ms
        level = params.level_m if params.level_m is not None else 0.5 * params.height_m
        self.level_m = min(max(level, 0.0), params.height_m)
        self.temperature_c = (
            params.temperature_c if params.temperature_c is not None else air_c(start_ms)
        )
        self.relief_kpa = relief_kpa
        self.blanket_kpa = pressure_kpa - 5.0
        self._blanket = self._blanket_for(pressure_kpa)
        self.loss_m3_s = 0.0
        self.spilled_m3 = 0.0
        self.leaked_m3 = 0.0

    # -- inputs in force -------------------------------------------------------------------

    def _flows_m3_s(self, t_ms: int) -> tuple[float, float]:
        inflow, outflow = self.params.inflow_m3h, self.params.outflow_m3h
        for f in self.flows:
            if f.window.contains(t_ms):
                inflow = f.inflow_m3h if f.inflow_m3h is not None else inflow
                outflow = f.outflow_m3h if f.outflow_m3h is not None else outflow
        return inflow / 3600.0, outflow / 3600.0

    def _heat_kw(self, t_ms: int) -> float:
        return sum(h.power_kw for h in self.heats if h.window.contains(t_ms))

    def _hole_m2(self, t_ms: int) -> float:
        return sum(
            math.pi * (k.hole_mm / 1000.0) ** 2 / 4.0 for k in self.leaks if k.window.contains(t_ms)
        )

    def _next_change(self, t_ms: int) -> int | None:
        windows: list[tuple[Window, Cycle | None]] = [(f.window, None) for f in self.flows]
        windows += [(h.window, None) for h in self.heats]
        windows += [(k.window, None) for k in self.leaks]
        return earliest(t_ms, windows)

    # -- pressure --------------------------------------------------------------------------

    def _gas_volume_m3(self) -> float:
        return self.area_m2 * (self.height_m * (1.0 + HEADSPACE) - self.level_m)

    def _blanket_for(self, gauge_kpa: float) -> float:
        """The blanket's ``P V / T`` (kPa·m³/K) that gives ``gauge_kpa`` now."""
        partial = gauge_kpa + ATMOSPHERE_KPA - self.liquid.vapour_pressure_kpa(self.temperature_c)
        return max(partial, 0.0) * self._gas_volume_m3() / (self.temperature_c + 273.15)

    @property
    def pressure_kpa(self) -> float:
        """Gauge pressure in the head space."""
        blanket = self._blanket * (self.temperature_c + 273.15) / self._gas_volume_m3()
        return blanket + self.liquid.vapour_pressure_kpa(self.temperature_c) - ATMOSPHERE_KPA

    # -- stepping --------------------------------------------------------------------------

    def _step(self, a_ms: int, b_ms: int) -> None:
        dt = (b_ms - a_ms) / 1000.0
        inflow, outflow = self._flows_m3_s(a_ms)
        hole = self._hole_m2(a_ms)
        level = self.level_m
        leak = ORIFICE_CD * hole * math.sqrt(2.0 * G * level) if level > 0.0 else 0.0
        out = outflow if level > 0.0 else 0.0
        new_level = level + (inflow - out - leak) * dt / self.area_m2
        spill = 0.0
        if new_level > self.height_m:
            spill = (new_level - self.height_m) * self.area_m2 / dt
            new_level = self.height_m
        if new_level < 0.0:  # drained dry within the step: the leak lost only what was there
            leak = max(leak + new_level * self.area_m2 / dt, 0.0)
            new_level = 0.0
        self.level_m = new_level
        self.loss_m3_s = leak + spill
        self.spilled_m3 += spill * dt
        self.leaked_m3 += leak * dt

        tau = self.params.time_constant_h * 3600.0
        mass = self.liquid.density * self.area_m2 * max(self.level_m, 0.02 * self.height_m)
        air = self.air_c(a_ms)
        steady = air + self._heat_kw(a_ms) * tau / (mass * self.liquid.cp)
        t = steady + (self.temperature_c - steady) * math.exp(-dt / tau)
        self.temperature_c = min(t, self.liquid.boiling_c(self.relief_kpa + ATMOSPHERE_KPA))

        gauge = self.pressure_kpa
        if gauge > self.relief_kpa:
            self._blanket = self._blanket_for(self.relief_kpa)
        elif gauge < self.blanket_kpa:
            self._blanket = self._blanket_for(self.blanket_kpa)

    def advance(self, t_ms: int) -> None:
        """Integrate up to ``t_ms`` (never backwards)."""
        if t_ms > self.t_ms:
            step_through(self.t_ms, t_ms, MAX_STEP_MS, self._next_change, self._step)
            self.t_ms = t_ms

    def vapour_g_s(self, t_ms: int) -> float:
        """Vapour given off by leaked and spilled liquid at ``t_ms`` (g/s)."""
        self.advance(t_ms)
        if self.liquid.vapour is None:
            return 0.0
        return self.params.evaporation * self.liquid.density * self.loss_m3_s * 1000.0


@dataclass(frozen=True, slots=True)
class TankVapour:
    """A tank's vapour reaching one detector (an :class:`simulators.gas.Emission`)."""

    tank: TankPhysics
    share: float

    def rate_g_s(self, t_ms: int) -> float:
        """The tank's vapour times this detector's share."""
        return self.tank.vapour_g_s(t_ms) * self.share

    def next_change(self, t_ms: int) -> int | None:
        """The tank's own input changes (a leak starting) are where the vapour jumps."""
        return self.tank._next_change(t_ms)
