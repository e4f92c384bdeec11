"""What the bridge writes to Kafka for each MQTT message, without any broker."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.kafka_records import (
    DEADLETTER_TOPIC,
    HEADER_RECEIVED_MS,
    HEADER_TOPIC,
    READINGS_TOPIC,
    record_for,
)
from ingest.shared_subscription import shared_filters


def test_a_reading_is_keyed_by_site_and_passed_on_byte_for_byte() -> None:
    payload = b'{"ts": 1795284000000, "v": 27.5}'
    record = record_for("ew/v1/huaxin-chem/tank-farm-1/T101-LT/up", payload, 1795284000123)
    assert record.topic == READINGS_TOPIC
    assert record.key == b"huaxin-chem/tank-farm-1"  # a zone's members share a partition
    assert record.value == payload
    assert dict(record.headers) == {
        HEADER_TOPIC: b"ew/v1/huaxin-chem/tank-farm-1/T101-LT/up",
        HEADER_RECEIVED_MS: b"1795284000123",
    }


def test_device_status_goes_with_the_readings_of_its_site() -> None:
    record = record_for("ew/v1/e/s/d/status", b"offline", 1)
    assert (record.topic, record.key, record.value) == (READINGS_TOPIC, b"e/s", b"offline")


@pytest.mark.parametrize(
    "topic", ["ew/v1//s/d/up", "ew/v1/e/s/d/alarm", "ew/v2/e/s/d/up", "ew/v1/e/s/up"]
)
def test_a_topic_that_cannot_be_keyed_is_a_dead_letter(topic: str) -> None:
    record = record_for(topic, b"{}", 5)
    assert record.topic == DEADLETTER_TOPIC
    assert record.key == topic.encode()
    doc = json.loads(record.value)
    assert (doc["reason"], doc["topic"], doc["payload"], doc["received_ms"]) == (
        "bad_topic",
        topic,
        "{}",
        5,
    )


def test_an_oversized_payload_is_a_dead_letter_with_an_excerpt() -> None:
    record = record_for("ew/v1/e/s/d/up", b"x" * 70_000, 5)
    doc = json.loads(record.value)
    assert record.topic == DEADLETTER_TOPIC
    assert (doc["reason"], doc["payload_bytes"], doc["truncated"]) == ("too_large", 70_000, True)


@given(st.text(max_size=80), st.binary(max_size=300))
def test_every_message_becomes_exactly_one_record(topic: str, payload: bytes) -> None:
    record = record_for(topic, payload, 0)
    assert record.topic in (READINGS_TOPIC, DEADLETTER_TOPIC)
    if record.topic == READINGS_TOPIC:
        assert record.value == payload
        assert topic == f"ew/v1/{record.key.decode()}/{topic.rsplit('/', 1)[1]}"


def test_share_group_names_cannot_change_the_filter() -> None:
    assert shared_filters("g1") == ("$share/g1/ew/v1/+/+/+/up", "$share/g1/ew/v1/+/+/+/status")
    for bad in ("", "a/b", "+", "#"):
        with pytest.raises(ValueError, match="share group"):
            shared_filters(bad)
