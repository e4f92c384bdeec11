"""The bridge's MQTT 5 session: a shared subscription, manual acknowledgements, kept session.

Several bridges join one share group (``$share/{group}/…``) and the broker gives each message
to one of them. The session survives disconnects (clean start off, a long session expiry), so
the broker keeps every message it has not had a PUBACK for and sends it again when the bridge
comes back. It is the runner's :class:`~ingest.mqtt.MqttConnection` (same callbacks, same
:class:`~ingest.handoff.Handoff`, blocking when full so the broker holds back what we cannot
take yet), spoken in MQTT 5 and subscribed to the share group's filters.
"""

from __future__ import annotations

from ingest.handoff import Handoff
from ingest.mqtt import Inbound, Mqtt5Session, MqttConnection, MqttEndpoint
from ingest.topics import READINGS_FILTER, STATUS_FILTER

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


def shared_subscription(
    endpoint: MqttEndpoint,
    client_id: str,
    group: str,
    handoff: Handoff[Inbound],
    *,
    receive_maximum: int = 1000,
) -> MqttConnection:
    """One MQTT 5 client in a share group, feeding ``handoff``; ``ack`` once Kafka has it.

    ``receive_maximum``: enough unacknowledged messages out to us for Kafka batches to fill
    while earlier ones are being acknowledged.
    """
    return MqttConnection(
        endpoint,
        client_id,
        handoff,
        subscriptions=shared_filters(group),
        mqtt5=Mqtt5Session(SESSION_EXPIRY_S, receive_maximum),
    )
