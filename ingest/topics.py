"""The v1 MQTT topic contract: ``ew/v1/{enterprise}/{site}/{sensor}/{up|status|alarm}``."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "ew/v1"
DEADLETTER = f"{PREFIX}/deadletter"
READINGS_FILTER = f"{PREFIX}/+/+/+/up"
STATUS_FILTER = f"{PREFIX}/+/+/+/status"


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """The address of a device as it appears in a topic, with the message type."""

    enterprise: str
    site: str
    device: str
    suffix: str

    def __post_init__(self) -> None:
        for part in (self.enterprise, self.site, self.device, self.suffix):
            if not part or "/" in part or "+" in part or "#" in part:
                msg = f"invalid topic segment {part!r}"
                raise ValueError(msg)


def parse_device_topic(topic: str) -> DeviceTopic | None:
    """Split a device topic, or ``None`` when it does not follow the v1 contract."""
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != "ew" or parts[1] != "v1":
        return None
    try:
        return DeviceTopic(parts[2], parts[3], parts[4], parts[5])
    except ValueError:
        return None


def up_topic(enterprise: str, site: str, device: str) -> str:
    """Where a device publishes readings."""
    return f"{PREFIX}/{enterprise}/{site}/{device}/up"


def status_topic(enterprise: str, site: str, device: str) -> str:
    """Where a device publishes ``online``/``offline`` (also its last will)."""
    return f"{PREFIX}/{enterprise}/{site}/{device}/status"


def alarm_topic(enterprise: str, site: str, sensor: str) -> str:
    """Where the alarm state of a sensor is published, retained, for sirens and PLCs."""
    return f"{PREFIX}/{enterprise}/{site}/{sensor}/alarm"
