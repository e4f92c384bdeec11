"""What a channel is asked to deliver, and what it answers.

These two values are the whole contract between escalation and channels: escalation decides
who is told what, when, on which channel; a channel only delivers one :class:`Notification` and
reports an :class:`Outcome`. Keeping the contract this small is what lets a new provider be
added without touching the escalation logic, and lets tests swap a channel at a seam we own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from earlywarn.model import Level


class Delivery(enum.Enum):
    """How a delivery attempt ended.

    ``RETRY``: worth trying again on the same channel later (timeout, connection refused,
    HTTP 5xx or 429). ``PERMANENT``: this channel will not reach this person with this
    address (HTTP 4xx other than 429, address rejected, channel not configured); escalation
    moves on to the person's next channel.
    """

    SENT = "sent"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one person on one channel.

    ``channel`` is the contact's channel name (``sms``, ``voice``, ``email``, ``dingtalk``,
    ``wecom``, ``feishu``, ``webhook``, ``console``) and ``address`` the person's address on
    it. ``subject`` is one short line (an SMS, a call's opening sentence, an e-mail subject);
    ``body`` the full text, which ends with the acknowledgement link when there is one.
    ``key`` is unique per delivery attempt (alarm, step, person, channel, attempt) so that a
    provider that supports it can drop a duplicate request.
    """

    key: str
    alarm_id: str
    person: str
    person_name: str
    channel: str
    address: str
    subject: str
    body: str
    level: Level | None
    link: str | None = None
    drill: bool = False
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Outcome:
    """The channel's answer: what happened, in plain words, and when a retry may come.

    ``retry_after_s`` carries a provider's own back-off request (HTTP ``Retry-After``).
    """

    delivery: Delivery
    detail: str = ""
    retry_after_s: float | None = None

    @classmethod
    def sent(cls, detail: str = "") -> Outcome:
        """Delivered (accepted by the provider or server)."""
        return cls(Delivery.SENT, detail)

    @classmethod
    def retry(cls, detail: str, retry_after_s: float | None = None) -> Outcome:
        """Failed now, may work later."""
        return cls(Delivery.RETRY, detail, retry_after_s)

    @classmethod
    def permanent(cls, detail: str) -> Outcome:
        """Will not work on this channel: move to the person's next channel."""
        return cls(Delivery.PERMANENT, detail)
