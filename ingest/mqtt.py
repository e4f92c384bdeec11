"""The MQTT connection of the runner (paho-mqtt): subscribe to readings, publish results.

Threads: paho's network thread runs the callbacks below; they only turn a message into an
immutable :class:`Inbound` and hand it to the event loop through :class:`Handoff`. Parsing,
rules and publishing happen on the loop. Acknowledgements are manual: a QoS 1 reading is
acknowledged to the broker only after it has been evaluated, so a crash between receipt and
evaluation makes the broker redeliver it to our persistent session instead of losing it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.handoff import Handoff
from ingest.topics import READINGS_FILTER

log = logging.getLogger(__name__)


def _no_delay(_client: mqtt.Client, _userdata: object, sock: object) -> None:
    """Turn Nagle's algorithm off: an alarm or an acknowledgement must not wait for the
    previous small packet to be acknowledged (tens of milliseconds on a quiet link)."""
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True, slots=True)
class Inbound:
    """A received MQTT message, as handed from paho's thread to the loop."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_ms: int


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """Where and how to connect, parsed from ``mqtt://[user[:password]@]host[:port]``."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        """The URL without the password, for logs."""
        user = f"{self.username}@" if self.username else ""
        return f"mqtt://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """Parse an ``mqtt://`` URL; ``ValueError`` in plain words if it is not one."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme != "mqtt":
        msg = f"unsupported scheme {parts.scheme!r} in {url!r}: use mqtt://host:port"
        raise ValueError(msg)
    if not parts.hostname:
        msg = f"no host in MQTT URL {url!r}: use mqtt://host:port"
        raise ValueError(msg)
    try:
        port = parts.port or 1883
    except ValueError:
        msg = f"invalid port in MQTT URL {url!r}"
        raise ValueError(msg) from None
    return MqttEndpoint(
        parts.hostname,
        port,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


@dataclass(frozen=True, slots=True)
class Mqtt5Session:
    """An MQTT 5 persistent session (the bridge's shared subscription needs MQTT 5).

    ``session_expiry_s``: how long the broker keeps the session and its unacknowledged
    messages while the client is away; ``receive_maximum``: how many unacknowledged messages
    the broker may have out to the client at once.
    """

    session_expiry_s: int
    receive_maximum: int

    def connect_properties(self) -> Properties:
        """The CONNECT properties that say so."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self.receive_maximum
        return props


class MqttConnection:
    """One persistent-session paho client that feeds a :class:`Handoff` and publishes."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        client_id: str,
        handoff: Handoff[Inbound],
        *,
        subscriptions: tuple[str, ...] = (READINGS_FILTER,),
        keepalive: int = 30,
        reconnect_min_s: int = 1,
        reconnect_max_s: int = 30,
        mqtt5: Mqtt5Session | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.handoff = handoff
        self.subscriptions = subscriptions
        self.keepalive = keepalive
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.connects = 0
        self.disconnects = 0
        self._connect_props: Properties | None = None
        if mqtt5 is None:
            self._client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                clean_session=False,
                protocol=mqtt.MQTTv311,
                manual_ack=True,
            )
        else:
            # MQTT 5 keeps the session by "clean start off" at connect plus an expiry.
            self._client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=mqtt.MQTTv5,
                manual_ack=True,
            )
            self._connect_props = mqtt5.connect_properties()
        if endpoint.username is not None:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        self._client.reconnect_delay_set(reconnect_min_s, reconnect_max_s)
        # Outgoing alarms queue in memory while the broker is away rather than being refused.
        self._client.max_queued_messages_set(0)
        self._client.max_inflight_messages_set(100)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_socket_open = _no_delay

    def start(self) -> None:
        """Connect in the background; paho retries with backoff until the broker answers."""
        if self._connect_props is None:
            self._client.connect_async(self.endpoint.host, self.endpoint.port, self.keepalive)
        else:
            self._client.connect_async(
                self.endpoint.host,
                self.endpoint.port,
                self.keepalive,
                clean_start=False,
                properties=self._connect_props,
            )
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly and stop the network thread."""
        self.handoff.close()
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a message once it has been fully handled (any thread)."""
        if qos > 0:
            self._client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish (any thread); queued by paho while disconnected, sent on reconnect."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.error("could not queue MQTT publish to %s: %s", topic, mqtt.error_string(info.rc))

    # --- paho network thread -------------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s refused the connection: %s", self.endpoint.url, reason)
            return
        self.connects += 1
        log.info(
            "connected to MQTT broker %s (session present: %s)",
            self.endpoint.url,
            flags.session_present,
        )
        # Subscribing again is harmless when the session survived, and required when the
        # broker lost it (restart without persistence).
        for topic in self.subscriptions:
            client.subscribe(topic, qos=1)
        self.connected.set()

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        if any(r.is_failure for r in reasons):
            log.error(
                "MQTT broker %s refused the subscription: %s",
                self.endpoint.url,
                ", ".join(str(r) for r in reasons),
            )
            return
        log.info("subscribed to %s", ", ".join(self.subscriptions))
        self.subscribed.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        self.disconnects += 1
        if reason.is_failure:
            log.warning(
                "lost the MQTT broker %s (%s); reconnecting with backoff", self.endpoint.url, reason
            )

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.handoff.put(
            Inbound(msg.topic, bytes(msg.payload), msg.mid, msg.qos, time.time_ns() // 1_000_000)
        )
