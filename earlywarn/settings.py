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


READINGS_AT_LIMIT = ("keep", "drop-oldest", "drop-new")
"""What the spool does with readings once it is full (alarms are always kept)."""


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Where readings and alarm history go: the local spool, then InfluxDB.

    ``influx_url`` ``None`` turns storage off (nothing is spooled: there is nowhere to drain
    to). The token is a secret and comes from the environment only.
    """

    influx_url: str | None = None
    influx_token: str = ""
    influx_org: str = "earlywarn"
    influx_bucket: str = "earlywarn"
    spool_path: str = "earlywarn-spool.db"
    spool_max_bytes: int = 2 * 1024**3
    readings_at_limit: str = "keep"
    site_every_s: float = 60.0
    """How often each site's status snapshot (the monitoring centre's map) is written."""

    @classmethod
    def from_env(
        cls, *, influx_url: str | None = None, spool_path: str | None = None
    ) -> StorageSettings:
        """Defaults, then ``EARLYWARN_INFLUX_URL``, ``EARLYWARN_INFLUX_TOKEN``,
        ``EARLYWARN_INFLUX_ORG``, ``EARLYWARN_INFLUX_BUCKET``, ``EARLYWARN_SPOOL``,
        ``EARLYWARN_SPOOL_MAX_MB`` and ``EARLYWARN_SPOOL_READINGS_AT_LIMIT``, then the flags.

        A wrong number or policy is a ``ValueError`` in plain words: a service that silently
        took a default spool limit could drop readings nobody agreed to drop.
        """
        base = cls()
        max_mb = os.environ.get("EARLYWARN_SPOOL_MAX_MB")
        max_bytes = base.spool_max_bytes
        if max_mb:
            try:
                max_bytes = int(float(max_mb) * 1024**2)
            except ValueError:
                msg = f"EARLYWARN_SPOOL_MAX_MB must be a number of megabytes, not {max_mb!r}"
                raise ValueError(msg) from None
            if max_bytes <= 0:
                msg = f"EARLYWARN_SPOOL_MAX_MB must be positive, not {max_mb!r}"
                raise ValueError(msg)
        policy = os.environ.get("EARLYWARN_SPOOL_READINGS_AT_LIMIT") or base.readings_at_limit
        if policy not in READINGS_AT_LIMIT:
            msg = (
                f"EARLYWARN_SPOOL_READINGS_AT_LIMIT must be one of {', '.join(READINGS_AT_LIMIT)}"
                f", not {policy!r}"
            )
            raise ValueError(msg)
        return replace(
            base,
            influx_url=influx_url or os.environ.get("EARLYWARN_INFLUX_URL") or None,
            influx_token=os.environ.get("EARLYWARN_INFLUX_TOKEN") or base.influx_token,
            influx_org=os.environ.get("EARLYWARN_INFLUX_ORG") or base.influx_org,
            influx_bucket=os.environ.get("EARLYWARN_INFLUX_BUCKET") or base.influx_bucket,
            spool_path=spool_path or os.environ.get("EARLYWARN_SPOOL") or base.spool_path,
            spool_max_bytes=max_bytes,
            readings_at_limit=policy,
        )


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
