"""End to end through a real Mosquitto: publish readings, get alarms, dead-letters, restarts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from earlywarn.model import AlarmEvent, Level
from earlywarn.registry import Registry
from earlywarn.settings import RunSettings
from tests.conftest import MqttProbe
from tests.services.mosquitto import Mosquitto
from tests.services.runner_thread import RunnerThread

pytestmark = pytest.mark.integration

GAS = "ew/v1/laojie-restaurants/r-03/G1/up"
GAS_ALARM = "ew/v1/laojie-restaurants/r-03/G1/alarm"
TANK = "ew/v1/huaxin-chem/tank-farm-1/T101/up"
DEADLETTER = "ew/v1/deadletter"
ProbeFactory = Callable[..., MqttProbe]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Events:
    """A sink that keeps the events (appended on the runner's loop, read by the test)."""

    def __init__(self) -> None:
        self.items: list[AlarmEvent] = []

    def emit(self, event: AlarmEvent) -> None:
        self.items.append(event)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def service(mosquitto: Mosquitto, registry: Registry, events: Events) -> Iterator[RunnerThread]:
    runner = RunnerThread(
        registry, RunSettings(mqtt_url=mosquitto.url, client_id="earlywarn-test"), sinks=[events]
    ).start()
    yield runner
    runner.stop()


def test_a_breach_raises_an_alarm_and_the_retained_topic_holds_it(
    service: RunnerThread, events: Events, probe_factory: ProbeFactory
) -> None:
    device = probe_factory("device")
    device.publish(GAS, json.dumps({"ts": now_ms(), "v": 57.5}))
    service.wait_for(lambda: len(events.items) == 1, 10, "alarm event")
    assert events.items[0].level is Level.RED and events.items[0].value == 57.5

    # A siren controller that connects later still gets the state: it is retained.
    siren = probe_factory("siren")
    siren.subscribe(GAS_ALARM)
    state = json.loads(siren.wait_for(GAS_ALARM)[0].payload)
    assert state["level"] == "red"
    assert state["event"]["alarm_id"] == events.items[0].alarm_id
    assert state["active"][0]["message"].endswith("（红色）")


def test_bad_input_is_dead_lettered_and_the_service_keeps_alarming(
    service: RunnerThread, events: Events, probe_factory: ProbeFactory
) -> None:
    watcher = probe_factory("watcher")
    watcher.subscribe(DEADLETTER)
    device = probe_factory("device")
    bad = [
        (GAS, b"this is not json", "bad_json"),
        (GAS, b'{"ts": %d, "v": NaN}' % now_ms(), "not_finite"),
        (
            "ew/v1/laojie-restaurants/r-03/G404/up",
            b'{"ts": %d, "v": 1}' % now_ms(),
            "unknown_sensor",
        ),
        (GAS, b'{"ts": %d, "v": 1}' % (now_ms() + 86_400_000), "future_timestamp"),
        (GAS, b'{"ts": %d, "v": 1, "pad": "%s"}' % (now_ms(), b"x" * 1_000_000), "too_large"),
    ]
    for topic, payload, _reason in bad:
        device.publish(topic, payload)
    letters = watcher.wait_for(DEADLETTER, len(bad))
    docs = [json.loads(m.payload) for m in letters]
    assert [d["reason"] for d in docs] == [reason for _t, _p, reason in bad]
    assert docs[0]["payload"] == "this is not json"
    assert docs[4]["payload_bytes"] > 1_000_000 and docs[4]["truncated"] is True
    assert all(d["detail"] for d in docs)

    device.publish(GAS, json.dumps({"ts": now_ms(), "v": 30}))
    service.wait_for(lambda: len(events.items) == 1, 10, "alarm after bad input")
    assert events.items[0].level is Level.ORANGE
    counts = service.snapshot()
    assert counts["rejected"] == {r: 1 for _t, _p, r in bad}
    assert counts["deadletters"] == len(bad)


def test_readings_after_a_broker_restart_are_all_evaluated(
    mosquitto: Mosquitto, service: RunnerThread, probe_factory: ProbeFactory
) -> None:
    device = probe_factory("device")
    device.publish(GAS, json.dumps({"ts": now_ms(), "v": 1}))
    service.wait_for(lambda: service.snapshot()["evaluated"] == 1, 10, "first reading")

    mosquitto.stop()
    assert service.runner.connection is not None
    service.wait_for(
        lambda: not service.runner.connection.connected.is_set(),
        10,
        "runner noticing the broker went away",
    )
    mosquitto.start()
    service.wait_for(service.runner.connection.subscribed.is_set, 30, "runner reconnecting")

    device = probe_factory("device-2")
    base = now_ms()
    count = 300
    for i in range(count):
        device.publish(TANK, json.dumps({"ts": base + i, "values": {"level": 10 + i / 1000}}))
    service.wait_for(
        lambda: service.snapshot()["evaluated"] == 1 + count, 20, "every reading after the restart"
    )
    assert service.snapshot()["rejected"] == {}


def test_readings_sent_while_the_service_is_down_arrive_when_it_returns(
    mosquitto: Mosquitto, registry: Registry, events: Events, probe_factory: ProbeFactory
) -> None:
    settings = RunSettings(mqtt_url=mosquitto.url, client_id="earlywarn-persistent")
    RunnerThread(registry, settings).start().stop()  # creates the persistent session

    device = probe_factory("device")
    base = now_ms()
    for i in range(50):
        device.publish(GAS, json.dumps({"ts": base + i, "v": 60 if i == 49 else 2}))

    runner = RunnerThread(registry, settings, sinks=[events]).start()
    try:
        runner.wait_for(lambda: runner.snapshot()["evaluated"] == 50, 20, "queued readings")
        runner.wait_for(lambda: len(events.items) == 1, 5, "alarm from a queued reading")
    finally:
        runner.stop()
    assert events.items[0].level is Level.RED


def test_a_full_queue_applies_backpressure_and_loses_nothing(
    mosquitto: Mosquitto, registry: Registry, probe_factory: ProbeFactory
) -> None:
    class SlowSink:
        """Every reading below alarms or clears; each event takes 2 ms to 'send'."""

        def __init__(self) -> None:
            self.count = 0

        def emit(self, event: AlarmEvent) -> None:
            time.sleep(0.002)
            self.count += 1

    sink = SlowSink()
    settings = RunSettings(
        mqtt_url=mosquitto.url, client_id="earlywarn-small-queue", queue_capacity=4, batch_max=2
    )
    runner = RunnerThread(registry, settings, sinks=[sink]).start()
    try:
        device = probe_factory("device")
        base = now_ms()
        count = 400
        for i in range(count):
            device.client.publish(GAS, json.dumps({"ts": base + i, "v": 60 if i % 2 else 0}), qos=1)
        runner.wait_for(lambda: runner.snapshot()["evaluated"] == count, 30, "all readings")
        counts = runner.snapshot()
    finally:
        runner.stop()
    assert sink.count == count - 1  # the first reading (0 %LEL) raises nothing
    assert counts["backpressure"] > 0


def test_the_service_waits_for_a_broker_that_starts_after_it(
    mosquitto: Mosquitto, registry: Registry, events: Events, probe_factory: ProbeFactory
) -> None:
    mosquitto.stop()
    settings = RunSettings(mqtt_url=mosquitto.url, client_id="earlywarn-early")
    runner = RunnerThread(registry, settings, sinks=[events]).start(wait=False)
    try:
        time.sleep(0.5)  # the runner is retrying against a closed port
        mosquitto.start()
        runner.wait_for(
            lambda: (
                runner.runner.connection is not None
                and runner.runner.connection.subscribed.is_set()
            ),
            30,
            "runner connecting once the broker is up",
        )
        probe_factory("device").publish(GAS, json.dumps({"ts": now_ms(), "v": 26}))
        runner.wait_for(lambda: len(events.items) == 1, 10, "alarm")
    finally:
        runner.stop()
    assert events.items[0].level is Level.ORANGE
