"""The sensor kinds the registry accepts, declared as a table of frozen descriptions.

A kind fixes the quantity and the units a sensor of that kind may report in; a reading whose
payload names another unit is rejected rather than compared against the wrong set-points.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SensorKind:
    """What a kind measures, its Chinese name for messages and the units it may use."""

    key: str
    zh: str
    en: str
    units: tuple[str, ...]


KINDS: dict[str, SensorKind] = {
    k.key: k
    for k in (
        SensorKind("combustible_gas", "可燃气体浓度", "combustible gas", ("%LEL", "LEL·m")),
        SensorKind("toxic_gas", "有毒气体浓度", "toxic gas", ("%OEL", "%IDLH", "ppm", "mg/m3")),
        SensorKind("oxygen", "氧气浓度", "oxygen", ("%VOL",)),
        SensorKind("tank_level", "液位", "tank level", ("m", "mm", "%")),
        SensorKind("temperature", "温度", "temperature", ("°C",)),
        SensorKind("pressure", "压力", "pressure", ("kPa", "MPa")),
        SensorKind("flow", "流量", "flow", ("m3/h", "t/h")),
        SensorKind("rainfall", "降雨量", "rainfall", ("mm",)),
        SensorKind("water_level", "水位", "water level", ("m",)),
    )
}
