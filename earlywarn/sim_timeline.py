"""The ``timeline:`` of a scenario file: what happens when, checked against the registry.

Each item has ``at``, optionally ``until``, and exactly one event::

    - at: "02:00"
      until: "02:40"
      leak: {sensor: r-03/G2, rate: 0.5, gas: lpg}

Every problem is reported at its line, all in one pass.
"""

from __future__ import annotations

from typing import Any

from earlywarn.model import Sensor
from earlywarn.schema import FileChecker
from earlywarn.sim_targets import Targets, device_key, parse_time
from earlywarn.yamlsource import YList, YMap
from simulators.gas import GASES
from simulators.rain_formula import StormFormula
from simulators.scenario import (
    FAULT_TYPES,
    CounterReset,
    Cycle,
    Event,
    Fault,
    Flow,
    Heat,
    Leak,
    Offline,
    Rain,
    Storm,
    TankLeak,
    Ventilation,
    Window,
)

GAS_KINDS = ("combustible_gas", "toxic_gas")
EVENTS = (
    "leak",
    "ventilation",
    "fault",
    "offline",
    "flow",
    "heat",
    "tank_leak",
    "storm",
    "rain",
    "reset",
)
INSTANT = ("storm", "reset")
"""Events without ``until``: a storm lasts its ``duration``, a reset is a moment."""


class TimelineReader:
    """Reads timeline items into :mod:`simulators.scenario` events."""

    def __init__(
        self,
        ck: FileChecker,
        targets: Targets,
        start_ms: int,
        end_ms: int,
        utc_offset_s: int,
        tanks: set[str],
        cumulative: set[str],
    ) -> None:
        self.ck = ck
        self.targets = targets
        self.start_ms, self.end_ms = start_ms, end_ms
        self.utc_offset_s = utc_offset_s
        self.tanks = tanks
        self.cumulative = cumulative

    def read(self, items: YList) -> list[Event]:
        """Every valid event of the list (problems recorded for the others)."""
        events: list[Event] = []
        for item, line in zip(items, items.item_lines, strict=True):
            item_map = self.ck.as_map(item, line, "a timeline item")
            if item_map is not None:
                event = self._item(item_map)
                if event is not None:
                    events.append(event)
        return events

    # -- common fields ---------------------------------------------------------------------

    def _time(self, m: YMap, key: str) -> int | None:
        found = parse_time(m[key], self.start_ms, self.utc_offset_s)
        if isinstance(found, str):
            self.ck.error(m.line_of(key), f"{key}: {found}")
            return None
        if not self.start_ms <= found <= self.end_ms:
            self.ck.error(m.line_of(key), f"{key}: {m[key]!r} lies outside the scenario's run")
            return None
        return found

    def _item(self, m: YMap) -> Event | None:
        self.ck.known_keys(m, ("at", "until", *EVENTS), "a timeline item")
        kinds = [k for k in m if k in EVENTS]
        if len(kinds) != 1:
            what = "none" if not kinds else ", ".join(kinds)
            self.ck.error(
                m.line,
                f"a timeline item needs exactly one event of {', '.join(EVENTS)} (found {what})",
            )
            return None
        kind = kinds[0]
        if "at" not in m:
            self.ck.error(m.line, "a timeline item is missing the required field 'at'")
            return None
        at = self._time(m, "at")
        until: int | None = None
        if "until" in m:
            if kind in INSTANT:
                self.ck.error(m.line_of("until"), f"a {kind} takes no 'until'")
                return None
            until = self._time(m, "until")
            if until is None:
                return None
        if at is None:
            return None
        if until is not None and until <= at:
            self.ck.error(m.line_of("until"), "'until' must come after 'at'")
            return None
        body = self.ck.as_map(m[kind], m.line_of(kind), f"{kind}")
        if body is None:
            return None
        window = Window(at, until)
        reader = getattr(self, f"_{kind}")
        event: Event | None = reader(body, window)
        return event

    def _sensor(self, m: YMap, key: str, kinds: tuple[str, ...] | None, what: str) -> Sensor | None:
        if key not in m:
            self.ck.error(m.line, f"{what} is missing the required field {key!r}")
            return None
        found = self.targets.sensor(m[key])
        if isinstance(found, str):
            self.ck.error(m.line_of(key), f"{what}: {found}")
            return None
        if kinds is not None and found.kind not in kinds:
            self.ck.error(
                m.line_of(key),
                f"{what}: {found.uid} is a {found.kind} sensor; this needs {' or '.join(kinds)}",
            )
            return None
        return found

    def _named(
        self, name: object, line: int, kinds: tuple[str, ...] | None, what: str
    ) -> Sensor | None:
        found = self.targets.sensor(name)
        if isinstance(found, str):
            self.ck.error(line, f"{what}: {found}")
            return None
        if kinds is not None and found.kind not in kinds:
            needs = " or ".join(kinds)
            self.ck.error(line, f"{what}: {found.uid} is a {found.kind} sensor; this needs {needs}")
            return None
        return found

    def _sensors(self, m: YMap, key: str, kinds: tuple[str, ...], what: str) -> list[Sensor] | None:
        raw = m.get(key)
        if raw is None:
            self.ck.error(m.line, f"{what} is missing the required field {key!r}")
            return None
        names = raw if isinstance(raw, YList) else [raw]
        lines = raw.item_lines if isinstance(raw, YList) else [m.line_of(key)]
        out: list[Sensor] = []
        ok = True
        for name, line in zip(names, lines, strict=True):
            found = self.targets.sensor(name)
            if isinstance(found, str):
                self.ck.error(line, f"{what}: {found}")
                ok = False
            elif found.kind not in kinds:
                self.ck.error(
                    line,
                    f"{what}: {found.uid} is a {found.kind} sensor; this needs "
                    f"{' or '.join(kinds)}",
                )
                ok = False
            else:
                out.append(found)
        if ok and not out:
            self.ck.error(m.line_of(key), f"{what}: name at least one sensor")
        return out if ok and out else None

    def _positive(
        self, m: YMap, key: str, what: str, *, required: bool = True, zero: bool = False
    ) -> float | None:
        value = self.ck.number(m, key, what, required=required)
        if value is not None and (value < 0 or (value == 0 and not zero)):
            self.ck.error(
                m.line_of(key),
                f"{what}: {key!r} must be "
                f"{'zero or more' if zero else 'more than zero'}, got {value:g}",
            )
            return None
        return value

    def _fraction(self, m: YMap, key: str, what: str) -> float | None:
        value = self.ck.number(m, key, what, required=False)
        if value is not None and not 0.0 <= value <= 1.0:
            self.ck.error(m.line_of(key), f"{what}: {key!r} must lie in 0…1, got {value:g}")
            return None
        return value

    def _shares(
        self, m: YMap, key: str, kinds: tuple[str, ...], what: str
    ) -> tuple[tuple[str, float], ...] | None:
        raw = m.get(key)
        if raw is None:
            return ()
        shares = self.ck.as_map(raw, m.line_of(key), f"{what}: {key!r}")
        if shares is None:
            return None
        out: list[tuple[str, float]] = []
        for name in shares:
            found = self._named(name, shares.line_of(name), kinds, f"{what}: {key!r}")
            share = self._fraction(shares, name, f"{what}: {key!r}")
            if found is None or share is None:
                return None
            out.append((found.uid, share))
        return tuple(out)

    def _tank(self, m: YMap, what: str) -> str | None:
        sensor = self._sensor(m, "tank", None, what)
        if sensor is None:
            return None
        key = device_key(sensor)
        if key not in self.tanks:
            self.ck.error(
                m.line_of("tank"),
                f"{what}: {sensor.uid} is not on a tank transmitter (a device with a tank_level "
                "sensor)",
            )
            return None
        return key

    # -- events ----------------------------------------------------------------------------

    def _leak(self, m: YMap, window: Window) -> Leak | None:
        self.ck.known_keys(m, ("sensor", "rate", "gas", "nearby"), "leak")
        sensor = self._sensor(m, "sensor", GAS_KINDS, "leak")
        rate = self._positive(m, "rate", "leak (g/s)")
        gas = self.ck.text(m, "gas", "leak", required=False)
        if gas is not None and gas not in GASES:
            self.ck.error(
                m.line_of("gas"), f"leak: unknown gas {gas!r}; known: {', '.join(sorted(GASES))}"
            )
            return None
        nearby = self._shares(m, "nearby", GAS_KINDS, "leak")
        if sensor is None or rate is None or nearby is None:
            return None
        return Leak(window, sensor.uid, rate, gas, nearby)

    def _ventilation(self, m: YMap, window: Window) -> Ventilation | None:
        self.ck.known_keys(m, ("sensors", "ach", "cycle"), "ventilation")
        sensors = self._sensors(m, "sensors", GAS_KINDS, "ventilation")
        ach = self._positive(m, "ach", "ventilation (air changes per hour)", zero=True)
        cycle: Cycle | None = None
        if "cycle" in m:
            c = self.ck.as_map(m["cycle"], m.line_of("cycle"), "ventilation: 'cycle'")
            if c is None:
                return None
            # Not "on"/"off": YAML 1.1 reads those keys as true and false.
            self.ck.known_keys(c, ("run", "pause"), "a cycle")
            on = self.ck.seconds(c, "run", "a cycle", 0.0)
            off = self.ck.seconds(c, "pause", "a cycle", 0.0)
            if on is None or off is None:
                return None
            if not on > 0 or not off > 0:
                self.ck.error(c.line, "a cycle needs positive 'run' and 'pause' durations")
                return None
            cycle = Cycle(on, off)
        if sensors is None or ach is None:
            return None
        return Ventilation(window, tuple(s.uid for s in sensors), ach, cycle)

    def _fault(self, m: YMap, window: Window) -> Fault | None:
        self.ck.known_keys(m, ("sensor", "type", "probability", "value", "rate"), "fault")
        sensor = self._sensor(m, "sensor", None, "fault")
        kind = self.ck.text(m, "type", "fault")
        if kind is not None and kind not in FAULT_TYPES:
            self.ck.error(
                m.line_of("type"),
                f"fault: unknown type {kind!r}; expected {', '.join(FAULT_TYPES)}",
            )
            return None
        probability = self._fraction(m, "probability", "fault")
        value = self.ck.number(m, "value", "fault", required=False)
        rate = self.ck.number(m, "rate", "fault (per hour)", required=kind == "drift")
        if sensor is None or kind is None:
            return None
        return Fault(window, sensor.uid, kind, probability, value, rate or 0.0)

    def _offline(self, m: YMap, window: Window) -> Offline | None:
        self.ck.known_keys(m, ("devices", "buffer"), "offline")
        raw = m.get("devices")
        if raw is None:
            self.ck.error(m.line, "offline is missing the required field 'devices'")
            return None
        names = raw if isinstance(raw, YList) else [raw]
        lines = raw.item_lines if isinstance(raw, YList) else [m.line_of("devices")]
        keys: list[str] = []
        for name, line in zip(names, lines, strict=True):
            found = self.targets.devices(name)
            if isinstance(found, str):
                self.ck.error(line, f"offline: {found}")
                return None
            keys.extend(k for k in found if k not in keys)
        buffer = m.get("buffer", True)
        if not isinstance(buffer, bool):
            self.ck.error(m.line_of("buffer"), "offline: 'buffer' must be true or false")
            return None
        return Offline(window, tuple(keys), buffer)

    def _flow(self, m: YMap, window: Window) -> Flow | None:
        self.ck.known_keys(m, ("tank", "inflow", "outflow"), "flow")
        tank = self._tank(m, "flow")
        inflow = self._positive(m, "inflow", "flow (m³/h)", required=False, zero=True)
        outflow = self._positive(m, "outflow", "flow (m³/h)", required=False, zero=True)
        if "inflow" not in m and "outflow" not in m:
            self.ck.error(m.line, "flow needs 'inflow', 'outflow' or both (m³/h)")
            return None
        if tank is None:
            return None
        return Flow(window, tank, inflow, outflow)

    def _heat(self, m: YMap, window: Window) -> Heat | None:
        self.ck.known_keys(m, ("tank", "power"), "heat")
        tank = self._tank(m, "heat")
        power = self._positive(m, "power", "heat (kW)")
        if tank is None or power is None:
            return None
        return Heat(window, tank, power)

    def _tank_leak(self, m: YMap, window: Window) -> TankLeak | None:
        self.ck.known_keys(m, ("tank", "hole"), "tank_leak")
        tank = self._tank(m, "tank_leak")
        hole = self._positive(m, "hole", "tank_leak (hole diameter, mm)")
        if tank is None or hole is None:
            return None
        return TankLeak(window, tank, hole)

    def _storm(self, m: YMap, window: Window) -> Storm | None:
        self.ck.known_keys(
            m, ("gauges", "return_period", "duration", "peak", "scale", "formula"), "storm"
        )
        gauges = self._sensors(m, "gauges", ("rainfall",), "storm")
        period = self._positive(m, "return_period", "storm (years)")
        duration = self.ck.seconds(m, "duration", "storm", 0.0)
        if "duration" not in m:
            self.ck.error(m.line, "storm is missing the required field 'duration'")
            return None
        peak = self.ck.number(m, "peak", "storm", required=False)
        if peak is not None and not 0.0 < peak < 1.0:
            self.ck.error(
                m.line_of("peak"),
                f"storm: 'peak' (the peak's position as a fraction "
                f"of the duration) must lie strictly between 0 and 1, got {peak:g}",
            )
            return None
        scale = self._shares_any(m, "scale", "storm")
        formula = self._formula(m)
        if gauges is None or period is None or duration is None or scale is None or not formula:
            return None
        if not duration > 0:
            self.ck.error(m.line_of("duration"), "storm: 'duration' must be more than zero")
            return None
        named = {g.uid for g in gauges}
        for uid in scale:
            if uid not in named:
                self.ck.error(
                    m.line_of("scale"),
                    f"storm: 'scale' names {uid}, which is not one of its gauges",
                )
                return None
        return Storm(
            window.start_ms,
            duration,
            period,
            tuple((g.uid, scale.get(g.uid, 1.0)) for g in gauges),
            0.4 if peak is None else peak,
            formula[0],
        )

    def _shares_any(self, m: YMap, key: str, what: str) -> dict[str, float] | None:
        if key not in m:
            return {}
        raw = self.ck.as_map(m[key], m.line_of(key), f"{what}: {key!r}")
        if raw is None:
            return None
        out: dict[str, float] = {}
        for name in raw:
            sensor = self._named(name, raw.line_of(name), ("rainfall",), f"{what}: {key!r}")
            factor = self.ck.number(raw, name, f"{what}: {key!r}")
            if sensor is None or factor is None:
                return None
            if factor < 0:
                self.ck.error(raw.line_of(name), f"{what}: a scale factor cannot be negative")
                return None
            out[sensor.uid] = factor
        return out

    def _formula(self, m: YMap) -> list[StormFormula]:
        if "formula" not in m:
            return [StormFormula()]
        f = self.ck.as_map(m["formula"], m.line_of("formula"), "storm: 'formula'")
        if f is None:
            return []
        self.ck.known_keys(f, ("A1", "C", "b", "n"), "a storm formula")
        numbers: dict[str, Any] = {
            k: self.ck.number(f, k, "a storm formula") for k in ("A1", "C", "b", "n")
        }
        if any(v is None for v in numbers.values()):
            return []
        try:
            return [StormFormula(numbers["A1"], numbers["C"], numbers["b"], numbers["n"])]
        except ValueError as exc:
            self.ck.error(f.line, str(exc))
            return []

    def _rain(self, m: YMap, window: Window) -> Rain | None:
        self.ck.known_keys(m, ("gauges", "intensity"), "rain")
        gauges = self._sensors(m, "gauges", ("rainfall",), "rain")
        intensity = self._positive(m, "intensity", "rain (mm/h)")
        if gauges is None or intensity is None:
            return None
        return Rain(window, tuple(g.uid for g in gauges), intensity)

    def _reset(self, m: YMap, window: Window) -> CounterReset | None:
        self.ck.known_keys(m, ("gauges",), "reset")
        gauges = self._sensors(m, "gauges", ("rainfall",), "reset")
        if gauges is None:
            return None
        for g in gauges:
            if g.uid not in self.cumulative:
                self.ck.error(
                    m.line_of("gauges"),
                    f"reset: {g.uid} reports interval rain; only a cumulative counter can be reset",
                )
                return None
        return CounterReset(window.start_ms, tuple(g.uid for g in gauges))
