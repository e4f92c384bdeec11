"""An in-process MQTT broker (amqtt) for ``earlywarn demo`` only; production uses Mosquitto."""

from __future__ import annotations

import logging
import socket
from typing import Any

from amqtt.broker import Broker


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """amqtt on ``127.0.0.1:port``, anonymous, no ``$SYS`` chatter; use ``async with``."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._config = config
        self._broker: Any = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"mqtt://127.0.0.1:{self.port}"

    async def __aenter__(self) -> EmbeddedBroker:
        self._broker = Broker(self._config)
        await self._broker.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
