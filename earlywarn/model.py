"""The domain model: frozen, typed values shared by every package.

Identifiers (enterprise, site, sensor, person, region) are short ASCII tokens because they
appear in MQTT topics and InfluxDB tags; names are free text (Chinese by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rules.base import Rule
from rules.events import Change
from rules.levels import Level

__all__ = [
    "AlarmEvent",
    "Change",
    "Enterprise",
    "Level",
    "Person",
    "Reading",
    "Region",
    "Sensor",
    "Site",
    "format_value",
    "sensor_uid",
    "signal_unit",
]

_DECIMALS = {"m": 2, "MPa": 3, "个": 0}


def format_value(value: float, unit: str) -> str:
    """A value with its unit at a precision that suits the unit (``17.62 m``, ``26.0 %LEL``)."""
    return f"{value:.{_DECIMALS.get(unit, 1)}f} {unit}"


def signal_unit(rule_kind: str, unit: str) -> str:
    """The unit of what a rule kind judges: the sensor's unit, or a rate, minutes, seconds."""
    return {"rate": f"{unit}/h", "projection": "min", "offline": "s"}.get(rule_kind, unit)


def sensor_uid(enterprise: str, site: str, sensor: str) -> str:
    """The globally unique key of a sensor: ``enterprise/site/sensor`` (Kafka key, state key)."""
    return f"{enterprise}/{site}/{sensor}"


@dataclass(frozen=True, slots=True)
class Reading:
    """One measured value of one registered sensor at one instant (epoch milliseconds, UTC)."""

    sensor: str
    ts_ms: int
    value: float
    quality: int = 0


@dataclass(frozen=True, slots=True)
class Person:
    """Someone who can be woken: a responsible person of an enterprise or a duty officer.

    ``contacts`` pairs a channel name (``sms``, ``voice``, ``email``, ``dingtalk``…) with the
    address on that channel, in the order the person prefers them.
    """

    id: str
    name: str
    role: str
    phone: str
    contacts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Region:
    """An administrative area (county, township) whose duty officers follow the enterprises."""

    id: str
    name: str
    level: str
    parent: str | None
    people: tuple[Person, ...]
    duty: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Sensor:
    """A registered measuring point with its rules.

    ``device`` and ``channel`` say where its readings arrive: the topic segment of the device
    and, for a multi-channel device, the key in ``values``; a single-value sensor publishes on
    its own id with no channel.
    """

    uid: str
    enterprise: str
    site: str
    id: str
    kind: str
    name: str
    unit: str
    range: tuple[float, float]
    interval_s: float
    device: str
    channel: str | None
    rules: tuple[Rule, ...]
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class Site:
    """A place of an enterprise: a tank farm, a restaurant, a gauging station."""

    id: str
    enterprise: str
    name: str
    address: str
    location: tuple[float, float] | None
    sensors: tuple[Sensor, ...]


@dataclass(frozen=True, slots=True)
class Enterprise:
    """A supervised unit with its sites, its people and who is called at each level.

    ``chain`` maps each level to the ordered rungs (person ids) of its responsibility chain:
    操作负责人 → 技术负责人 → 主要负责人, then township and county duty officers.
    """

    id: str
    name: str
    kind: str
    region: str
    people: tuple[Person, ...]
    sites: tuple[Site, ...]
    chain: dict[Level, tuple[str, ...]] = field(hash=False)


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """A transition of one alarm, as routed, printed, published and stored.

    An alarm is identified by (sensor, rule) and its start: ``alarm_id`` is stable for every
    event of one occurrence and new after the alarm cleared and came back. ``flapping``: the
    alarm is chattering (its level changed too often lately, see :mod:`rules.latch`), and
    re-notification should be held back until it settles.
    """

    alarm_id: str
    sensor: str
    enterprise: str
    site: str
    sensor_id: str
    kind: str
    enterprise_name: str
    site_name: str
    sensor_name: str
    rule: str
    rule_kind: str
    change: Change
    level: Level | None
    previous: Level | None
    value: float
    setpoint: float
    setpoint_label: str
    unit: str
    ts_ms: int
    start_ms: int
    message: str
    window_ms: int | None = None
    flapping: bool = False
