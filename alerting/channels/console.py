"""The console channel: one plain line per notification on a stream, and in the log.

It always exists, so a registry whose contacts name no configured channel still shows who
would have been told what, and the demo and drills run without any provider. It cannot fail:
writing to stdout is the last resort of the escalation chain, not a delivery worth retrying.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from alerting.notifications import Notification, Outcome

log = logging.getLogger(__name__)


def format_notification(notification: Notification) -> str:
    """One line: channel, person, address, level, subject, alarm, attempt, link, drill."""
    n = notification
    level = n.level.label.upper() if n.level is not None else "CLEARED"
    drill = " [drill 演练]" if n.drill else ""
    link = f" {n.link}" if n.link else ""
    subject = " ".join(n.subject.split())
    return (
        f"notify{drill} {n.channel} → {n.person_name} <{n.address}>  {level}  {subject}"
        f"  (alarm {n.alarm_id}, attempt {n.attempt}){link}"
    )


class ConsoleChannel:
    """Writes each notification as one line to ``out`` (standard output by default)."""

    def __init__(self, name: str = "console", out: TextIO | None = None) -> None:
        self._name = name
        self._out = out

    @property
    def name(self) -> str:
        """The channel name contacts use (``console``)."""
        return self._name

    def send(self, notification: Notification) -> Outcome:
        """Write and flush the line; always SENT."""
        line = format_notification(notification)
        # sys.stdout is looked up at each send, not kept, so a redirected stdout is followed.
        out = self._out or sys.stdout
        try:
            out.write(line + "\n")
            out.flush()
        except (OSError, ValueError) as exc:  # a closed pipe or stream must not stop escalation
            log.warning("console channel could not write: %s", exc)
        log.info("%s", line)
        return Outcome.sent("written to the console")
