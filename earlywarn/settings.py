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

    @classmethod
    def from_env(
        cls,
        *,
        mqtt_url: str | None = None,
        client_id: str | None = None,
        queue_capacity: int | None = None,
    ) -> RunSettings:
        """Defaults, then ``EARLYWARN_MQTT``/``EARLYWARN_CLIENT_ID``, then the flags given."""
        base = cls()
        return replace(
            base,
            mqtt_url=mqtt_url or os.environ.get("EARLYWARN_MQTT") or base.mqtt_url,
            client_id=client_id or os.environ.get("EARLYWARN_CLIENT_ID") or base.client_id,
            queue_capacity=queue_capacity or base.queue_capacity,
        )
