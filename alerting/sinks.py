"""Where alarm events go. Each output (console, MQTT, later channels and storage) is a sink."""

from __future__ import annotations

from typing import Protocol

from earlywarn.model import AlarmEvent


class AlarmSink(Protocol):
    """Receives every alarm event, in order, on the event loop; must not block for long."""

    def emit(self, event: AlarmEvent) -> None:
        """Take one event."""
        ...
