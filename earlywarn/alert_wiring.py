"""Building the alert service from a loaded registry: the one place that knows both sides.

``alerting`` imports only the model, so something has to turn the registry (people, chains,
regions), ``routing.yaml``/``escalation.yaml`` and ``channels.yaml`` into the escalator's
inputs. Tests, ``run`` and ``demo`` all build it here, so they run the same wiring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alerting.ackweb import AckServer
from alerting.channels.base import Channel
from alerting.escalation import Directory, Escalator, Retry
from alerting.links import LinkSigner
from alerting.service import AlertService
from alerting.store import AlertStore
from earlywarn.alerting_config import AlertingConfig, load_alerting_config
from earlywarn.clock import Clock
from earlywarn.registry import Registry
from earlywarn.settings import RunSettings


def directory_of(registry: Registry) -> Directory:
    """The registry's people, enterprises and regions, as escalation needs them."""
    return Directory(registry.people, registry.enterprises, registry.regions)


def build_alert_service(
    registry: Registry,
    store: AlertStore,
    clock: Clock,
    channels: Mapping[str, Channel],
    *,
    signer: LinkSigner | None = None,
    config: AlertingConfig | None = None,
    lang: str = "zh",
    drill: bool = False,
    retry: Retry | None = None,
) -> AlertService:
    """An alert service over ``store`` sending through ``channels``.

    ``config`` defaults to the registry directory's ``routing.yaml``/``escalation.yaml``
    (built-in defaults where absent); ``drill`` marks every alarm of this process a drill.
    """
    config = config or load_alerting_config(registry)
    escalator = Escalator(
        store,
        directory_of(registry),
        config.routing,
        config.policies,
        channels,
        signer,
        lang=lang,
        retry=retry,
    )
    return AlertService(store, escalator, clock.now_ms, drill=drill)


@dataclass
class AlertingRuntime:
    """What ``run`` and ``demo`` start next to the pipeline: the service over its store, and
    the acknowledgement web server when one is configured."""

    store: AlertStore
    service: AlertService
    ack_server: AckServer | None

    def close(self) -> None:
        """Close the store (the server is stopped by the runner)."""
        self.store.close()


class AlertingSetupError(ValueError):
    """The alerting settings cannot work together; the message says what to set."""


def open_alerting(
    registry: Registry,
    settings: RunSettings,
    clock: Clock,
    store_file: Path,
    channels: Mapping[str, Channel],
    *,
    drill: bool = False,
) -> AlertingRuntime:
    """Open the store at ``store_file`` and build the service and, if ``settings.ack_listen``
    is set, the acknowledgement server. Links need ``link_secret`` and a URL phones can
    reach (``public_url``, else ``http://{ack_listen}``)."""
    signer = None
    if settings.link_secret:
        base = settings.public_url or (
            f"http://{settings.ack_listen}" if settings.ack_listen else None
        )
        if base is None:
            msg = (
                "EARLYWARN_LINK_SECRET is set but no address for the links: set "
                "EARLYWARN_PUBLIC_URL (or EARLYWARN_ACK_LISTEN to serve them here)"
            )
            raise AlertingSetupError(msg)
        try:
            signer = LinkSigner(settings.link_secret.encode(), base)
        except ValueError as exc:
            raise AlertingSetupError(f"EARLYWARN_LINK_SECRET: {exc}") from None
    elif settings.ack_listen:
        msg = (
            "the acknowledgement server (EARLYWARN_ACK_LISTEN) needs EARLYWARN_LINK_SECRET "
            "to sign its links; generate one with `openssl rand -hex 32`"
        )
        raise AlertingSetupError(msg)
    store_file.parent.mkdir(parents=True, exist_ok=True)
    store = AlertStore(store_file)
    service = build_alert_service(
        registry, store, clock, channels, signer=signer, lang=settings.language, drill=drill
    )
    server = None
    if settings.ack_listen and signer is not None:
        server = AckServer(service, signer, clock.now_ms, webhook_secret=settings.webhook_secret)
    return AlertingRuntime(store, service, server)
