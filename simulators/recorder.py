"""Capturing live readings and statuses from a broker, with their arrival times.

A recording is what the field really sent — device quirks, late back-fills, garbage from a
faulty transmitter — to replay against a new rule set or a new release. Retained statuses
that the broker hands over on subscribing are kept too, flagged ``retain``.

The paho callback only turns the message into an immutable :class:`Message` stamped by the
injected clock and puts it on a queue; the caller's thread writes it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from simulators.messages import Message
from simulators.mqtt_out import Broker, BrokerError

TOPICS = ("ew/v1/+/+/+/up", "ew/v1/+/+/+/status")
"""Readings and device statuses of every enterprise."""


class Recorder:
    """Subscribes with QoS 1 to ``topics`` and hands each arrival to a sink, keeping the
    retain flag as the publisher set it."""

    def __init__(
        self,
        broker: Broker,
        *,
        topics: Sequence[str] = TOPICS,
        client_id: str = "earlywarn-record",
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        timeout_s: float = 10.0,
    ) -> None:
        self.broker = broker
        self.topics = tuple(topics)
        self.client_id = client_id
        self.now_ms = now_ms
        self.timeout_s = timeout_s
        self.ready = threading.Event()
        """Set once every subscription is acknowledged: from then on nothing is missed."""
        self._inbox: queue.Queue[Message] = queue.Queue()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        # paho's network thread: stamp and hand over, nothing else.
        self._inbox.put(
            Message(self.now_ms(), msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos)
        )

    def run(
        self,
        sink: Callable[[Message], None],
        stop: threading.Event,
        *,
        count: int | None = None,
        duration_s: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> int:
        """Record until ``stop`` is set, ``count`` messages arrived or ``duration_s`` passed;
        the number recorded. Raises :class:`BrokerError` if the broker cannot be reached."""
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if self.broker.username is not None:
            client.username_pw_set(self.broker.username, self.broker.password)
        subscribed = threading.Event()
        client.on_message = self._on_message
        client.on_subscribe = lambda *_args: subscribed.set()
        # MQTT 5's "retain as published": a broker otherwise clears the retain flag of what it
        # forwards live, and a replay would publish a device's status without it.
        options = SubscribeOptions(qos=1, retainAsPublished=True)
        client.on_connect = lambda c, *_args: c.subscribe([(t, options) for t in self.topics])
        try:
            client.connect(self.broker.host, self.broker.port, keepalive=60)
        except OSError as exc:
            msg = f"cannot reach the MQTT broker at {self.broker}: {exc.strerror or exc}"
            raise BrokerError(msg) from None
        client.loop_start()
        recorded = 0
        try:
            if not subscribed.wait(self.timeout_s):
                msg = f"the MQTT broker at {self.broker} did not confirm the subscription"
                raise BrokerError(msg)
            self.ready.set()
            deadline = None if duration_s is None else monotonic() + duration_s
            while not stop.is_set() and (count is None or recorded < count):
                if deadline is not None and monotonic() >= deadline:
                    break
                try:
                    message = self._inbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                sink(message)
                recorded += 1
            while count is None or recorded < count:  # what arrived before we stopped
                try:
                    message = self._inbox.get_nowait()
                except queue.Empty:
                    break
                sink(message)
                recorded += 1
        finally:
            client.disconnect()
            client.loop_stop()
        return recorded
