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
    "DEFAULT_TIMEZONE",
    "MINUTES_PER_DAY",
    "AlarmEvent",
    "Change",
    "DutyRef",
    "Enterprise",
    "Level",
    "Person",
    "Reading",
    "Region",
    "Rung",
    "Sensor",
    "Shift",
    "Site",
    "Target",
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
    """One measured value of one registered sensor at one instant (epoch milliseconds, UTC).

    ``drill``: the publisher (a simulator or a replay run with ``--drill``) declared it drill
    data; the alarms it raises are drill alarms.
    """

    sensor: str
    ts_ms: int
    value: float
    quality: int = 0
    drill: bool = False


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


DEFAULT_TIMEZONE = "Asia/Shanghai"
MINUTES_PER_DAY = 1440


@dataclass(frozen=True, slots=True)
class Shift:
    """One entry of a region's weekly duty roster: who is on duty, which days, from when.

    ``days`` are the days the shift *starts* on (0 = Monday … 6 = Sunday). It runs from
    ``start_min`` to ``end_min`` (minutes after local midnight, 0 to 1440); an end
    at or before the start means the next day, so ``18:00``–``08:00`` is a night shift and
    ``08:30``–``08:30`` the 24-hour shift (24小时值班) common in emergency bureaus.
    """

    days: tuple[int, ...]
    start_min: int
    end_min: int
    duty: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.days or any(not 0 <= d <= 6 for d in self.days):
            msg = f"days must be 0 (Monday) … 6 (Sunday), got {self.days!r}"
            raise ValueError(msg)
        if not 0 <= self.start_min < MINUTES_PER_DAY or not 0 <= self.end_min <= MINUTES_PER_DAY:
            msg = f"a shift's minutes must lie in 0–1440, got {self.start_min}–{self.end_min}"
            raise ValueError(msg)
        if not self.duty:
            msg = "a shift names nobody"
            raise ValueError(msg)

    @property
    def minutes(self) -> int:
        """How long the shift lasts: up to 24 hours, past midnight when it ends before it starts."""
        return (self.end_min - self.start_min) % MINUTES_PER_DAY or MINUTES_PER_DAY


@dataclass(frozen=True, slots=True)
class Region:
    """An administrative area (county, township) whose duty officers follow the enterprises.

    ``duty`` is everyone who may be on duty. Without a ``roster`` they all are, always; with
    one, :func:`alerting.roster.on_duty` says who is at a given instant, read on the local
    clock of ``timezone`` (an IANA name), so "the county duty officer" is resolved when a
    message is sent, not when the registry was loaded.
    """

    id: str
    name: str
    level: str
    parent: str | None
    people: tuple[Person, ...]
    duty: tuple[str, ...]
    roster: tuple[Shift, ...] = ()
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True, slots=True)
class DutyRef:
    """A rung target written ``duty:<region>``: whoever is on duty there at the moment of sending.

    Naming a duty officer by person id calls that person even on their day off; a duty
    reference follows the region's roster. ``duty:township`` and ``duty:county`` in a chain
    are resolved to the region id when the registry is loaded.
    """

    region: str

    def __str__(self) -> str:
        return f"duty:{self.region}"


Target = str | DutyRef
"""Who a rung reaches: a person id, or the duty officer(s) of a region."""

Rung = tuple[Target, ...]
"""One rung of a responsibility chain: targets notified together, at the same step."""


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

    ``chain`` maps each level to the ordered rungs of its responsibility chain:
    操作负责人 → 技术负责人 → 主要负责人, then township and county duty officers. A rung is a
    tuple of targets (person ids or :class:`DutyRef`) that are notified together; a rung
    written as one name is a tuple of one.
    """

    id: str
    name: str
    kind: str
    region: str
    people: tuple[Person, ...]
    sites: tuple[Site, ...]
    chain: dict[Level, tuple[Rung, ...]] = field(hash=False)


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """A transition of one alarm, as routed, printed, published and stored.

    An alarm is identified by (sensor, rule) and its start: ``alarm_id`` is stable for every
    event of one occurrence and new after the alarm cleared and came back. ``flapping``: the
    alarm is chattering (its level changed too often lately, see :mod:`rules.latch`), and
    re-notification should be held back until it settles. ``drill``: a drill reading caused
    it (the alert store makes the occurrence a drill from its start, routed to the drill
    roster with 【演练】).
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
    drill: bool = False
