"""Naming things in a scenario file: sensors, devices and times.

A sensor is named by its uid ``enterprise/site/sensor``, or more briefly by ``site/sensor``
or its bare id when that is unique in the registry (``r-03/G2``, ``RG-P1``). Outages may also
name a whole enterprise or site, or ``"*"`` for every device. Times on the timeline are
clock times ``"02:00"`` (the first such time at or after the start, on the start's UTC
offset), offsets from the start (``+90min``, ``2h``), or ISO-8601 times with an offset.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from earlywarn.durations import parse_seconds
from earlywarn.model import Sensor
from earlywarn.registry import Registry

DAY_MS = 86_400_000


class Targets:
    """Resolves names against the registry; each method returns a message for a miss."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._short: dict[str, list[str]] = {}
        for uid, sensor in registry.sensors.items():
            self._short.setdefault(sensor.id, []).append(uid)
            self._short.setdefault(f"{sensor.site}/{sensor.id}", []).append(uid)

    def sensor(self, name: object) -> Sensor | str:
        """The sensor ``name`` means, or why it means none."""
        if not isinstance(name, str) or not name:
            return f"a sensor must be named by text, got {name!r}"
        if name in self.registry.sensors:
            return self.registry.sensors[name]
        found = self._short.get(name, [])
        if len(found) == 1:
            return self.registry.sensors[found[0]]
        if found:
            return f"sensor {name!r} is ambiguous ({', '.join(sorted(found))}): give its uid"
        return f"no sensor {name!r} in the registry (give enterprise/site/sensor)"

    def devices(self, name: object) -> list[str] | str:
        """Device keys (``enterprise/site/device``) of a sensor, site, enterprise or ``*``."""
        if name == "*":
            return sorted({device_key(s) for s in self.registry.sensors.values()})
        if isinstance(name, str) and name in self.registry.enterprises:
            return _keys(s for s in self.registry.sensors.values() if s.enterprise == name)
        if isinstance(name, str) and name.count("/") == 1:
            enterprise, site = name.split("/")
            if self.registry.site(enterprise, site) is not None:
                return _keys(
                    s
                    for s in self.registry.sensors.values()
                    if (s.enterprise, s.site) == (enterprise, site)
                )
        found = self.sensor(name)
        if isinstance(found, str):
            return f"{found}, enterprise or enterprise/site"
        return [device_key(found)]


def device_key(sensor: Sensor) -> str:
    """``enterprise/site/device`` of a sensor."""
    return f"{sensor.enterprise}/{sensor.site}/{sensor.device}"


def _keys(sensors: Iterable[Sensor]) -> list[str]:
    return sorted({device_key(s) for s in sensors})


def parse_start(value: object) -> int | str:
    """The scenario's start (ISO-8601 with a UTC offset) in epoch ms, or why not."""
    if not isinstance(value, str):
        return (
            "start must be quoted ISO-8601 text with an offset, such as "
            f'"2026-11-22T00:00:00+08:00", got {value!r}'
        )
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return f"start {value!r} is not an ISO-8601 time"
    if when.tzinfo is None or when.utcoffset() is None:
        return f"start {value!r} has no UTC offset (write +08:00): guessing would shift the run"
    return round(when.timestamp() * 1000)


def offset_of(value: str) -> int:
    """The UTC offset of an ISO-8601 time, in seconds."""
    offset = datetime.fromisoformat(value).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def parse_time(value: object, start_ms: int, utc_offset_s: int) -> int | str:
    """A timeline time in epoch ms, or why it is not one."""
    if isinstance(value, bool | int | float):
        return (
            f'time {value!r} must be quoted text: a clock time "02:00" (unquoted, YAML reads '
            "02:00 as a number), or an offset from the start such as +2h"
        )
    if not isinstance(value, str):
        return f"expected a time, got {value!r}"
    text = value.strip()
    if len(text) in (4, 5) and ":" in text and "T" not in text:
        hours, _, minutes = text.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
            return f'clock time {value!r} must be written "HH:MM"'
        h, m = int(hours), int(minutes)
        if h > 23 or m > 59:
            return f"clock time {value!r} does not exist"
        local_start = start_ms + utc_offset_s * 1000
        day = local_start - local_start % DAY_MS
        t = day + (h * 60 + m) * 60_000
        if t < local_start:
            t += DAY_MS
        return t - utc_offset_s * 1000
    if "T" in text:
        return parse_start(text)
    try:
        seconds = parse_seconds(text.removeprefix("+"))
    except ValueError as exc:
        return str(exc)
    return start_ms + round(seconds * 1000)


def format_local(t_ms: int, utc_offset_s: int) -> str:
    """``2026-11-22 02:00`` on the scenario's clock."""
    local = datetime(1970, 1, 1) + timedelta(milliseconds=t_ms + utc_offset_s * 1000)
    return local.strftime("%Y-%m-%d %H:%M")
