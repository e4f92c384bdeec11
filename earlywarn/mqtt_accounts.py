"""Which MQTT accounts an enterprise gets, and what each may publish and read.

One account per device (the ``…/{device}/up`` topic segment: a multi-channel tank
transmitter is one device), or with ``gateway`` mode one per site for a gateway that
publishes for every device of its site. Rights follow the topic contract
(docs/contracts.md), never wider:

- publish: ``ew/v1/{enterprise}/{site}/{device}/up`` and ``…/status`` of its own devices;
- read: ``ew/v1/{enterprise}/{site}/+/alarm``, the retained alarm states of its own site,
  for the site's sirens and PLCs.

Nothing else: not another device's topics, not another site's, not the dead-letter topic.
Account names are ``{enterprise}/{site}/{device}`` (gateway: ``{enterprise}/{site}``),
unique because topic ids are, and readable in the broker's log.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from earlywarn.model import Enterprise
from earlywarn.mosquitto_auth import AclEntry

TOPIC_ROOT = "ew/v1"


class Mode(enum.StrEnum):
    """How an enterprise's devices log in."""

    DEVICE = "device"
    GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class Account:
    """One MQTT login: its name, where it sits, and its topic rights."""

    user: str
    enterprise: str
    site: str
    devices: tuple[str, ...]
    write: tuple[str, ...]
    read: tuple[str, ...]

    @property
    def acl(self) -> AclEntry:
        """The account's ACL entry."""
        return AclEntry(self.user, self.write, self.read)


def device_topics(enterprise: str, site: str, device: str) -> tuple[str, str]:
    """``…/up`` and ``…/status`` of one device."""
    base = f"{TOPIC_ROOT}/{enterprise}/{site}/{device}"
    return f"{base}/up", f"{base}/status"


def site_alarms(enterprise: str, site: str) -> str:
    """The retained alarm states of every sensor and zone of one site."""
    return f"{TOPIC_ROOT}/{enterprise}/{site}/+/alarm"


def accounts_for(enterprise: Enterprise, mode: Mode) -> list[Account]:
    """The accounts of ``enterprise`` in ``mode``, in registry order."""
    accounts: list[Account] = []
    for site in enterprise.sites:
        devices = list(dict.fromkeys(s.device for s in site.sensors))
        read = (site_alarms(enterprise.id, site.id),)
        if mode is Mode.GATEWAY:
            if devices:
                write = tuple(t for d in devices for t in device_topics(enterprise.id, site.id, d))
                accounts.append(
                    Account(
                        f"{enterprise.id}/{site.id}",
                        enterprise.id,
                        site.id,
                        tuple(devices),
                        write,
                        read,
                    )
                )
            continue
        accounts.extend(
            Account(
                f"{enterprise.id}/{site.id}/{device}",
                enterprise.id,
                site.id,
                (device,),
                device_topics(enterprise.id, site.id, device),
                read,
            )
            for device in devices
        )
    return accounts
