"""Serving the HTTP API next to a running :class:`EmbeddedRunner` or the alerter: ``run``,
``demo`` and ``alerter`` build it here, so all serve the same thing.

The API reads the runner's live counters, hand-off queue and connection through callables
evaluated at each request, on the runner's loop; the alert store is the runner's (or the
alerter's) own.
Onboarding through the API is applied only when the broker's authentication directory is
configured (``EARLYWARN_MQTT_AUTH_DIR``, the same variables as ``earlywarn onboard``);
otherwise submissions are checked but not applied.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from alerting.service import AlertService
from earlywarn.api.app import ApiContext, create_app
from earlywarn.api.server import ApiServer, parse_listen
from earlywarn.api.tokens import Tokens
from earlywarn.clock import Clock
from earlywarn.mosquitto_auth import AuthDir, BrokerReloader
from earlywarn.onboard import Onboarder
from earlywarn.onboard_cli import GROUP_ENV, MQTT_DIR_ENV, PID_ENV, RELOAD_ENV
from earlywarn.registry import Registry
from earlywarn.runner import EmbeddedRunner

LISTEN_ENV = "EARLYWARN_API_LISTEN"
TOKENS_ENV = "EARLYWARN_API_TOKENS"


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Where to serve, and the tokens (both checked before the service starts)."""

    host: str
    port: int
    tokens: Tokens

    @classmethod
    def from_flags(
        cls, listen: str | None, tokens_file: str | None, registry: Registry
    ) -> ApiSettings | None:
        """``--api``/``--api-tokens``, else ``EARLYWARN_API_LISTEN``/``EARLYWARN_API_TOKENS``;
        ``None`` when the API is off. ``ValueError`` (or ``TokensError``) says what is wrong:
        an API without tokens would let nobody in, or everybody."""
        listen = listen or os.environ.get(LISTEN_ENV)
        if not listen:
            return None
        host, port = parse_listen(listen)
        tokens_file = tokens_file or os.environ.get(TOKENS_ENV)
        if not tokens_file:
            msg = f"the API needs a tokens file: --api-tokens FILE or ${TOKENS_ENV}"
            raise ValueError(msg)
        tokens = Tokens.load(Path(tokens_file), set(registry.enterprises))
        return cls(host, port, tokens)


def onboarder_from_env(registry: Registry, clock: Clock) -> Onboarder | None:
    """The onboarder of ``EARLYWARN_MQTT_AUTH_DIR`` (and its reload settings), if set."""
    mqtt_dir = os.environ.get(MQTT_DIR_ENV)
    if not mqtt_dir:
        return None
    pid = os.environ.get(PID_ENV)
    return Onboarder(
        registry.path,
        AuthDir(Path(mqtt_dir), os.environ.get(GROUP_ENV) or None),
        BrokerReloader(Path(pid) if pid else None, os.environ.get(RELOAD_ENV) or None),
        clock,
    )


async def start_api(
    settings: ApiSettings,
    registry: Registry,
    runner: EmbeddedRunner | None,
    alerts: AlertService,
    onboarder: Onboarder | None,
) -> ApiServer:
    """Build the app over the alert service (and the runner's counters, hand-off queue and
    MQTT connection, when there is a runner: the alerter has none) and start serving on the
    running loop."""
    ctx = ApiContext(
        registry=registry,
        tokens=settings.tokens,
        store=alerts.store,
        ack=alerts.ack,
        onboarder=onboarder,
    )
    if runner is not None:
        ctx.counters = lambda: runner.counters
        ctx.queues = lambda: {
            "mqtt_handoff": len(runner.handoff) if runner.handoff is not None else 0
        }
        ctx.mqtt_connected = lambda: (
            runner.connection.connected.is_set() if runner.connection is not None else None
        )
    server = ApiServer(create_app(ctx), settings.host, settings.port)
    await server.start()
    return server
