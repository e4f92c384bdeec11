"""Who is who for escalation: the registry's people, enterprises and regions.

``alerting`` imports nothing of earlywarn but its model, so the registry is handed over as
this value (``earlywarn.alert_wiring.directory_of`` builds it). Planning reads the chains
(enterprises) and rosters (regions), sending reads people and their contacts, and the
acknowledgement server finds who answered by SMS or keypress from a phone number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from earlywarn.model import Enterprise, Person, Region


@dataclass(frozen=True, slots=True)
class Directory:
    """Who is who: the registry's people, enterprises (chains) and regions (rosters)."""

    people: Mapping[str, Person]
    enterprises: Mapping[str, Enterprise]
    regions: Mapping[str, Region]

    def phone_owners(self, phone: str) -> list[Person]:
        """People whose phone or SMS/voice contact is ``phone`` (digits compared, so
        ``+86 138-0002-0003`` matches ``+8613800020003``)."""
        want = _digits(phone)
        if len(want) < 5:
            return []
        return [
            p
            for p in self.people.values()
            if _digits(p.phone).endswith(want[-11:])
            or any(c in ("sms", "voice") and _digits(a).endswith(want[-11:]) for c, a in p.contacts)
        ]


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())
