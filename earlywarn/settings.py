"""Runner settings, read in one place: command-line flags, then ``EARLYWARN_*`` variables."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace

from earlywarn.messages import Language
from ingest.decode import Limits


def default_client_id() -> str:
    """Stable per host, so the broker keeps our persistent session across restarts."""
    return f"earlywarn-{socket.gethostname()}"[:64]


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Everything the embedded runner needs besides the registry and the clock."""

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    client_id: str = field(default_factory=default_client_id)
    queue_capacity: int = 10_000
    batch_max: int = 500
    coalesce_s: float = 0.002
    tick_s: float = 1.0
    language: Language = "zh"
    keepalive_s: int = 30
    limits: Limits = field(default_factory=Limits)
    publish_alarms: bool = True
    escalate_s: float = 1.0
    """How often due escalation steps are looked for (a call is at most this late)."""
    ack_listen: str | None = None
    """``host:port`` of the acknowledgement web server (``None``: not served)."""
    public_url: str | None = None
    """The URL phones reach the acknowledgement server at (put in every link)."""
    link_secret: str | None = None
    """Secret that signs acknowledgement links (``None``: messages carry no link)."""
    webhook_secret: str | None = None
    """Shared secret of the SMS-reply and IVR webhooks (``None``: webhooks off)."""

    @classmethod
    def from_env(
        cls,
        *,
        mqtt_url: str | None = None,
        client_id: str | None = None,
        queue_capacity: int | None = None,
    ) -> RunSettings:
        """Defaults, then ``EARLYWARN_*`` variables, then the flags given.

        ``EARLYWARN_MQTT``, ``EARLYWARN_CLIENT_ID``; for acknowledgements
        ``EARLYWARN_ACK_LISTEN`` (``0.0.0.0:8780``), ``EARLYWARN_PUBLIC_URL``
        (``https://ew.example.cn``), ``EARLYWARN_LINK_SECRET`` and
        ``EARLYWARN_WEBHOOK_SECRET``. Secrets come from the environment only, never from
        flags (flags show in ``ps``).
        """
        base = cls()
        return replace(
            base,
            mqtt_url=mqtt_url or os.environ.get("EARLYWARN_MQTT") or base.mqtt_url,
            client_id=client_id or os.environ.get("EARLYWARN_CLIENT_ID") or base.client_id,
            queue_capacity=queue_capacity or base.queue_capacity,
            ack_listen=os.environ.get("EARLYWARN_ACK_LISTEN") or base.ack_listen,
            public_url=os.environ.get("EARLYWARN_PUBLIC_URL") or base.public_url,
            link_secret=os.environ.get("EARLYWARN_LINK_SECRET") or base.link_secret,
            webhook_secret=os.environ.get("EARLYWARN_WEBHOOK_SECRET") or base.webhook_secret,
        )
