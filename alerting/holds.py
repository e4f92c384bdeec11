"""Shelving and suppression: what holds an alarm's notifications, and what makes it a drill.

- **Shelving** (:class:`Shelf`): an operator hides the alarm of one (sensor, rule) until an
  expiry, at most :data:`MAX_SHELVE_MS`; notifications are held and the shelving ends by
  itself. Longer absences belong in a maintenance window, which is planned and carries a
  reason. Shelves judge "now": they are about the operator's attention.
- **Maintenance windows** (:class:`Window`, per sensor, site or enterprise) hold
  notifications while they last; the alarms are still recorded.
- **Drill windows** (per site or enterprise) make every alarm *raised* inside them a drill
  alarm, recorded and marked as such for its whole occurrence; routing it to the drill roster
  is the router's job.

Windows judge the event's own time: a back-filled reading taken during maintenance is
maintenance data even when it arrives later. :func:`context_for` gives what a new event is
recorded with; :func:`hold_reason` whether notifications wait at a given moment. Pure values
and functions; times are arguments.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from alerting.codec import iso_ms
from earlywarn.model import AlarmEvent

__all__ = [
    "MAX_SHELVE_MS",
    "Context",
    "Scope",
    "Shelf",
    "Window",
    "WindowKind",
    "context_for",
    "hold_reason",
    "in_drill",
    "shelved_until",
    "suppressed_until",
]

MAX_SHELVE_MS = 24 * 3600 * 1000
"""The longest an alarm may be shelved (24 h)."""


class WindowKind(enum.StrEnum):
    """A maintenance window holds notifications; a drill window marks alarms as drills."""

    MAINTENANCE = "maintenance"
    DRILL = "drill"


class Scope(enum.StrEnum):
    """What a window covers; its ``target`` is a sensor uid, ``enterprise/site`` or an
    enterprise id."""

    SENSOR = "sensor"
    SITE = "site"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True, slots=True)
class Context:
    """What surrounds an event when it is applied: computed by :func:`context_for`.

    ``drill`` marks a new occurrence as a drill (ignored for an existing one: an occurrence
    is a drill or not from its start).
    """

    drill: bool = False
    suppressed_until_ms: int | None = None
    shelved_until_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """A maintenance or drill window over a sensor, a site or an enterprise.

    Covers ``from_ms <= t < end_ms``, where the end is ``until_ms`` or, if someone ended the
    window early, ``ended_ms``. Drill mode is per site or enterprise: a drill exercises people,
    not one instrument. ``id`` is the store's row id.
    """

    kind: WindowKind
    scope: Scope
    target: str
    from_ms: int
    until_ms: int
    by: str
    reason: str
    id: int | None = None
    ended_ms: int | None = None
    ended_by: str | None = None

    def __post_init__(self) -> None:
        if self.until_ms <= self.from_ms:
            msg = f"window ends ({self.until_ms}) before it starts ({self.from_ms})"
            raise ValueError(msg)
        if self.kind is WindowKind.DRILL and self.scope is Scope.SENSOR:
            msg = "drill mode is per site or enterprise, not per sensor"
            raise ValueError(msg)
        parts = {Scope.ENTERPRISE: 1, Scope.SITE: 2, Scope.SENSOR: 3}[self.scope]
        pieces = self.target.split("/")
        if len(pieces) != parts or not all(pieces):
            shapes = {
                Scope.ENTERPRISE: "enterprise",
                Scope.SITE: "enterprise/site",
                Scope.SENSOR: "enterprise/site/sensor",
            }
            msg = f"a {self.scope} window targets {shapes[self.scope]!r}, got {self.target!r}"
            raise ValueError(msg)
        if not self.by.strip() or not self.reason.strip():
            msg = "a window needs the person who set it and a reason"
            raise ValueError(msg)

    @property
    def end_ms(self) -> int:
        """When the window stops covering: its planned end, or earlier if ended early."""
        return self.until_ms if self.ended_ms is None else min(self.until_ms, self.ended_ms)

    def covers(self, sensor: str, t_ms: int) -> bool:
        """Whether the window covers the sensor (uid ``enterprise/site/sensor``) at ``t_ms``."""
        if not self.from_ms <= t_ms < self.end_ms:
            return False
        if self.scope is Scope.SENSOR:
            return sensor == self.target
        return sensor.startswith(self.target + "/")


@dataclass(frozen=True, slots=True)
class Shelf:
    """An operator's shelving of the alarm of one (sensor, rule), ``from_ms <= t < end_ms``.

    It covers later occurrences too while it lasts: a shelved point that clears and comes
    back is still shelved. ``alarm_id`` is the occurrence it was set on, if any; ``ended_ms``
    is set when someone unshelved it before the expiry.
    """

    sensor: str
    rule: str
    from_ms: int
    until_ms: int
    by: str
    reason: str
    alarm_id: str | None = None
    id: int | None = None
    ended_ms: int | None = None
    ended_by: str | None = None

    def __post_init__(self) -> None:
        if self.until_ms <= self.from_ms:
            msg = "shelving must end after it starts"
            raise ValueError(msg)
        if self.until_ms - self.from_ms > MAX_SHELVE_MS:
            msg = (
                f"shelving is limited to {MAX_SHELVE_MS // 3_600_000} h; "
                "plan a maintenance window for longer"
            )
            raise ValueError(msg)
        if not self.by.strip() or not self.reason.strip():
            msg = "shelving needs the person who shelves and a reason"
            raise ValueError(msg)

    @property
    def end_ms(self) -> int:
        """When the shelving stops: its expiry, or earlier if unshelved."""
        return self.until_ms if self.ended_ms is None else min(self.until_ms, self.ended_ms)

    def covers(self, sensor: str, rule: str, t_ms: int) -> bool:
        """Whether this shelving hides the (sensor, rule) alarm at ``t_ms``."""
        return self.sensor == sensor and self.rule == rule and self.from_ms <= t_ms < self.end_ms


def suppressed_until(windows: Iterable[Window], sensor: str, t_ms: int) -> int | None:
    """The latest end of the maintenance windows covering the sensor at ``t_ms``, if any."""
    ends = [
        w.end_ms for w in windows if w.kind is WindowKind.MAINTENANCE and w.covers(sensor, t_ms)
    ]
    return max(ends, default=None)


def in_drill(windows: Iterable[Window], sensor: str, t_ms: int) -> bool:
    """Whether a drill window covers the sensor at ``t_ms``."""
    return any(w.kind is WindowKind.DRILL and w.covers(sensor, t_ms) for w in windows)


def shelved_until(shelves: Iterable[Shelf], sensor: str, rule: str, t_ms: int) -> int | None:
    """The latest end of the shelvings hiding the (sensor, rule) alarm at ``t_ms``, if any."""
    return max((s.end_ms for s in shelves if s.covers(sensor, rule, t_ms)), default=None)


def context_for(
    event: AlarmEvent,
    now_ms: int,
    windows: Iterable[Window] = (),
    shelves: Iterable[Shelf] = (),
    *,
    drill: bool = False,
) -> Context:
    """The context of an event: a drill if asked or if a drill window covers it at its own
    time; suppressed until the latest end of the maintenance windows covering it then;
    shelved until the latest end of the shelvings of its (sensor, rule) at ``now_ms``."""
    windows = tuple(windows)
    return Context(
        drill=drill or in_drill(windows, event.sensor, event.ts_ms),
        suppressed_until_ms=suppressed_until(windows, event.sensor, event.ts_ms),
        shelved_until_ms=shelved_until(shelves, event.sensor, event.rule, now_ms),
    )


def hold_reason(
    windows: Iterable[Window], shelves: Iterable[Shelf], sensor: str, rule: str, t_ms: int
) -> str | None:
    """Why notifications of the (sensor, rule) alarm are held at ``t_ms``, or ``None`` to
    send them. Flapping is not a hold here: it holds back *re*-notification only, which is
    escalation's call (events and records carry the flag)."""
    shelved = shelved_until(shelves, sensor, rule, t_ms)
    if shelved is not None:
        return f"shelved until {iso_ms(shelved)}"
    suppressed = suppressed_until(windows, sensor, t_ms)
    if suppressed is not None:
        return f"maintenance window until {iso_ms(suppressed)}"
    return None
