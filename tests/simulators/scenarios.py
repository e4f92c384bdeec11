"""Small scenarios built in code, for tests that need one device rather than a registry."""

from __future__ import annotations

from simulators.scenario import (
    ChannelSpec,
    DeviceSpec,
    Event,
    GasRoom,
    Scenario,
    TankParams,
)

START = 1_795_284_000_000
"""2026-11-22T00:00:00+08:00."""
HOUR = 3_600_000


def gas_device(uid: str = "e/s/G1", interval_s: float = 5.0) -> DeviceSpec:
    enterprise, site, sensor = uid.split("/")
    channel = ChannelSpec(uid, sensor, None, "combustible_gas", "%LEL", 0.0, 100.0)
    return DeviceSpec(enterprise, site, sensor, (channel,), interval_s)


def tank_device(key: str = "e/s/T1") -> DeviceSpec:
    enterprise, site, device = key.split("/")
    channels = (
        ChannelSpec(f"{enterprise}/{site}/T1-LT", "T1-LT", "level", "tank_level", "m", 0, 20),
        ChannelSpec(f"{enterprise}/{site}/T1-TT", "T1-TT", "temp", "temperature", "°C", -20, 80),
        ChannelSpec(f"{enterprise}/{site}/T1-PT", "T1-PT", "press", "pressure", "kPa", 0, 250),
    )
    return DeviceSpec(enterprise, site, device, channels, 10.0)


def scenario(
    devices: tuple[DeviceSpec, ...],
    events: tuple[Event, ...] = (),
    *,
    hours: float = 1.0,
    seed: int = 1,
    rooms: dict[str, GasRoom] | None = None,
    tanks: dict[str, TankParams] | None = None,
) -> Scenario:
    return Scenario(
        "test",
        seed,
        START,
        START + round(hours * HOUR),
        8 * 3600,
        devices,
        events,
        rooms=rooms or {},
        tanks=tanks or {},
    )
