"""The bridge's MQTT 5 session: a shared subscription, manual acknowledgements, kept session.

Several bridges join one share group (``$share/{group}/…``) and the broker gives each message
to one of them. The session survives disconnects (clean start off, a long session expiry), so
the broker keeps every message it has not had a PUBACK for and sends it again when the bridge
comes back. Threads: paho's network thread runs the callbacks; they only wrap a message as an
:class:`~ingest.mqtt.Inbound` and put it in the :class:`Handoff` (blocking when full, so the
broker holds back what we cannot take yet).
"""

from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.handoff import Handoff
from ingest.mqtt import Inbound, MqttEndpoint, _no_delay
from ingest.topics import READINGS_FILTER, STATUS_FILTER

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
"""How long the broker keeps a bridge's session (and its unacknowledged messages) while the
bridge is away: a week covers a long outage; after that the share group's other members
have long taken over new messages."""


def shared_filters(group: str) -> tuple[str, ...]:
    """The shared-subscription filters of a share group: readings and device status."""
    if not group or any(c in group for c in "/+#"):
        msg = f"share group {group!r} must be a non-empty name without '/', '+' or '#'"
        raise ValueError(msg)
    return tuple(f"$share/{group}/{f}" for f in (READINGS_FILTER, STATUS_FILTER))


class SharedSubscription:
    """One MQTT 5 client in a share group, feeding a :class:`Handoff`; ``ack`` after Kafka."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        client_id: str,
        group: str,
        handoff: Handoff[Inbound],
        *,
        receive_maximum: int = 1000,
        keepalive: int = 30,
    ) -> None:
        self.endpoint = endpoint
        self.handoff = handoff
        self.filters = shared_filters(group)
        self.keepalive = keepalive
        self.subscribed = threading.Event()
        self.connects = 0
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if endpoint.username is not None:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        self._client.reconnect_delay_set(1, 30)
        self._connect_props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        self._connect_props.SessionExpiryInterval = SESSION_EXPIRY_S
        # How many unacknowledged messages the broker may have out to us at once: enough for
        # Kafka batches to fill while earlier ones are being acknowledged.
        self._connect_props.ReceiveMaximum = receive_maximum
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_socket_open = _no_delay

    def start(self) -> None:
        """Connect in the background; paho retries with backoff until the broker answers."""
        self._client.connect_async(
            self.endpoint.host,
            self.endpoint.port,
            self.keepalive,
            clean_start=False,
            properties=self._connect_props,
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect (the session stays on the broker) and stop the network thread."""
        self.handoff.close()
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, mid: int, qos: int) -> None:
        """PUBACK a message once Kafka has it (called from the event loop)."""
        if qos > 0:
            self._client.ack(mid, qos)

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
        # Subscribing again is harmless when the session survived and needed when it did not.
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.filters])

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
                "MQTT broker %s refused the shared subscription: %s",
                self.endpoint.url,
                ", ".join(str(r) for r in reasons),
            )
            return
        log.info("subscribed to %s", ", ".join(self.filters))
        self.subscribed.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self.subscribed.clear()
        if reason.is_failure:
            log.warning(
                "lost the MQTT broker %s (%s); reconnecting with backoff", self.endpoint.url, reason
            )

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.handoff.put(
            Inbound(msg.topic, bytes(msg.payload), msg.mid, msg.qos, time.time_ns() // 1_000_000)
        )
