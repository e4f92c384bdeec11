"""The MQTT→Kafka bridge against a real Mosquitto and a real Kafka-protocol broker (tansu).

The contract is at-least-once: every message published with QoS 1 ends up in Kafka; after a
crash or a Kafka outage some may be there twice. The tests count copies and say how many.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.kafka_records import DEADLETTER_TOPIC, HEADER_RECEIVED_MS, HEADER_TOPIC, READINGS_TOPIC
from tests.distributed.bridge_harness import (
    BridgeProcess,
    Publisher,
    copies,
    kafka_count,
    out_of_order,
    published,
    read_all,
    readings,
    sensor_uid,
    wait_until,
)
from tests.services.mosquitto import Mosquitto
from tests.services.tansu import Tansu

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    p = Publisher(mosquitto.port)
    yield p
    p.close()


@pytest.fixture
def bridges(tmp_path: Path, mosquitto: Mosquitto, tansu: Tansu) -> Iterator[list[BridgeProcess]]:
    made: list[BridgeProcess] = []
    yield made
    for b in made:
        b.close()


def _bridge(
    made: list[BridgeProcess], tmp_path: Path, mosquitto: Mosquitto, tansu: Tansu, name: str
) -> BridgeProcess:
    b = BridgeProcess(tmp_path / "bridges", mosquitto.url, tansu.bootstrap, name)
    made.append(b)
    return b


def test_readings_arrive_keyed_by_site_with_payload_and_order(
    tmp_path: Path,
    mosquitto: Mosquitto,
    tansu: Tansu,
    publisher: Publisher,
    bridges: list[BridgeProcess],
) -> None:
    bridge = _bridge(bridges, tmp_path, mosquitto, tansu, "bridge-a")
    bridge.start()
    sent = readings(sensors=5, per_sensor=200)
    status = ("ew/v1/acme/plant-1/s0/status", b"online")
    publisher.publish_all([*sent[:10], status, *sent[10:]])
    wait_until(
        lambda: kafka_count(tansu.bootstrap, READINGS_TOPIC) >= len(sent) + 1,
        60,
        "every reading in Kafka",
    )
    counters = bridge.stop()

    records = read_all(tansu.bootstrap, READINGS_TOPIC)
    assert len(records) == len(sent) + 1 == counters["forwarded to ew.readings"]
    assert counters["received"] == counters["acknowledged (MQTT)"] == len(sent) + 1
    by_payload = {value: topic for topic, value in sent}
    status_records = [r for r in records if r.value == b"online"]
    assert len(status_records) == 1
    assert status_records[0].key == "acme/plant-1"
    assert status_records[0].headers[HEADER_TOPIC] == b"ew/v1/acme/plant-1/s0/status"
    for r in records:
        if r.value == b"online":
            continue
        topic = by_payload[r.value]  # the payload bytes arrive unchanged
        assert r.key == "/".join(sensor_uid(topic).split("/")[:2])  # the site
        assert r.headers[HEADER_TOPIC] == topic.encode()
        assert int(r.headers[HEADER_RECEIVED_MS]) > 1_700_000_000_000
    readings_only = [r for r in records if r.value != b"online"]
    assert max(copies(readings_only).values()) == 1
    assert out_of_order(readings_only) == 0  # one bridge: each sensor's order is kept


def test_unkeyable_and_oversized_messages_go_to_the_deadletter_topic(
    tmp_path: Path,
    mosquitto: Mosquitto,
    tansu: Tansu,
    publisher: Publisher,
    bridges: list[BridgeProcess],
) -> None:
    bridge = _bridge(bridges, tmp_path, mosquitto, tansu, "bridge-dl")
    bridge.start()
    good = readings(sensors=1, per_sensor=3)
    empty_site = ("ew/v1/acme//s1/up", b'{"ts": 1795284000000, "v": 1}')  # '+' matches ''
    huge = ("ew/v1/acme/plant-1/s9/up", b"x" * (70 * 1024))
    publisher.publish_all([good[0], empty_site, good[1], huge, good[2]])
    wait_until(
        lambda: (
            kafka_count(tansu.bootstrap, DEADLETTER_TOPIC) >= 2
            and kafka_count(tansu.bootstrap, READINGS_TOPIC) >= 3
        ),
        60,
        "dead letters and readings in Kafka",
    )
    counters = bridge.stop()

    dead = read_all(tansu.bootstrap, DEADLETTER_TOPIC)
    docs = {r.key: json.loads(r.value) for r in dead}
    assert docs["ew/v1/acme//s1/up"]["reason"] == "bad_topic"
    assert docs["ew/v1/acme//s1/up"]["payload"] == empty_site[1].decode()
    assert docs["ew/v1/acme/plant-1/s9/up"]["reason"] == "too_large"
    assert docs["ew/v1/acme/plant-1/s9/up"]["truncated"] is True
    assert len(read_all(tansu.bootstrap, READINGS_TOPIC)) == 3
    assert counters["sent to ew.deadletter"] == 2
    assert counters["acknowledged (MQTT)"] == 5


def test_a_killed_bridge_loses_no_reading(
    tmp_path: Path,
    mosquitto: Mosquitto,
    tansu: Tansu,
    publisher: Publisher,
    bridges: list[BridgeProcess],
) -> None:
    bridge = _bridge(bridges, tmp_path, mosquitto, tansu, "bridge-k")
    bridge.start()
    sent = readings(sensors=10, per_sensor=300)  # 3,000
    done = threading.Event()

    def publish() -> None:
        for start in range(0, len(sent), 100):
            publisher.publish_all(sent[start : start + 100])
        done.set()

    thread = threading.Thread(target=publish)
    thread.start()
    wait_until(
        lambda: kafka_count(tansu.bootstrap, READINGS_TOPIC) >= 500, 60, "500 readings in Kafka"
    )
    bridge.kill()  # mid-stream: some messages handed over, some produced, none acknowledged
    at_kill = kafka_count(tansu.bootstrap, READINGS_TOPIC)
    bridge.start()
    thread.join(60)
    assert done.is_set(), "the publisher did not finish"
    wait_until(
        lambda: set(copies(read_all(tansu.bootstrap, READINGS_TOPIC))) >= published(sent),
        90,
        "every reading in Kafka after the restart",
    )
    bridge.stop()

    records = read_all(tansu.bootstrap, READINGS_TOPIC)
    found = copies(records)
    assert set(found) == published(sent)  # none lost
    duplicates = len(records) - len(found)
    print(
        f"\nkill test: {len(sent)} published, {at_kill} in Kafka at the kill, "
        f"{len(records)} records after restart, {duplicates} duplicates (at-least-once)"
    )


def test_two_bridges_in_one_share_group_split_the_load(
    tmp_path: Path,
    mosquitto: Mosquitto,
    tansu: Tansu,
    publisher: Publisher,
    bridges: list[BridgeProcess],
) -> None:
    first = _bridge(bridges, tmp_path, mosquitto, tansu, "bridge-1")
    second = _bridge(bridges, tmp_path, mosquitto, tansu, "bridge-2")
    first.start()
    second.start()
    sent = readings(sensors=20, per_sensor=100)  # 2,000
    publisher.publish_all(sent)
    wait_until(
        lambda: set(copies(read_all(tansu.bootstrap, READINGS_TOPIC))) >= published(sent),
        60,
        "every reading in Kafka",
    )
    one, two = first.stop(), second.stop()

    records = read_all(tansu.bootstrap, READINGS_TOPIC)
    assert one["forwarded to ew.readings"] > 0
    assert two["forwarded to ew.readings"] > 0  # both took a share
    assert one["forwarded to ew.readings"] + two["forwarded to ew.readings"] == len(sent)
    assert len(records) == len(sent)  # no failure, so no duplicate: each exactly once
    assert set(copies(records)) == published(sent)
    # Mosquitto shares round-robin, so one sensor's readings pass through both bridges and
    # may reach Kafka out of order; measured, not asserted (docs/distributed.md).
    print(
        f"\nshare group: {one['forwarded to ew.readings']} + {two['forwarded to ew.readings']} "
        f"of {len(sent)}; {out_of_order(records)} readings behind a later one of their sensor"
    )


def test_nothing_is_lost_while_kafka_is_away(
    tmp_path: Path,
    mosquitto: Mosquitto,
    tansu: Tansu,
    publisher: Publisher,
    bridges: list[BridgeProcess],
) -> None:
    bridge = _bridge(bridges, tmp_path, mosquitto, tansu, "bridge-o")
    bridge.start()
    before = readings(sensors=5, per_sensor=100)
    publisher.publish_all(before)
    wait_until(
        lambda: set(copies(read_all(tansu.bootstrap, READINGS_TOPIC))) >= published(before),
        60,
        "the first readings in Kafka",
    )
    # tansu keeps records in memory only: a restarted tansu starts empty, so the readings
    # published before the outage are checked now and those during it after the restart.
    tansu.stop()
    during = readings(sensors=5, per_sensor=100, start=100)
    publisher.publish_all(during)  # Mosquitto has them; the bridge cannot pass them on
    wait_until(lambda: "holding them unacknowledged" in bridge.log(), 60, "the bridge to notice")
    tansu.start()
    wait_until(
        lambda: set(copies(read_all(tansu.bootstrap, READINGS_TOPIC))) >= published(during),
        120,
        "the readings of the outage in Kafka",
    )
    counters = bridge.stop()

    records = read_all(tansu.bootstrap, READINGS_TOPIC)
    assert set(copies(records)) == published(during)  # none lost
    assert counters["kafka failures"] >= 1
    assert "accepts records again" in bridge.log()
    print(
        f"\nKafka outage: {len(during)} published while away, {len(records)} records after, "
        f"{len(records) - len(published(during))} duplicates; "
        f"{counters['kafka failures']} failed attempts"
    )


def test_stopping_while_kafka_is_away_leaves_the_messages_with_the_broker(
    tmp_path: Path,
    mosquitto: Mosquitto,
    tansu: Tansu,
    publisher: Publisher,
    bridges: list[BridgeProcess],
) -> None:
    bridge = _bridge(bridges, tmp_path, mosquitto, tansu, "bridge-s")
    bridge.start()
    tansu.stop()
    sent = readings(sensors=5, per_sensor=20)
    publisher.publish_all(sent)
    wait_until(lambda: "holding them unacknowledged" in bridge.log(), 60, "the bridge to notice")
    counters = bridge.stop()  # SIGTERM: prompt, acknowledges nothing Kafka did not take
    assert counters["acknowledged (MQTT)"] == 0
    assert "will be delivered again" in bridge.log()

    tansu.start()
    bridge.start()  # the same client id: its session still holds every message
    wait_until(
        lambda: set(copies(read_all(tansu.bootstrap, READINGS_TOPIC))) >= published(sent),
        60,
        "every reading in Kafka after the restart",
    )
    assert bridge.stop()["acknowledged (MQTT)"] >= len(sent)
