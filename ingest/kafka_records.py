"""What the MQTT→Kafka bridge writes: the topics, the key and the headers of each record.

The bridge forwards a device's payload bytes unchanged and describes them in headers, so the
distributed workers run the very decoder the embedded runner runs (``ingest.decode``) and a
registry change never needs the bridge restarted. Only what keying needs is checked here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.deadletter import deadletter_payload
from ingest.decode import Rejection
from ingest.payloads import json_v1
from ingest.reasons import Reason
from ingest.topics import parse_device_topic

READINGS_TOPIC = "ew.readings"
DEADLETTER_TOPIC = "ew.deadletter"

HEADER_TOPIC = "ew-topic"
"""The MQTT topic the message arrived on (UTF-8): tells ``…/up`` from ``…/status``."""
HEADER_RECEIVED_MS = "ew-received-ms"
"""When the bridge received it, epoch milliseconds as ASCII digits."""

FORWARDED_SUFFIXES = ("up", "status")


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One record to produce: topic, key, value and headers, ready for the producer."""

    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def record_for(
    mqtt_topic: str, payload: bytes, received_ms: int, max_bytes: int = json_v1.MAX_BYTES
) -> KafkaRecord:
    """The record for one MQTT message: ``ew.readings`` keyed by :func:`site_key`, or
    ``ew.deadletter`` with the reason when it cannot be keyed (bad topic) or is too large for
    any reading."""
    headers = (
        (HEADER_TOPIC, mqtt_topic.encode("utf-8")),
        (HEADER_RECEIVED_MS, str(received_ms).encode("ascii")),
    )
    address = parse_device_topic(mqtt_topic)
    if address is None or address.suffix not in FORWARDED_SUFFIXES:
        rejection = Rejection(
            Reason.BAD_TOPIC,
            f"topic {mqtt_topic!r} is not ew/v1/{{enterprise}}/{{site}}/{{sensor}}/up or /status",
        )
        return _deadletter(mqtt_topic, payload, rejection, received_ms, headers)
    if len(payload) > max_bytes:
        rejection = Rejection(
            Reason.TOO_LARGE, f"payload is {len(payload)} bytes, the limit is {max_bytes}"
        )
        return _deadletter(mqtt_topic, payload, rejection, received_ms, headers)
    return KafkaRecord(READINGS_TOPIC, site_key(address.enterprise, address.site), payload, headers)


def site_key(enterprise: str, site: str) -> bytes:
    """The key of a site's readings: ``{enterprise}/{site}`` (UTF-8).

    By site, not by sensor: a zone's composite rule (k of n sensors of one site) needs the
    levels of all its members in the worker that owns the zone, and a site is what a zone may
    span. One sensor is still always in one partition, so its readings keep their order; a
    province's thousands of sites spread over the partitions as evenly as its sensors would.
    """
    return f"{enterprise}/{site}".encode()


def _deadletter(
    mqtt_topic: str,
    payload: bytes,
    rejection: Rejection,
    received_ms: int,
    headers: tuple[tuple[str, bytes], ...],
) -> KafkaRecord:
    # Keyed by the MQTT topic: one misconfigured device's rejects stay in order together.
    value = deadletter_payload(mqtt_topic, payload, [rejection], received_ms)
    return KafkaRecord(DEADLETTER_TOPIC, mqtt_topic.encode("utf-8"), value, headers)
