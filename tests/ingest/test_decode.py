"""Decoding against the registry: unknown sensors and channels, units, clocks, dead-letters."""

from __future__ import annotations

import base64
import json

from earlywarn.registry import Registry
from ingest.deadletter import EXCERPT_BYTES, deadletter_payload
from ingest.decode import decode_reading_message
from ingest.reasons import Reason

NOW = 1_795_284_000_000
TANK = "ew/v1/huaxin-chem/tank-farm-1/T101/up"
GAS = "ew/v1/laojie-restaurants/r-03/G1/up"


def test_single_and_multi_channel_readings_resolve_to_sensors(registry: Registry) -> None:
    gas = decode_reading_message(GAS, b'{"ts": 1795284000000, "v": 3.5}', registry, NOW)
    assert [(r.sensor, r.value) for r in gas.readings] == [("laojie-restaurants/r-03/G1", 3.5)]
    tank = decode_reading_message(
        TANK,
        b'{"ts": 1795284000000, "values": {"level": 12.0, "temp": 30.5, "press": 150}}',
        registry,
        NOW,
    )
    assert sorted(r.sensor for r in tank.readings) == [
        "huaxin-chem/tank-farm-1/T101-LT",
        "huaxin-chem/tank-farm-1/T101-PT",
        "huaxin-chem/tank-farm-1/T101-TT",
    ]
    assert tank.rejections == []


def test_unknown_sensor_channel_and_topic(registry: Registry) -> None:
    unknown = decode_reading_message(
        "ew/v1/laojie-restaurants/r-03/G9/up", b'{"ts": 1795284000000, "v": 1}', registry, NOW
    )
    assert [r.reason for r in unknown.rejections] == [Reason.UNKNOWN_SENSOR]
    assert "G9" in unknown.rejections[0].detail
    channel = decode_reading_message(
        TANK, b'{"ts": 1795284000000, "values": {"level": 12.0, "flow": 3}}', registry, NOW
    )
    assert [r.sensor for r in channel.readings] == ["huaxin-chem/tank-farm-1/T101-LT"]
    assert [(r.reason, r.where) for r in channel.rejections] == [
        (Reason.UNKNOWN_CHANNEL, "values.flow")
    ]
    topic = decode_reading_message("ew/v1/x/up", b"{}", registry, NOW)
    assert [r.reason for r in topic.rejections] == [Reason.BAD_TOPIC]


def test_timestamps_ahead_of_the_clock_are_rejected(registry: Registry) -> None:
    ahead = NOW + 24 * 3600 * 1000
    decoded = decode_reading_message(GAS, json.dumps({"ts": ahead, "v": 1}).encode(), registry, NOW)
    assert decoded.readings == []
    assert decoded.rejections[0].reason is Reason.FUTURE_TIMESTAMP
    assert "86400 s ahead" in decoded.rejections[0].detail
    skewed = decode_reading_message(
        GAS, json.dumps({"ts": NOW + 60_000, "v": 1}).encode(), registry, NOW
    )
    assert len(skewed.readings) == 1, "a minute of clock skew is tolerated"


def test_wrong_unit_is_rejected(registry: Registry) -> None:
    decoded = decode_reading_message(
        GAS, b'{"ts": 1795284000000, "v": 800, "unit": "ppm"}', registry, NOW
    )
    assert [r.reason for r in decoded.rejections] == [Reason.WRONG_UNIT]


def test_backfill_is_returned_in_time_order(registry: Registry) -> None:
    decoded = decode_reading_message(
        GAS,
        b'[{"ts": 1795284002000, "v": 3}, {"ts": 1795284000000, "v": 1},'
        b' {"ts": 1795284001000, "v": 2}]',
        registry,
        NOW,
    )
    assert [r.value for r in decoded.readings] == [1.0, 2.0, 3.0]


def test_deadletter_keeps_the_payload_or_a_safe_excerpt(registry: Registry) -> None:
    small = b'{"ts": 1795284000000, "v": "ERR"}'
    rejections = decode_reading_message(GAS, small, registry, NOW).rejections
    doc = json.loads(deadletter_payload(GAS, small, rejections, NOW))
    assert doc["payload"] == small.decode() and doc["truncated"] is False
    assert doc["reason"] == "bad_value" and doc["topic"] == GAS

    big = b'{"v": "' + "泄漏".encode() * 400_000 + b'"}'
    rejections = decode_reading_message(GAS, big, registry, NOW).rejections
    doc = json.loads(deadletter_payload(GAS, big, rejections, NOW))
    assert doc["reason"] == "too_large" and doc["payload_bytes"] == len(big)
    assert doc["truncated"] is True
    excerpt = (
        base64.b64decode(doc["payload_b64"]) if "payload_b64" in doc else doc["payload"].encode()
    )
    assert excerpt == big[:EXCERPT_BYTES]


def test_a_drill_flag_reaches_the_reading(registry: Registry) -> None:
    decoded = decode_reading_message(
        GAS, b'{"ts": 1795284000000, "v": 30, "drill": true}', registry, NOW
    )
    assert [r.drill for r in decoded.readings] == [True]
    plain = decode_reading_message(GAS, b'{"ts": 1795284000000, "v": 30}', registry, NOW)
    assert [r.drill for r in plain.readings] == [False]
