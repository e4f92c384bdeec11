"""The alarm lifecycle after ISA-18.2 / IEC 62682, as pure functions over one alarm's record.

An *occurrence* of the alarm of one (sensor, rule) is identified by its ``alarm_id``
(``{sensor}/{rule}@{start_ms}``, see :func:`earlywarn.alarms.alarm_id`). Its record moves
through four states::

                    ack                     clear
    active-unacked ───────▶ active-acked ───────────▶ cleared
      │     ▲                    │                       ▲
      │     └──── level rise ────┘                       │ ack
      │ clear                                            │
      └────────────────▶ cleared-unacked ────────────────┘

- **Level changes** of an open alarm (up and down) keep the occurrence and its id; both are
  transitions. A level *rise* of an acknowledged alarm returns it to ``active-unacked``: the
  person who acknowledged orange has not acknowledged red, and standard practice (ISA-18.2
  "re-alarm") is to demand a new acknowledgement. A fall keeps the acknowledgement.
- **Re-alarm after clear** is a new occurrence (the rules give it a new id). An older
  occurrence still ``cleared-unacked`` stays as it is: it happened and nobody confirmed it.
  Acknowledging the newer occurrence acknowledges the older ones too (the store does it, in
  the same transaction, through :func:`acknowledge` with ``via``): nobody should have to
  acknowledge the same point twice to silence it.
- **A missed clear.** The rules keep one open occurrence per (sensor, rule). If a newer
  occurrence is raised while an older one is still active, the older one's clear was lost;
  :func:`supersede` closes it with a ``superseded`` transition instead of leaving two open.
- **Idempotent.** An event's identity is ``(alarm_id, change, level, ts_ms)``
  (:func:`event_key`). Value, message and flags are not part of it: a redelivered reading
  gives the same figures, a NaN value would never equal itself, and if two events with one
  identity ever differed the first one wins. The rules emit at most one event per (sensor,
  rule) per evaluation, in time order, so the record keeps the time of the last applied
  event and the identities seen at that time: an event older than that is *stale*, one seen
  already is a *duplicate*; neither changes anything.
- **Shelving and suppression** (:mod:`alerting.holds`) do not change the state. The record
  notes the shelving in force (kept current by the store when someone shelves or unshelves;
  :func:`is_shelved` at a given time), the end of the maintenance window that covered its
  last event (``suppressed_until_ms``: history, "raised during maintenance"), and whether
  the occurrence is a drill (decided when it is raised). Whether notifications are held
  *now* is :func:`alerting.holds.hold_reason`, from the windows and shelvings themselves.

Nothing here does I/O or reads a clock: every time is an argument.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from alerting.holds import Context
from earlywarn.model import AlarmEvent, Change, Level

__all__ = [
    "AckDecision",
    "AckMethod",
    "AlarmRecord",
    "EventResult",
    "Refusal",
    "State",
    "Transition",
    "TransitionKind",
    "Verdict",
    "acknowledge",
    "apply_event",
    "event_key",
    "is_shelved",
    "supersede",
]


class State(enum.StrEnum):
    """The ISA-18.2 state of one occurrence."""

    ACTIVE_UNACKED = "active-unacked"
    ACTIVE_ACKED = "active-acked"
    CLEARED_UNACKED = "cleared-unacked"
    CLEARED = "cleared"

    @property
    def active(self) -> bool:
        """The condition is present (the alarm has a level)."""
        return self in (State.ACTIVE_UNACKED, State.ACTIVE_ACKED)

    @property
    def acked(self) -> bool:
        """Someone has acknowledged the occurrence (at its current level, if active)."""
        return self in (State.ACTIVE_ACKED, State.CLEARED)

    @property
    def open(self) -> bool:
        """Still needs attention: active, or cleared but not yet acknowledged."""
        return self is not State.CLEARED


class TransitionKind(enum.StrEnum):
    """What moved an occurrence."""

    RAISED = "raised"
    LEVEL_UP = "level_up"
    LEVEL_DOWN = "level_down"
    CLEARED = "cleared"
    SUPERSEDED = "superseded"
    """Closed because a newer occurrence of the same (sensor, rule) began."""
    ACKED = "acked"


class Verdict(enum.StrEnum):
    """What :func:`apply_event` made of an event."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    """Seen already (same identity at the record's last time)."""
    STALE = "stale"
    """Older than the last event applied to the occurrence."""
    AFTER_CLEAR = "after_clear"
    """The occurrence is cleared; a later event of it cannot change it."""


class Refusal(enum.StrEnum):
    """Why an acknowledgement did not happen."""

    UNKNOWN = "unknown"
    ALREADY_ACKED = "already_acked"


class AckMethod(enum.StrEnum):
    """How an acknowledgement reached us."""

    LINK = "link"
    CLI = "cli"
    SMS_REPLY = "sms-reply"
    IVR = "ivr"
    WEB = "web"


def event_key(event: AlarmEvent) -> str:
    """The identity of an event: ``alarm_id|change|level|ts_ms``."""
    level = event.level.label if event.level is not None else "-"
    return f"{event.alarm_id}|{event.change.value}|{level}|{event.ts_ms}"


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """The current record of one occurrence: what it is, where, and where it stands.

    ``level`` is the current level (``None`` once cleared), ``peak`` the highest level it
    reached. ``acked_by``/``acked_ms`` describe the acknowledgement in force (reset when a
    level rise demands a new one; the store keeps every acknowledgement). ``seen`` holds the
    identities of the events applied at ``last_ts_ms``. ``suppressed_until_ms`` is the end of
    the maintenance window that covered the last event, ``shelved_until_ms`` the end of the
    shelving in force (see the module docstring). ``ref`` is the store's number for the
    occurrence (short acknowledgement links, SMS reply codes), ``None`` until stored.
    Construction checks the invariants between these
    fields (:meth:`problems`), so an illegal record cannot exist.
    """

    alarm_id: str
    sensor: str
    enterprise: str
    site: str
    sensor_id: str
    kind: str
    rule: str
    rule_kind: str
    enterprise_name: str
    site_name: str
    sensor_name: str
    unit: str
    state: State
    level: Level | None
    peak: Level
    value: float
    setpoint: float
    setpoint_label: str
    message: str
    start_ms: int
    last_ts_ms: int
    seen: frozenset[str]
    cleared_ms: int | None = None
    acked_ms: int | None = None
    acked_by: str | None = None
    drill: bool = False
    flapping: bool = False
    suppressed_until_ms: int | None = None
    shelved_until_ms: int | None = None
    ref: int | None = None

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            msg = f"illegal alarm record {self.alarm_id}: " + "; ".join(problems)
            raise ValueError(msg)

    def problems(self) -> list[str]:
        """The invariants this record breaks, in plain words (none for a legal record)."""
        found: list[str] = []
        if self.state.active != (self.level is not None):
            found.append(f"state {self.state} with level {self.level}")
        if self.state.active != (self.cleared_ms is None):
            found.append(f"state {self.state} with cleared_ms {self.cleared_ms}")
        if self.state.acked != (self.acked_by is not None and self.acked_ms is not None):
            found.append(f"state {self.state} with acked_by {self.acked_by!r}")
        if self.level is not None and self.level > self.peak:
            found.append(f"level {self.level.label} above peak {self.peak.label}")
        if not self.seen:
            found.append("no event identity seen")
        return found


@dataclass(frozen=True, slots=True)
class Transition:
    """One move of one occurrence, as stored and audited.

    ``by`` is the person for an acknowledgement; ``detail`` says why in plain words when the
    move is not self-explanatory (a level rise that undid an acknowledgement, an
    acknowledgement through a newer occurrence).
    """

    alarm_id: str
    kind: TransitionKind
    ts_ms: int
    from_state: State | None
    to_state: State
    from_level: Level | None
    to_level: Level | None
    by: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class EventResult:
    """The record after an event (``None`` only if there was none and nothing was applied),
    the transitions it made, and what was made of the event."""

    record: AlarmRecord | None
    transitions: tuple[Transition, ...]
    verdict: Verdict

    @property
    def changed(self) -> bool:
        """Whether the record must be written."""
        return self.verdict is Verdict.APPLIED


@dataclass(frozen=True, slots=True)
class AckDecision:
    """The outcome of :func:`acknowledge`: a new record and its transition, or a refusal.

    For :attr:`Refusal.ALREADY_ACKED`, ``record`` is the unchanged record, whose
    ``acked_by``/``acked_ms`` say who acknowledged it and when.
    """

    record: AlarmRecord | None
    transitions: tuple[Transition, ...] = ()
    refused: Refusal | None = None

    @property
    def ok(self) -> bool:
        """The acknowledgement was made."""
        return self.refused is None


def is_shelved(record: AlarmRecord, t_ms: int) -> bool:
    """Whether the occurrence is shelved at ``t_ms``: shelving expires by itself."""
    return record.shelved_until_ms is not None and t_ms < record.shelved_until_ms


def _check_event(event: AlarmEvent) -> None:
    """Refuse an event the rules cannot produce: the lifecycle would have to guess."""
    ok = {
        Change.RAISED: event.level is not None,
        Change.LEVEL_CHANGED: event.level is not None and event.previous is not None,
        Change.CLEARED: event.level is None and event.previous is not None,
    }[event.change]
    if not ok:
        msg = (
            f"malformed alarm event {event.alarm_id}: {event.change} with level "
            f"{event.level} and previous {event.previous}"
        )
        raise ValueError(msg)


def _new_record(event: AlarmEvent, key: str, context: Context) -> AlarmRecord:
    cleared = event.level is None
    peak = event.level or event.previous or Level.BLUE  # _check_event: one of them is set
    return AlarmRecord(
        alarm_id=event.alarm_id,
        sensor=event.sensor,
        enterprise=event.enterprise,
        site=event.site,
        sensor_id=event.sensor_id,
        kind=event.kind,
        rule=event.rule,
        rule_kind=event.rule_kind,
        enterprise_name=event.enterprise_name,
        site_name=event.site_name,
        sensor_name=event.sensor_name,
        unit=event.unit,
        state=State.CLEARED_UNACKED if cleared else State.ACTIVE_UNACKED,
        level=event.level,
        peak=peak,
        value=event.value,
        setpoint=event.setpoint,
        setpoint_label=event.setpoint_label,
        message=event.message,
        start_ms=event.start_ms,
        last_ts_ms=event.ts_ms,
        seen=frozenset({key}),
        cleared_ms=event.ts_ms if cleared else None,
        drill=context.drill,
        flapping=event.flapping,
        suppressed_until_ms=context.suppressed_until_ms,
        shelved_until_ms=context.shelved_until_ms,
    )


def _first_seen(event: AlarmEvent, key: str, context: Context) -> EventResult:
    """The first event of an occurrence we have no record of. Normally ``raised``; a level
    change or clear means the raise was missed (the store was added mid-alarm), and the
    occurrence is recorded anyway: an alarm nobody saw still needs acknowledging."""
    record = _new_record(event, key, context)
    if event.change is Change.CLEARED:
        transition = Transition(
            alarm_id=event.alarm_id,
            kind=TransitionKind.CLEARED,
            ts_ms=event.ts_ms,
            from_state=None,
            to_state=record.state,
            from_level=event.previous,
            to_level=None,
            detail="the alarm was not seen while active",
        )
    else:
        detail = "" if event.change is Change.RAISED else "first seen as a level change"
        transition = Transition(
            alarm_id=event.alarm_id,
            kind=TransitionKind.RAISED,
            ts_ms=event.ts_ms,
            from_state=None,
            to_state=record.state,
            from_level=None,
            to_level=event.level,
            detail=detail,
        )
    return EventResult(record, (transition,), Verdict.APPLIED)


def apply_event(
    record: AlarmRecord | None, event: AlarmEvent, context: Context | None = None
) -> EventResult:
    """Apply one event of an occurrence to its record (``None`` if there is none yet).

    Returns the new record with the transitions made. A duplicate, stale or after-clear
    event returns the record unchanged with no transitions. An event of another occurrence
    or one the rules cannot produce raises ``ValueError``.
    """
    _check_event(event)
    context = context or Context()
    key = event_key(event)
    if record is None:
        return _first_seen(event, key, context)
    if record.alarm_id != event.alarm_id:
        msg = f"event of {event.alarm_id} applied to the record of {record.alarm_id}"
        raise ValueError(msg)
    if event.ts_ms < record.last_ts_ms:
        return EventResult(record, (), Verdict.STALE)
    if event.ts_ms == record.last_ts_ms and key in record.seen:
        return EventResult(record, (), Verdict.DUPLICATE)
    if not record.state.active:
        return EventResult(record, (), Verdict.AFTER_CLEAR)

    seen = record.seen | {key} if event.ts_ms == record.last_ts_ms else frozenset({key})
    updated = replace(
        record,
        value=event.value,
        setpoint=event.setpoint,
        setpoint_label=event.setpoint_label,
        message=event.message,
        last_ts_ms=event.ts_ms,
        seen=seen,
        flapping=event.flapping,
        suppressed_until_ms=context.suppressed_until_ms,
        shelved_until_ms=context.shelved_until_ms,
    )
    old_level = record.level
    new_level = event.level
    if new_level is None:
        state = State.CLEARED if record.state.acked else State.CLEARED_UNACKED
        updated = replace(updated, state=state, level=None, cleared_ms=event.ts_ms)
        moved = Transition(
            alarm_id=record.alarm_id,
            kind=TransitionKind.CLEARED,
            ts_ms=event.ts_ms,
            from_state=record.state,
            to_state=state,
            from_level=old_level,
            to_level=None,
        )
        return EventResult(updated, (moved,), Verdict.APPLIED)
    if new_level == old_level:
        # The rules do not repeat a level; a repeated raise still refreshes the figures.
        return EventResult(updated, (), Verdict.APPLIED)
    peak = max(record.peak, new_level)
    if old_level is not None and new_level > old_level:
        if record.state is State.ACTIVE_ACKED:
            updated = replace(
                updated,
                state=State.ACTIVE_UNACKED,
                level=new_level,
                peak=peak,
                acked_by=None,
                acked_ms=None,
            )
            detail = (
                f"acknowledged at {old_level.label} by {record.acked_by}; "
                f"{new_level.label} must be acknowledged again"
            )
        else:
            updated = replace(updated, level=new_level, peak=peak)
            detail = ""
        kind = TransitionKind.LEVEL_UP
    else:
        updated = replace(updated, level=new_level)
        kind, detail = TransitionKind.LEVEL_DOWN, ""
    moved = Transition(
        alarm_id=record.alarm_id,
        kind=kind,
        ts_ms=event.ts_ms,
        from_state=record.state,
        to_state=updated.state,
        from_level=old_level,
        to_level=new_level,
        detail=detail,
    )
    return EventResult(updated, (moved,), Verdict.APPLIED)


def supersede(older: AlarmRecord, newer: AlarmEvent) -> EventResult:
    """Close an older occurrence that is still active when a newer one of the same
    (sensor, rule) begins: its clear was lost. It keeps its acknowledgement state
    (``cleared`` if acknowledged, ``cleared-unacked`` if not)."""
    if not older.state.active:
        return EventResult(older, (), Verdict.AFTER_CLEAR)
    state = State.CLEARED if older.state.acked else State.CLEARED_UNACKED
    ts = max(newer.ts_ms, older.last_ts_ms)
    closed = replace(older, state=state, level=None, cleared_ms=ts)
    moved = Transition(
        alarm_id=older.alarm_id,
        kind=TransitionKind.SUPERSEDED,
        ts_ms=ts,
        from_state=older.state,
        to_state=state,
        from_level=older.level,
        to_level=None,
        detail=f"a newer occurrence {newer.alarm_id} began; the clear was never received",
    )
    return EventResult(closed, (moved,), Verdict.APPLIED)


def acknowledge(
    record: AlarmRecord | None, by: str, now_ms: int, *, via: str | None = None
) -> AckDecision:
    """Acknowledge an occurrence: ``active-unacked`` → ``active-acked``,
    ``cleared-unacked`` → ``cleared``.

    Refused for an unknown occurrence and for one already acknowledged (the record says by
    whom and when). ``via`` names the newer occurrence through which an older one is
    acknowledged.
    """
    if not by.strip():
        msg = "an acknowledgement needs the person who made it"
        raise ValueError(msg)
    if record is None:
        return AckDecision(None, (), Refusal.UNKNOWN)
    if record.state.acked:
        return AckDecision(record, (), Refusal.ALREADY_ACKED)
    state = State.ACTIVE_ACKED if record.state.active else State.CLEARED
    acked = replace(record, state=state, acked_by=by, acked_ms=now_ms)
    detail = f"acknowledged with the newer occurrence {via}" if via else ""
    moved = Transition(
        alarm_id=record.alarm_id,
        kind=TransitionKind.ACKED,
        ts_ms=now_ms,
        from_state=record.state,
        to_state=state,
        from_level=record.level,
        to_level=record.level,
        by=by,
        detail=detail,
    )
    return AckDecision(acked, (moved,))
