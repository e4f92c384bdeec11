"""The channel interface: deliver one notification, say how it went.

A channel's ``send`` may block on the network; the dispatcher calls it off the event loop and
with a timeout of its own, so a hung provider never delays the next alarm. A channel does not
retry by itself and never raises for a delivery problem: it classifies the problem into an
:class:`~alerting.notifications.Outcome` and leaves back-off and fallback to escalation, which
records every attempt durably.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from alerting.notifications import Delivery, Notification, Outcome


@runtime_checkable
class Channel(Protocol):
    """Delivers notifications of one channel name (``sms``, ``voice``, ``email``…)."""

    @property
    def name(self) -> str:
        """The channel name contacts use for it."""
        ...

    def send(self, notification: Notification) -> Outcome:
        """Deliver one notification; classify any failure instead of raising."""
        ...


def log_outcome(
    log: logging.Logger, channel: str, notification: Notification, outcome: Outcome, sent: str
) -> None:
    """One log line per delivery: ``sent`` at INFO, anything else at WARNING with its detail,
    the same shape for every channel so the duty room's log reads as one."""
    if outcome.delivery is Delivery.SENT:
        log.info("%s: %s", channel, sent)
    else:
        log.warning(
            "%s: %s for %s: %s", channel, outcome.delivery.value, notification.key, outcome.detail
        )
