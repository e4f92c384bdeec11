"""Publishing as the devices would: one MQTT connection per device, QoS 1, last wills.

Each device connects with its own client id and a last will of ``offline`` (retained, QoS 1)
on its status topic, as the contract expects from real devices. When the simulation says the
broker publishes a device's will, the device's connection is closed with MQTT 5's "disconnect
with will message", so the broker itself publishes it: the runner sees exactly what a dead
device causes. The device reconnects for its next message.

paho runs a network thread per connection; the only thing its callbacks do is set an event.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from simulators.device import OFFLINE
from simulators.messages import Message

log = logging.getLogger("simulators.mqtt")

DISCONNECT_WITH_WILL = 4


@dataclass(frozen=True, slots=True)
class Broker:
    """Where to publish (from ``mqtt://user:pass@host:port``, parsed by the caller)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class BrokerError(Exception):
    """The broker could not be reached, refused us, or did not acknowledge everything."""


def _device_of(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) == 6 and parts[0] == "ew" and parts[1] == "v1":
        return "/".join(parts[2:5])
    return None


class _Connection:
    """One client, connected; remembers what it published until the broker acknowledged it."""

    def __init__(self, broker: Broker, client_id: str, will_topic: str | None, timeout_s: float):
        self.client_id = client_id
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        if broker.username is not None:
            self.client.username_pw_set(broker.username, broker.password)
        if will_topic is not None:
            self.client.will_set(will_topic, OFFLINE, qos=1, retain=True)
        self.pending: list[mqtt.MQTTMessageInfo] = []
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(
            _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
        ) -> None:
            # paho's network thread: record the answer and wake the caller.
            if reason.is_failure:
                refused.append(str(reason))
            connected.set()

        self.client.on_connect = on_connect
        try:
            self.client.connect(broker.host, broker.port, keepalive=60)
        except OSError as exc:
            why = exc.strerror or str(exc)
            msg = f"cannot reach the MQTT broker at {broker}: {why}"
            raise BrokerError(msg) from None
        self.client.loop_start()
        if not connected.wait(timeout_s) or refused:
            self.client.loop_stop()
            why = refused[0] if refused else f"no answer within {timeout_s:g} s"
            msg = f"the MQTT broker at {broker} refused {client_id}: {why}"
            raise BrokerError(msg)

    def publish(self, message: Message) -> None:
        info = self.client.publish(
            message.topic, message.payload, qos=message.qos, retain=message.retain
        )
        if message.qos:
            self.pending.append(info)
            if len(self.pending) > 1000:
                self.pending = [p for p in self.pending if not p.is_published()]

    def settle(self, deadline: float) -> int:
        """Wait until the broker acknowledged everything; the number it did not."""
        for info in self.pending:
            left = deadline - time.monotonic()
            if left > 0 and not info.is_published():
                with contextlib.suppress(RuntimeError, ValueError):  # not sent: counted below
                    info.wait_for_publish(left)
        missing = sum(1 for p in self.pending if not p.is_published())
        self.pending = []
        return missing

    def close(self, *, with_will: bool = False) -> None:
        reason = ReasonCode(PacketTypes.DISCONNECT, identifier=DISCONNECT_WITH_WILL)
        self.client.disconnect(reasoncode=reason if with_will else None)
        self.client.loop_stop()


class DevicePublisher:
    """Sends messages over per-device connections, opened on first use."""

    def __init__(self, broker: Broker, *, timeout_s: float = 10.0, prefix: str = "sim-") -> None:
        self.broker = broker
        self.timeout_s = timeout_s
        self.prefix = prefix
        self._open: dict[str, _Connection] = {}
        self.sent = 0
        self.unacknowledged = 0

    def _client_id(self, message: Message) -> str:
        if message.client:
            return message.client
        device = _device_of(message.topic)
        return f"{self.prefix}{device.replace('/', '.')}" if device else f"{self.prefix}other"

    def _connection(self, client_id: str, topic: str) -> _Connection:
        conn = self._open.get(client_id)
        if conn is None:
            device = _device_of(topic)
            will = f"ew/v1/{device}/status" if device else None
            conn = _Connection(self.broker, client_id, will, self.timeout_s)
            self._open[client_id] = conn
            log.debug("connected %s", client_id)
        return conn

    def check(self) -> None:
        """Fail now, in plain words, if the broker cannot be reached."""
        probe = _Connection(self.broker, f"{self.prefix}check", None, self.timeout_s)
        probe.close()

    def send(self, message: Message) -> None:
        """Publish one message (or, for a will, drop the device's connection so the broker
        publishes it)."""
        client_id = self._client_id(message)
        if message.will and client_id in self._open:
            conn = self._open.pop(client_id)
            self.unacknowledged += conn.settle(time.monotonic() + self.timeout_s)
            conn.close(with_will=True)
            self.sent += 1
            return
        self._connection(client_id, message.topic).publish(message)
        self.sent += 1

    def close(self) -> int:
        """Wait for every acknowledgement and disconnect; the number never acknowledged."""
        deadline = time.monotonic() + self.timeout_s
        for conn in self._open.values():
            self.unacknowledged += conn.settle(deadline)
            conn.close()
        self._open.clear()
        return self.unacknowledged
