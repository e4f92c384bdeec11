"""Building the alert service from a loaded registry: the one place that knows both sides.

``alerting`` imports only the model, so something has to turn the registry (people, chains,
regions), ``routing.yaml``/``escalation.yaml`` and ``channels.yaml`` into the escalator's
inputs. Tests, ``run`` and ``demo`` all build it here, so they run the same wiring.
"""

from __future__ import annotations

from collections.abc import Mapping

from alerting.channels.base import Channel
from alerting.escalation import Directory, Escalator, Retry
from alerting.links import LinkSigner
from alerting.service import AlertService
from alerting.store import AlertStore
from earlywarn.alerting_config import AlertingConfig, load_alerting_config
from earlywarn.clock import Clock
from earlywarn.registry import Registry


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
