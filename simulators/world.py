"""From a scenario to devices wired to their physics.

Each registered sensor gets the model its kind calls for: gas detectors a ventilated volume
with the leaks near them and the vapour of tanks that list them, tank transmitters their
tank (level, temperature and pressure channels of one device share it), rain gauges a
tipping bucket under the rain field, water-level gauges a catchment feeding a river reach or
a reservoir, outdoor thermometers the air, anything else a steady value with noise.
"""

from __future__ import annotations

from collections.abc import Callable

from simulators.ambient import ambient_c
from simulators.device import Channel, SimDevice
from simulators.gas import GASES, Emission, GasAtDetector, LeakEmission
from simulators.hydrology import NashCascade, ReservoirLevel, RiverStage
from simulators.instrument import Instrument
from simulators.rain import RainField, TippingBucket
from simulators.randomness import stream
from simulators.scenario import (
    Catchment,
    ChannelSpec,
    CounterReset,
    DeviceSpec,
    Fault,
    Flow,
    GasRoom,
    Heat,
    Leak,
    Rain,
    RainParams,
    Rating,
    Scenario,
    Storm,
    TankLeak,
    TankParams,
    Ventilation,
    WaterParams,
)
from simulators.tank import LIQUIDS, TankPhysics, TankVapour

STEADY = {"oxygen": 0.836, "pressure": 0.45, "flow": 0.40, "tank_level": 0.5}
"""Where a sensor with nothing to simulate sits, as a fraction of its range (oxygen: 20.9 %
of a 0–25 %VOL cell)."""

DEFAULT_GAS = {"%LEL": "methane"}
"""The gas a detector is assumed to watch when nothing says; toxic units default to H2S."""

OUTDOOR_ROOM = GasRoom(volume_m3=500.0, ach=60.0)
"""A tank-farm detector's surroundings when the scenario gives none: the air near it,
renewed every minute by a light wind."""


class World:
    """All models of a scenario, built once; devices read them as time goes on."""

    def __init__(self, scenario: Scenario, *, drill: bool = False) -> None:
        self.scenario = scenario
        events = scenario.events
        self.leaks = [e for e in events if isinstance(e, Leak)]
        self.ventilation = [e for e in events if isinstance(e, Ventilation)]
        self.faults = [e for e in events if isinstance(e, Fault)]
        self.rain_field = RainField(
            [e for e in events if isinstance(e, Storm)], [e for e in events if isinstance(e, Rain)]
        )
        self.resets = [e for e in events if isinstance(e, CounterReset)]
        self.tanks: dict[str, TankPhysics] = {}
        for spec in scenario.devices:
            if any(c.kind == "tank_level" for c in spec.channels):
                self.tanks[spec.key] = self._tank(spec)
        self.devices = [self._device(spec, drill) for spec in scenario.devices]

    def air_c(self, t_ms: int) -> float:
        """Outdoor air temperature."""
        return ambient_c(self.scenario.ambient, t_ms, self.scenario.utc_offset_s)

    # -- tanks -----------------------------------------------------------------------------

    def _tank(self, spec: DeviceSpec) -> TankPhysics:
        params = self.scenario.tanks.get(spec.key, TankParams())
        press = next((c for c in spec.channels if c.kind == "pressure"), None)
        span = (press.low, press.high) if press else (0.0, 250.0)
        scale = 1000.0 if press is not None and press.unit == "MPa" else 1.0
        events = self.scenario.events
        return TankPhysics(
            params,
            self.scenario.start_ms,
            self.air_c,
            pressure_kpa=params.pressure_kpa
            if params.pressure_kpa is not None
            else (span[0] + 0.4 * (span[1] - span[0])) * scale,
            relief_kpa=params.relief_kpa
            if params.relief_kpa is not None
            else (span[0] + 0.95 * (span[1] - span[0])) * scale,
            flows=[e for e in events if isinstance(e, Flow) and e.tank == spec.key],
            heats=[e for e in events if isinstance(e, Heat) and e.tank == spec.key],
            leaks=[e for e in events if isinstance(e, TankLeak) and e.tank == spec.key],
        )

    def _tank_channel(self, tank: TankPhysics, ch: ChannelSpec) -> Callable[[int], float] | None:
        def level(t: int) -> float:
            tank.advance(t)
            if ch.unit == "mm":
                return tank.level_m * 1000.0
            if ch.unit == "%":
                return tank.level_m / tank.height_m * 100.0
            return tank.level_m

        def temperature(t: int) -> float:
            tank.advance(t)
            return tank.temperature_c

        def pressure(t: int) -> float:
            tank.advance(t)
            return tank.pressure_kpa / (1000.0 if ch.unit == "MPa" else 1.0)

        return {"tank_level": level, "temperature": temperature, "pressure": pressure}.get(ch.kind)

    # -- gas -------------------------------------------------------------------------------

    def _gas(self, ch: ChannelSpec) -> Callable[[int], float]:
        room = self.scenario.rooms.get(ch.uid)
        emissions: list[Emission] = []
        named: str | None = room.gas if room is not None and room.gas else None
        for leak in self.leaks:
            shares = dict(leak.nearby)
            share = 1.0 if leak.detector == ch.uid else shares.get(ch.uid, 0.0)
            if share > 0.0:
                emissions.append(LeakEmission(leak, share))
                named = named or leak.gas
        near_tank = False
        for key, tank in self.tanks.items():
            params = self.scenario.tanks.get(key, TankParams())
            share = dict(params.vapour).get(ch.uid, 0.0)
            if share > 0.0:
                emissions.append(TankVapour(tank, share))
                near_tank = True
                named = named or LIQUIDS[params.liquid].vapour
        gas = GASES[named or DEFAULT_GAS.get(ch.unit, "hydrogen_sulfide")]
        if room is None:
            room = OUTDOOR_ROOM if near_tank else GasRoom()
        ventilation = [v for v in self.ventilation if ch.uid in v.detectors]
        model = GasAtDetector(room, gas, ch.unit, self.scenario.start_ms, emissions, ventilation)
        return model.value

    # -- water -----------------------------------------------------------------------------

    def _water(self, ch: ChannelSpec) -> Callable[[int], float]:
        params = self.scenario.water.get(ch.uid) or WaterParams(Catchment(gauges=()))
        cascade = NashCascade(params.catchment, self.rain_field, self.scenario.start_ms)
        if params.reservoir is not None:
            return ReservoirLevel(cascade, params.reservoir, self.scenario.start_ms).value
        rating = params.rating or Rating(zero_stage=ch.low + 0.25 * (ch.high - ch.low))
        return RiverStage(cascade, rating).value

    # -- devices ---------------------------------------------------------------------------

    def _true_value(self, spec: DeviceSpec, ch: ChannelSpec) -> Callable[[int], float]:
        tank = self.tanks.get(spec.key)
        if tank is not None:
            reading = self._tank_channel(tank, ch)
            if reading is not None:
                return reading
        if ch.kind in ("combustible_gas", "toxic_gas"):
            return self._gas(ch)
        if ch.kind == "rainfall":
            rng = stream(self.scenario.seed, ch.uid, "bucket")
            params = self.scenario.rain.get(ch.uid, RainParams())
            return TippingBucket(ch.uid, params, self.rain_field, rng, self.resets).report
        if ch.kind == "water_level":
            return self._water(ch)
        if ch.kind == "temperature":
            return self.air_c
        fixed = ch.low + STEADY.get(ch.kind, 0.3) * (ch.high - ch.low)
        return lambda _t: fixed

    def _device(self, spec: DeviceSpec, drill: bool) -> SimDevice:
        seed, start = self.scenario.seed, self.scenario.start_ms
        channels = [
            Channel(
                ch.key,
                self._true_value(spec, ch),
                Instrument(ch, stream(seed, ch.uid, "noise"), self.faults, start),
            )
            for ch in spec.channels
        ]
        return SimDevice(
            spec,
            channels,
            start,
            stream(seed, spec.key, "schedule"),
            stream(seed, spec.key, "faults"),
            drill=drill,
        )
