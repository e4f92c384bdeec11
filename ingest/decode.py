"""From an MQTT message to registered readings and rejections: the whole ingest decision.

Pure given its inputs (topic, payload, registry, the current time), so the runner, the
dead-letter tests and the property tests all exercise the same path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from earlywarn.model import Reading
from earlywarn.registry import Registry
from ingest.payloads import json_v1
from ingest.reasons import PayloadError, Reason
from ingest.topics import parse_device_topic

DEFAULT_MAX_FUTURE_MS = 5 * 60 * 1000
"""How far ahead of our clock a device's timestamp may be (clock skew) before it is rejected."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """One rejected message or element, with where in the message it was."""

    reason: Reason
    detail: str
    where: str = "message"


@dataclass(frozen=True, slots=True)
class Decoded:
    """Accepted readings (in timestamp order) and every rejection of one message."""

    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Limits:
    """Input limits, set in one place (the runner's settings)."""

    max_bytes: int = json_v1.MAX_BYTES
    max_readings: int = json_v1.MAX_READINGS
    max_future_ms: int = DEFAULT_MAX_FUTURE_MS


def decode_reading_message(
    topic: str, payload: bytes, registry: Registry, now_ms: int, limits: Limits = Limits()
) -> Decoded:
    """Decode a message published on an ``…/up`` topic."""
    address = parse_device_topic(topic)
    if address is None or address.suffix != "up":
        return Decoded(
            rejections=[
                Rejection(
                    Reason.BAD_TOPIC,
                    f"topic {topic!r} is not ew/v1/{{enterprise}}/{{site}}/{{sensor}}/up",
                )
            ]
        )
    try:
        parsed = json_v1.parse(
            payload, max_bytes=limits.max_bytes, max_readings=limits.max_readings
        )
    except PayloadError as exc:
        return Decoded(rejections=[Rejection(exc.reason, exc.detail)])
    out = Decoded(
        rejections=[Rejection(e.error.reason, e.error.detail, e.where) for e in parsed.rejected]
    )
    horizon = now_ms + limits.max_future_ms
    for raw in parsed.readings:
        where = f"values.{raw.channel}" if raw.channel is not None else "message"
        sensor = registry.resolve(address.enterprise, address.site, address.device, raw.channel)
        if sensor is None:
            out.rejections.append(
                _unregistered(
                    registry, address.enterprise, address.site, address.device, raw.channel, where
                )
            )
            continue
        if raw.unit is not None and raw.unit != sensor.unit:
            out.rejections.append(
                Rejection(
                    Reason.WRONG_UNIT,
                    f"{sensor.id} reports in {sensor.unit} but the message says {raw.unit!r}",
                    where,
                )
            )
            continue
        if raw.ts_ms > horizon:
            ahead = (raw.ts_ms - now_ms) / 1000
            out.rejections.append(
                Rejection(
                    Reason.FUTURE_TIMESTAMP,
                    f"timestamp is {ahead:.0f} s ahead of the server clock (device clock wrong?)",
                    where,
                )
            )
            continue
        out.readings.append(Reading(sensor.uid, raw.ts_ms, raw.value, raw.quality, raw.drill))
    out.readings.sort(key=lambda r: r.ts_ms)
    return out


def _unregistered(
    registry: Registry, enterprise: str, site: str, device: str, channel: str | None, where: str
) -> Rejection:
    found = registry.site(enterprise, site)
    channels = sorted(
        s.channel
        for s in (found.sensors if found else ())
        if s.device == device and s.channel is not None
    )
    if channels and channel is not None:
        return Rejection(
            Reason.UNKNOWN_CHANNEL,
            f"device {device!r} has no registered channel "
            f"{channel!r} (registered: {', '.join(channels)})",
            where,
        )
    if channels:
        return Rejection(
            Reason.UNKNOWN_CHANNEL,
            f"device {device!r} is registered with channels "
            f"({', '.join(channels)}); send them under 'values'",
            where,
        )
    what = device if channel is None else f"{device}.{channel}"
    return Rejection(
        Reason.UNKNOWN_SENSOR, f"no sensor {what!r} at {enterprise}/{site} in the registry", where
    )
