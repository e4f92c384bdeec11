"""Scenario files: read, checked against the registry, and turned into a simulator scenario.

A scenario names its registry (a path relative to the file), a seed, a start and a duration,
optional physical settings per sensor and a timeline (:mod:`earlywarn.sim_timeline`). Like the
registry, every problem is reported as ``file:line: message`` in one pass, and nothing
half-read is returned. The simulators get plain values (:mod:`simulators.scenario`) and never
see the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from earlywarn.model import Sensor
from earlywarn.registry import Registry, RegistryError, load_registry
from earlywarn.schema import FileChecker
from earlywarn.sim_targets import Targets, device_key, offset_of, parse_start
from earlywarn.sim_timeline import GAS_KINDS, TimelineReader
from earlywarn.yamlsource import Problem, YMap, load_file
from rules.accumulation import AccumulationRule, Mode
from simulators.gas import GASES
from simulators.rain import BUCKETS_MM
from simulators.scenario import (
    Ambient,
    Catchment,
    ChannelSpec,
    DeviceSpec,
    GasRoom,
    RainParams,
    Rating,
    Reservoir,
    Scenario,
    TankParams,
    WaterParams,
)
from simulators.tank import LIQUIDS

TOP_FIELDS = (
    "name",
    "registry",
    "seed",
    "start",
    "duration",
    "ambient",
    "devices",
    "sensors",
    "timeline",
)
DEVICE_FIELDS = ("interval", "jitter", "skew", "drift_ppm", "keepalive", "buffer")
MAX_DURATION_S = 31 * 86_400


class ScenarioError(Exception):
    """The scenario (or its registry) has problems; ``problems`` lists every one."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class LoadedScenario:
    """A checked scenario with the registry it was checked against."""

    path: Path
    scenario: Scenario
    registry: Registry


def load_scenario(path: Path, registry_dir: Path | None = None) -> LoadedScenario:
    """Read and check ``path``; :class:`ScenarioError` lists every problem."""
    problems: list[Problem] = []
    if not path.is_file():
        raise ScenarioError([Problem(str(path), 0, "scenario file not found")])
    doc = load_file(path, problems)
    ck = FileChecker(str(path), problems)
    if problems:
        raise ScenarioError(problems)
    top = ck.as_map(doc, 1, "a scenario file")
    if top is None:
        raise ScenarioError(problems)
    ck.known_keys(top, TOP_FIELDS, "a scenario")
    registry = _registry(top, ck, path, registry_dir)
    name = ck.text(top, "name", "a scenario")
    seed = top.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        ck.error(top.line_of("seed"), f"a scenario needs a whole-number 'seed', got {seed!r}")
    start = parse_start(top.get("start"))
    if isinstance(start, str):
        ck.error(top.line_of("start"), start)
    duration = ck.seconds(top, "duration", "a scenario", 0.0)
    if "duration" not in top:
        ck.error(top.line, "a scenario is missing the required field 'duration'")
    elif duration is not None and not 0 < duration <= MAX_DURATION_S:
        ck.error(top.line_of("duration"), "'duration' must be more than zero and at most 31 days")
        duration = None
    ambient = _ambient(top, ck)
    if registry is None or isinstance(start, str) or duration is None or not duration:
        raise ScenarioError(problems or [Problem(str(path), top.line, "scenario not usable")])
    offset = offset_of(top["start"])
    end = start + round(duration * 1000)
    targets = Targets(registry)
    settings = _Settings(ck, targets, registry)
    settings.read(top)
    tanks = {key for key, spec in settings.devices.items() if _has_tank(spec)}
    reader = TimelineReader(ck, targets, start, end, offset, tanks, settings.cumulative)
    events = []
    if "timeline" in top:
        timeline = ck.as_list(top["timeline"], top.line_of("timeline"), "'timeline'")
        if timeline is not None:
            events = reader.read(timeline)
    if problems or name is None or not isinstance(seed, int) or ambient is None:
        raise ScenarioError(problems)
    scenario = Scenario(
        name=name,
        seed=seed,
        start_ms=start,
        end_ms=end,
        utc_offset_s=offset,
        devices=tuple(settings.devices.values()),
        events=tuple(events),
        ambient=ambient,
        rooms=settings.rooms,
        tanks=settings.tanks,
        rain=settings.rain,
        water=settings.water,
    )
    return LoadedScenario(path, scenario, registry)


def _registry(top: YMap, ck: FileChecker, path: Path, override: Path | None) -> Registry | None:
    where: Path
    if override is not None:
        where = override
    else:
        text = ck.text(top, "registry", "a scenario")
        if text is None:
            return None
        where = (path.parent / text).resolve()
    try:
        return load_registry(where)
    except RegistryError as exc:
        line = top.line_of("registry") if override is None else 0
        ck.error(line, f"the registry {where} has {len(exc.problems)} problem(s):")
        ck.problems.extend(exc.problems)
        return None


def _ambient(top: YMap, ck: FileChecker) -> Ambient | None:
    if "ambient" not in top:
        return Ambient()
    m = ck.as_map(top["ambient"], top.line_of("ambient"), "'ambient'")
    if m is None:
        return None
    ck.known_keys(m, ("mean", "amplitude", "warmest"), "'ambient'")
    mean = ck.number(m, "mean", "'ambient' (°C)", required=False)
    amplitude = ck.number(m, "amplitude", "'ambient' (°C)", required=False)
    warmest = 14.0
    if "warmest" in m:
        raw = m["warmest"]
        hours, _, minutes = str(raw).partition(":")
        if not isinstance(raw, str) or not (hours.isdigit() and minutes.isdigit()):
            ck.error(m.line_of("warmest"), "ambient: 'warmest' is a quoted clock time \"14:00\"")
            return None
        warmest = int(hours) + int(minutes) / 60
    default = Ambient()
    return Ambient(
        default.mean_c if mean is None else mean,
        default.amplitude_c if amplitude is None else amplitude,
        warmest,
    )


def _has_tank(spec: DeviceSpec) -> bool:
    return any(c.kind == "tank_level" for c in spec.channels)


def _accumulation(sensor: Sensor) -> AccumulationRule | None:
    return next((r for r in sensor.rules if isinstance(r, AccumulationRule)), None)


class _Settings:
    """The ``devices:`` defaults and the per-sensor ``sensors:`` settings."""

    def __init__(self, ck: FileChecker, targets: Targets, registry: Registry) -> None:
        self.ck = ck
        self.targets = targets
        self.registry = registry
        self.rooms: dict[str, GasRoom] = {}
        self.tanks: dict[str, TankParams] = {}
        self.rain: dict[str, RainParams] = {}
        self.water: dict[str, WaterParams] = {}
        self.cumulative: set[str] = set()
        self.devices: dict[str, DeviceSpec] = {}

    def read(self, top: YMap) -> None:
        defaults: dict[str, Any] = {}
        if "devices" in top:
            m = self.ck.as_map(top["devices"], top.line_of("devices"), "'devices'")
            if m is not None:
                defaults = self._behaviour(m, "'devices'", allow_interval=False)
        by_device: dict[str, list[Sensor]] = {}
        for sensor in self.registry.sensors.values():
            by_device.setdefault(device_key(sensor), []).append(sensor)
        for key, sensors in sorted(by_device.items()):
            first = sensors[0]
            self.devices[key] = DeviceSpec(
                first.enterprise,
                first.site,
                first.device,
                tuple(
                    ChannelSpec(s.uid, s.id, s.channel, s.kind, s.unit, s.range[0], s.range[1])
                    for s in sensors
                ),
                min(s.interval_s for s in sensors),
                **defaults,
            )
            for s in sensors:
                self._rain_default(s)
                if s.kind == "tank_level":
                    self.tanks.setdefault(key, self._tank_default(s))
        if "sensors" not in top:
            return
        m = self.ck.as_map(top["sensors"], top.line_of("sensors"), "'sensors'")
        if m is None:
            return
        for name in m:
            named = self.targets.sensor(name)
            if isinstance(named, str):
                self.ck.error(m.line_of(name), f"sensors: {named}")
                continue
            body = self.ck.as_map(m[name], m.line_of(name), f"settings of {named.uid}")
            if body is not None:
                self._sensor(named, body)

    def _behaviour(self, m: YMap, what: str, *, allow_interval: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if allow_interval and "interval" in m:
            interval = self.ck.seconds(m, "interval", what, 0.0)
            if interval is not None and interval > 0:
                out["interval_s"] = interval
            else:
                self.ck.error(m.line_of("interval"), f"{what}: 'interval' must be more than zero")
        elif "interval" in m:
            self.ck.error(m.line_of("interval"), f"{what}: 'interval' is set per sensor")
        for key, field in (("skew", "skew_s"), ("keepalive", "keepalive_s")):
            if key in m:
                value = self.ck.seconds(m, key, what, 0.0)
                if key == "skew" and isinstance(m[key], str) and m[key].strip().startswith("-"):
                    value = self.ck.seconds(YMap({key: m[key].strip()[1:]}), key, what, 0.0)
                    value = None if value is None else -value
                if value is not None:
                    out[field] = value
        if "jitter" in m:
            jitter = self.ck.number(m, "jitter", what)
            if jitter is not None and 0 <= jitter < 1:
                out["jitter"] = jitter
            elif jitter is not None:
                self.ck.error(m.line_of("jitter"), f"{what}: 'jitter' is a fraction in 0…1")
        if "drift_ppm" in m:
            drift = self.ck.number(m, "drift_ppm", what)
            if drift is not None:
                out["drift_ppm"] = drift
        if "buffer" in m:
            buffer = m["buffer"]
            if isinstance(buffer, int) and not isinstance(buffer, bool) and buffer >= 0:
                out["buffer"] = buffer
            else:
                self.ck.error(m.line_of("buffer"), f"{what}: 'buffer' is a number of readings")
        return out

    def _rain_default(self, sensor: Sensor) -> None:
        if sensor.kind != "rainfall":
            return
        rule = _accumulation(sensor)
        cumulative = rule is not None and rule.mode is Mode.CUMULATIVE
        self.rain[sensor.uid] = RainParams(
            cumulative=cumulative, counter_max=rule.counter_max if rule else None
        )
        if cumulative:
            self.cumulative.add(sensor.uid)

    def _tank_default(self, level: Sensor) -> TankParams:
        high = level.range[1]
        height = {"m": high, "mm": high / 1000.0}.get(level.unit, 20.0)
        return TankParams(height_m=height)

    def _sensor(self, sensor: Sensor, m: YMap) -> None:
        what = f"settings of {sensor.uid}"
        allowed = [*DEVICE_FIELDS]
        if sensor.kind in GAS_KINDS:
            allowed.append("room")
        key = device_key(sensor)
        if key in self.tanks:
            allowed.append("tank")
        if sensor.kind == "rainfall":
            allowed.append("gauge")
        if sensor.kind == "water_level":
            allowed += ["catchment", "rating", "reservoir"]
        self.ck.known_keys(m, allowed, what)
        behaviour = self._behaviour(m, what, allow_interval=True)
        if behaviour:
            self.devices[key] = replace(self.devices[key], **behaviour)
        if "room" in m and "room" in allowed:
            room = self._room(m, what)
            if room is not None:
                self.rooms[sensor.uid] = room
        if "tank" in m and "tank" in allowed:
            self._tank(key, m, what)
        if "gauge" in m and "gauge" in allowed:
            self._gauge(sensor, m, what)
        if sensor.kind == "water_level":
            self._water(sensor, m, what)

    def _sub(self, m: YMap, key: str, what: str, fields: tuple[str, ...]) -> YMap | None:
        sub = self.ck.as_map(m[key], m.line_of(key), f"{what}: {key!r}")
        if sub is not None:
            self.ck.known_keys(sub, fields, f"{what}: {key!r}")
        return sub

    def _num(
        self,
        m: YMap,
        key: str,
        what: str,
        *,
        low: float = 0.0,
        strict: bool = True,
        required: bool = False,
    ) -> float | None:
        value = self.ck.number(m, key, what, required=required)
        if value is not None and (value < low or (strict and value == low)):
            bound = f"more than {low:g}" if strict else f"at least {low:g}"
            self.ck.error(m.line_of(key), f"{what}: {key!r} must be {bound}, got {value:g}")
            return None
        return value

    def _room(self, m: YMap, what: str) -> GasRoom | None:
        sub = self._sub(m, "room", what, ("volume", "ach", "gas", "response"))
        if sub is None:
            return None
        d = GasRoom()
        volume = self._num(sub, "volume", f"{what}: room (m³)")
        ach = self._num(sub, "ach", f"{what}: room (air changes per hour)", strict=False)
        gas = self.ck.text(sub, "gas", f"{what}: room", required=False)
        if gas is not None and gas not in GASES:
            self.ck.error(
                sub.line_of("gas"),
                f"{what}: unknown gas {gas!r}; known: {', '.join(sorted(GASES))}",
            )
            gas = None
        response = self.ck.seconds(sub, "response", f"{what}: room", d.response_s)
        return GasRoom(
            d.volume_m3 if volume is None else volume,
            d.ach if ach is None else ach,
            gas,
            d.response_s if response is None else response,
        )

    def _tank(self, key: str, m: YMap, what: str) -> None:
        fields = (
            "diameter",
            "height",
            "level",
            "inflow",
            "outflow",
            "liquid",
            "temperature",
            "time_constant",
            "pressure",
            "relief",
            "evaporation",
            "vapour",
        )
        sub = self._sub(m, "tank", what, fields)
        if sub is None:
            return
        base = self.tanks[key]
        w = f"{what}: tank"
        changes: dict[str, Any] = {}
        for field, target in (("diameter", "diameter_m"), ("height", "height_m")):
            value = self._num(sub, field, f"{w} (m)")
            if value is not None:
                changes[target] = value
        for field, target in (
            ("level", "level_m"),
            ("inflow", "inflow_m3h"),
            ("outflow", "outflow_m3h"),
        ):
            value = self._num(sub, field, w, strict=False)
            if value is not None:
                changes[target] = value
        for field, target in (
            ("temperature", "temperature_c"),
            ("pressure", "pressure_kpa"),
            ("relief", "relief_kpa"),
        ):
            value = self.ck.number(sub, field, w, required=False)
            if value is not None:
                changes[target] = value
        evaporation = self._num(sub, "evaporation", w, strict=False)
        if evaporation is not None:
            changes["evaporation"] = evaporation
        if "time_constant" in sub:
            tau = self.ck.seconds(sub, "time_constant", w, 0.0)
            if tau:
                changes["time_constant_h"] = tau / 3600.0
            else:
                self.ck.error(sub.line_of("time_constant"), f"{w}: 'time_constant' must be > 0")
        liquid = self.ck.text(sub, "liquid", w, required=False)
        if liquid is not None:
            if liquid in LIQUIDS:
                changes["liquid"] = liquid
            else:
                self.ck.error(
                    sub.line_of("liquid"),
                    f"{w}: unknown liquid {liquid!r}; known: {', '.join(sorted(LIQUIDS))}",
                )
        if "vapour" in sub:
            shares = self.ck.as_map(sub["vapour"], sub.line_of("vapour"), f"{w}: 'vapour'")
            if shares is None:
                return
            out: list[tuple[str, float]] = []
            for name in shares:
                found = self.targets.sensor(name)
                share = self.ck.number(shares, name, f"{w}: 'vapour'")
                if isinstance(found, str):
                    self.ck.error(shares.line_of(name), f"{w}: 'vapour': {found}")
                elif found.kind not in GAS_KINDS:
                    self.ck.error(
                        shares.line_of(name), f"{w}: 'vapour': {found.uid} is not a gas detector"
                    )
                elif share is not None and not 0 <= share <= 1:
                    self.ck.error(shares.line_of(name), f"{w}: a vapour share lies in 0…1")
                elif share is not None:
                    out.append((found.uid, share))
            changes["vapour"] = tuple(out)
        params = replace(base, **changes)
        if params.level_m is not None and params.level_m > params.height_m:
            self.ck.error(
                sub.line_of("level"),
                f"{w}: the level lies above the tank's height ({params.height_m:g} m)",
            )
        self.tanks[key] = params

    def _gauge(self, sensor: Sensor, m: YMap, what: str) -> None:
        sub = self._sub(m, "gauge", what, ("bucket", "mode", "counter_max"))
        if sub is None:
            return
        base = self.rain[sensor.uid]
        bucket = self.ck.number(sub, "bucket", f"{what}: gauge", required=False)
        if bucket is not None and bucket not in BUCKETS_MM:
            self.ck.error(
                sub.line_of("bucket"),
                f"{what}: a tipping bucket holds 0.1, 0.2 or 0.5 mm, got {bucket:g}",
            )
            bucket = None
        mode = sub.get("mode")
        if mode is not None and mode not in ("interval", "cumulative"):
            self.ck.error(sub.line_of("mode"), f"{what}: 'mode' is interval or cumulative")
            mode = None
        rule = _accumulation(sensor)
        if mode is not None and rule is not None and mode != rule.mode.value:
            self.ck.error(
                sub.line_of("mode"),
                f"{what}: the registry's rules read {sensor.uid} as {rule.mode.value} rain; a "
                f"{mode} gauge would be misread (change the registry or the scenario)",
            )
            mode = None
        counter_max = self._num(sub, "counter_max", f"{what}: gauge")
        cumulative = base.cumulative if mode is None else mode == "cumulative"
        self.rain[sensor.uid] = RainParams(
            bucket if bucket is not None else base.bucket_mm,
            cumulative,
            counter_max if counter_max is not None else base.counter_max,
        )
        if cumulative:
            self.cumulative.add(sensor.uid)
        else:
            self.cumulative.discard(sensor.uid)

    def _water(self, sensor: Sensor, m: YMap, what: str) -> None:
        if "catchment" not in m:
            if "rating" in m or "reservoir" in m:
                self.ck.error(m.line, f"{what}: a water level needs its 'catchment'")
            return
        if "rating" in m and "reservoir" in m:
            self.ck.error(
                m.line_of("reservoir"),
                f"{what}: a gauge is on a river ('rating') or a reservoir ('reservoir'), not both",
            )
            return
        catchment = self._catchment(m, what)
        if catchment is None:
            return
        low, high = sensor.range
        rating: Rating | None = None
        reservoir: Reservoir | None = None
        if "reservoir" in m:
            sub = self._sub(
                m,
                "reservoir",
                what,
                ("surface", "level", "crest", "spillway_width", "coefficient", "release"),
            )
            if sub is None:
                return
            w = f"{what}: reservoir"
            surface = self._num(sub, "surface", f"{w} (km²)", required=True)
            level = self.ck.number(sub, "level", f"{w} (m)")
            crest = self.ck.number(sub, "crest", f"{w} (m)")
            width = self._num(sub, "spillway_width", f"{w} (m)")
            coefficient = self._num(sub, "coefficient", w)
            release = self._num(sub, "release", f"{w} (m³/s)", strict=False)
            if surface is None or level is None or crest is None:
                return
            d = Reservoir(surface, level, crest)
            reservoir = Reservoir(
                surface,
                level,
                crest,
                d.spillway_width_m if width is None else width,
                d.coefficient if coefficient is None else coefficient,
                d.release_m3s if release is None else release,
            )
        else:
            zero = low + 0.25 * (high - low)
            a, b = 30.0, 1.6
            if "rating" in m:
                sub = self._sub(m, "rating", what, ("zero_stage", "a", "b"))
                if sub is None:
                    return
                z = self.ck.number(sub, "zero_stage", f"{what}: rating (m)", required=False)
                av = self._num(sub, "a", f"{what}: rating")
                bv = self._num(sub, "b", f"{what}: rating")
                zero = zero if z is None else z
                a = a if av is None else av
                b = b if bv is None else bv
            rating = Rating(zero, a, b)
        self.water[sensor.uid] = WaterParams(catchment, rating, reservoir)

    def _catchment(self, m: YMap, what: str) -> Catchment | None:
        sub = self._sub(
            m,
            "catchment",
            what,
            ("gauges", "area", "runoff", "reservoirs", "k", "lag", "base_flow"),
        )
        if sub is None:
            return None
        w = f"{what}: catchment"
        gauges: list[str] = []
        raw = sub.get("gauges")
        if raw is None:
            self.ck.error(sub.line, f"{w} is missing the required field 'gauges'")
            return None
        for name in raw if isinstance(raw, list) else [raw]:
            found = self.targets.sensor(name)
            if isinstance(found, str) or found.kind != "rainfall":
                why = found if isinstance(found, str) else f"{found.uid} is not a rain gauge"
                self.ck.error(sub.line_of("gauges"), f"{w}: {why}")
                return None
            gauges.append(found.uid)
        d = Catchment(gauges=())
        area = self._num(sub, "area", f"{w} (km²)")
        runoff = self._num(sub, "runoff", w)
        if runoff is not None and runoff > 1:
            self.ck.error(sub.line_of("runoff"), f"{w}: 'runoff' is a coefficient in 0…1")
            runoff = None
        reservoirs = sub.get("reservoirs", d.reservoirs)
        if isinstance(reservoirs, bool) or not isinstance(reservoirs, int) or reservoirs < 1:
            self.ck.error(sub.line_of("reservoirs"), f"{w}: 'reservoirs' is a whole number ≥ 1")
            return None
        k = self.ck.seconds(sub, "k", w, d.k_h * 3600.0)
        lag = self.ck.seconds(sub, "lag", w, 0.0)
        base = self._num(sub, "base_flow", f"{w} (m³/s)", strict=False)
        if k is None or lag is None or not k > 0:
            if k is not None and not k > 0:
                self.ck.error(sub.line_of("k"), f"{w}: 'k' must be more than zero")
            return None
        return Catchment(
            tuple(gauges),
            d.area_km2 if area is None else area,
            d.runoff if runoff is None else runoff,
            reservoirs,
            k / 3600.0,
            lag / 3600.0,
            d.base_flow if base is None else base,
        )
