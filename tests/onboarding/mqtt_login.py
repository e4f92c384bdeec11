"""paho clients that log in with a user name and secret (MQTT 5, so the broker says why it
refuses a login or a publish), for the access-control tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

NOT_AUTHORIZED = 135
BAD_LOGIN = 134


@dataclass
class Login:
    """A connected (or refused) client; ``refused`` holds the CONNACK reason when refused."""

    client: mqtt.Client
    reason: ReasonCode | None = None
    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    acks: dict[int, ReasonCode] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def connected(self) -> bool:
        """The broker accepted the login."""
        return self.reason is not None and not self.reason.is_failure

    def publish(self, topic: str, payload: str) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        with self.cond:
            assert self.cond.wait_for(lambda: info.mid in self.acks, 5), "no PUBACK"
            return self.acks[info.mid]

    def subscribe(self, topic: str) -> list[ReasonCode]:
        """Subscribe at QoS 1; the SUBACK's reason codes."""
        got: list[list[ReasonCode]] = []

        def on_subscribe(
            _c: mqtt.Client, _u: object, _mid: int, codes: list[ReasonCode], _p: Properties
        ) -> None:
            with self.cond:
                got.append(codes)
                self.cond.notify_all()

        self.client.on_subscribe = on_subscribe
        self.client.subscribe(topic, qos=1)
        with self.cond:
            assert self.cond.wait_for(lambda: bool(got), 5), "no SUBACK"
        return got[0]

    def wait_for(self, topic: str, timeout_s: float = 5.0) -> list[mqtt.MQTTMessage]:
        """Messages on ``topic`` once at least one arrived (an assertion error if none)."""
        with self.cond:
            self.cond.wait_for(lambda: any(m.topic == topic for m in self.messages), timeout_s)
            found = [m for m in self.messages if m.topic == topic]
        assert found, f"nothing arrived on {topic}"
        return found

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def login(port: int, user: str, password: str, client_id: str | None = None) -> Login:
    """Connect as ``user``; returns once the broker answered (accepted or refused)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or user, protocol=mqtt.MQTTv5
    )
    client.username_pw_set(user, password)
    result = Login(client)

    def on_connect(
        _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: Properties | None
    ) -> None:
        with result.cond:
            result.reason = reason
            result.cond.notify_all()

    def on_publish(
        _c: mqtt.Client, _u: object, mid: int, reason: ReasonCode, _p: Properties
    ) -> None:
        with result.cond:
            result.acks[mid] = reason
            result.cond.notify_all()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with result.cond:
            result.messages.append(msg)
            result.cond.notify_all()

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    with result.cond:
        assert result.cond.wait_for(lambda: result.reason is not None, 5), "no CONNACK"
    if not result.connected:
        client.loop_stop()
    return result
