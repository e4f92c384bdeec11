"""The whole distributed path: a device publishes over MQTT → Mosquitto → ``earlywarn bridge``
→ Kafka ``ew.readings`` → ``earlywarn worker`` → ``ew.alarms`` → the alerter → the people,
each part a real process or server (Mosquitto, tansu, HTTP gateway)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from earlywarn.registry import Registry
from tests.alerting.night import sent
from tests.conftest import EXAMPLE_REGISTRY
from tests.distributed.bridge_harness import BridgeProcess, Publisher
from tests.distributed.test_alerter import (
    CALLS,
    GAS,
    T0,
    AlerterThread,
    requests_seen,
    settle,
)
from tests.distributed.worker_harness import WorkerProcess, alarm_events, create_topics
from tests.services.http_recorder import HttpRecorder
from tests.services.mosquitto import Mosquitto
from tests.services.tansu import Tansu

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PARTITIONS = 4


@pytest.fixture
def processes() -> Iterator[list[BridgeProcess | WorkerProcess]]:
    made: list[BridgeProcess | WorkerProcess] = []
    yield made
    for p in made:
        p.close()


def test_a_reading_published_over_mqtt_is_called_out_once_through_kafka(
    tmp_path: Path,
    mosquitto: Mosquitto,
    tansu: Tansu,
    registry: Registry,
    http_recorder: HttpRecorder,
    start_alerter: Callable[..., AlerterThread],
    processes: list[BridgeProcess | WorkerProcess],
) -> None:
    create_topics(tansu.bootstrap, PARTITIONS)
    bridge = BridgeProcess(tmp_path / "bridge", mosquitto.url, tansu.bootstrap, "bridge-1")
    # No offline ticks: the example's other sensors stay silent in this test.
    worker = WorkerProcess(
        tmp_path, "w1", tansu.bootstrap, EXAMPLE_REGISTRY, PARTITIONS, "--tick", "3600"
    )
    processes += [bridge, worker]
    bridge.start()
    worker.start()
    worker.wait_owns_all(PARTITIONS)
    alerter = start_alerter()

    enterprise, site, sensor = GAS.split("/")
    topic = f"ew/v1/{enterprise}/{site}/{sensor}/up"
    publisher = Publisher(mosquitto.port, "tank-farm-gateway")
    try:
        publisher.publish_all(
            [
                (f"ew/v1/{enterprise}/{site}/{sensor}/status", b"online"),
                (topic, json.dumps({"ts": T0, "v": 2.0}).encode()),
                (topic, json.dumps({"ts": T0 + 1000, "v": 63.0}).encode()),  # red
                (topic, json.dumps({"ts": T0 + 2000, "v": 64.0}).encode()),  # still red
            ]
        )
    finally:
        publisher.close()

    alerter.wait(lambda: len(sent(http_recorder, "/voice")) == CALLS, "the red alarm's calls")
    settle(alerter, http_recorder)
    events = alarm_events(tansu.bootstrap)
    assert [(e.sensor, e.change.value, e.level.label if e.level else "-") for e in events] == [
        (GAS, "raised", "red")
    ]
    counters = alerter.stop()
    assert (counters.alarm_events, counters.applied) == (1, 1)
    seen = requests_seen(http_recorder)
    assert max(seen.values()) == 1, seen  # every person called once
    worker_counters = worker.stop()
    assert worker_counters["device statuses (not evaluated)"] == 1
    assert worker_counters["readings"] == 3
    assert worker_counters["dead letters sent"] == 0
    bridge.stop()
