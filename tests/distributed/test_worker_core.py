"""The worker's rules side without Kafka: ownership, saved state in and out, offline ticks on
an injected clock (hours of silence in milliseconds)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner

from earlywarn.clock import ManualClock
from earlywarn.registry import load_registry
from earlywarn.worker_core import WorkerCore, decode_state, encode_state, partition_of
from ingest.kafka_records import site_key
from ingest.mqtt import Inbound
from tests.distributed.worker_harness import T0, reading, write_registry

PARTITIONS = 4


def _inbound(message: tuple[str, bytes]) -> Inbound:
    return Inbound(message[0], message[1], 0, 1, T0)


@pytest.fixture
def core(tmp_path: Path) -> WorkerCore:
    registry = load_registry(write_registry(tmp_path, sites=8, detectors=2, offline=True))
    return WorkerCore(registry, ManualClock(T0), PARTITIONS)


def test_partition_of_is_the_producers_partitioner() -> None:
    partitioner = DefaultPartitioner()
    for s in range(50):
        key = site_key("acme", f"site-{s:02d}")
        assert partition_of(key, 8) == partitioner(key, list(range(8)), list(range(8)))


def test_a_batch_reports_the_sensors_and_zones_it_changed(core: WorkerCore) -> None:
    core.load(set(range(PARTITIONS)), lambda _uid: None, lambda _uid: None)
    out = core.handle([_inbound(reading(0, 0, 0, 30.0)), _inbound(reading(3, 1, 0, 2.0))])
    assert [(e.sensor, e.change.value) for e in out.alarms] == [("acme/site-00/GD-00", "raised")]
    assert set(out.sensors) == {"acme/site-00/GD-00", "acme/site-03/GD-01"}
    assert out.sensors["acme/site-03/GD-01"] == core.sensor_partition["acme/site-03/GD-01"]
    assert set(out.zones) == {"acme/site-00/north"}
    assert not out.deadletters


def test_saved_state_comes_back_and_a_corrupt_one_starts_afresh(
    core: WorkerCore, caplog: pytest.LogCaptureFixture
) -> None:
    everything = set(range(PARTITIONS))
    core.load(everything, lambda _uid: None, lambda _uid: None)
    core.handle([_inbound(reading(0, 0, 0, 30.0)), _inbound(reading(0, 1, 0, 30.0))])
    saved = {uid: core.sensor_value(uid) for uid in core.owned_sensors()}
    zone = {"acme/site-00/north": core.zone_value("acme/site-00/north")}
    assert decode_state(saved["acme/site-00/GD-00"]) == json.loads(saved["acme/site-00/GD-00"])
    saved["acme/site-00/GD-01"] = b"{broken"

    with caplog.at_level(logging.ERROR):
        core.load(everything, saved.get, zone.get)
    assert "acme/site-00/GD-01 cannot be read" in caplog.text
    out = core.handle([_inbound(reading(0, 0, 1, 30.0)), _inbound(reading(0, 1, 1, 30.0))])
    # GD-00 remembers it is orange; GD-01 lost its state and raises again.
    assert [(e.sensor, e.change.value) for e in out.alarms] == [("acme/site-00/GD-01", "raised")]


def test_offline_ticks_reach_only_the_owned_sensors(core: WorkerCore) -> None:
    mine = {0, 1}
    core.load(mine, lambda _uid: None, lambda _uid: None)
    assert isinstance(core.clock, ManualClock)
    expected = {uid for uid, p in core.sensor_partition.items() if p in mine}
    assert expected, "the test registry should put sensors on partitions 0 and 1"
    first = core.tick(core.clock.now_ms())  # starts the watch of the sensors never heard from
    assert not first.alarms
    assert set(first.sensors) == expected  # that start is saved
    core.clock.advance(3600_000)  # an hour of silence
    out = core.tick(core.clock.now_ms())
    assert {e.sensor for e in out.alarms} == expected
    assert {e.rule_kind for e in out.alarms} == {"offline"}
    assert set(out.sensors) == expected
    assert not core.tick(core.clock.now_ms()).alarms  # once


def test_statuses_are_counted_not_rejected(core: WorkerCore) -> None:
    core.load(set(range(PARTITIONS)), lambda _uid: None, lambda _uid: None)
    out = core.handle([Inbound("ew/v1/acme/site-00/GD-00/status", b"online", 0, 1, T0)])
    assert core.statuses == 1
    assert not out.deadletters
    assert not out.alarms


def test_state_values_round_trip() -> None:
    data = {"r": {"latch": {"level": 3}, "x": [1.5, None]}}
    assert decode_state(encode_state(data)) == data
    with pytest.raises(ValueError, match="JSON object"):
        decode_state(b"[1]")
