"""The values the alert store hands out, and how records map to and from table rows.

Kept apart from :mod:`alerting.store` so that the escalation engine, the CLI and the web page
can import the types without the store's machinery, and the store module stays about
transactions.
"""

from __future__ import annotations

import enum
import json
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from alerting.codec import iso_ms
from alerting.holds import Scope, Shelf, Window, WindowKind
from alerting.lifecycle import AckMethod, AlarmRecord, State, Transition, TransitionKind
from alerting.notifications import Delivery
from earlywarn.model import Level

__all__ = [
    "AckResult",
    "AckRow",
    "AckStatus",
    "AlarmHistory",
    "Applied",
    "Attempt",
    "Contacted",
    "EscalationStep",
    "StepPlan",
    "StepResult",
    "StepStatus",
]


class StepStatus(enum.StrEnum):
    """Where an escalation step stands.

    ``pending`` → (claim) ``sending`` → ``sent`` / ``failed``, or back to ``pending`` with a
    new due time on ``retry``. ``cancelled``: an acknowledgement (or a newer occurrence) made
    it pointless. ``unknown``: the process stopped while sending, so whether it went out is
    not known; it is not sent again (see :meth:`alerting.store.AlertStore.recover_interrupted`).
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class StepResult(enum.StrEnum):
    """How the escalation engine finishes a claimed step."""

    SENT = "sent"
    FAILED = "failed"
    RETRY = "retry"


class AckStatus(enum.StrEnum):
    """What an acknowledgement request came to."""

    ACKED = "acked"
    ALREADY_ACKED = "already_acked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class StepPlan:
    """A step the escalation engine wants done at ``due_ms``.

    ``key`` makes planning idempotent: a plan whose key exists is ignored, so the engine can
    plan again after a restart without doubling anything (for example
    ``{alarm_id}|{policy}|rung{n}|repeat{k}``). ``target`` is whom to reach, in the engine's
    terms (a person id, or a roster resolved when sending); ``channel`` is optional (``None``:
    the person's channels in order); ``payload`` is any JSON object the engine needs later.
    """

    key: str
    alarm_id: str
    due_ms: int
    target: str
    channel: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """A stored step. ``claims`` counts how often it was claimed (retries claim again)."""

    id: int
    key: str
    alarm_id: str
    due_ms: int
    target: str
    channel: str | None
    payload: Mapping[str, Any] = field(hash=False)
    status: StepStatus
    claims: int
    created_ms: int
    claimed_ms: int | None
    finished_ms: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt to one person on one channel, with its outcome."""

    id: int
    step_id: int | None
    alarm_id: str
    person: str
    channel: str
    address: str
    outcome: Delivery
    detail: str
    attempt: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class AckRow:
    """One stored acknowledgement: who, when, how, with what comment; ``via`` names the newer
    occurrence through which an older one was acknowledged."""

    id: int
    alarm_id: str
    by: str
    how: AckMethod
    comment: str
    ts_ms: int
    via: str | None


@dataclass(frozen=True, slots=True)
class Contacted:
    """Who was tried on which channel for an alarm ("who else was called")."""

    person: str
    channel: str
    address: str
    attempts: int
    first_ms: int
    last_ms: int
    last_outcome: Delivery


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying an event did: the occurrence's new record, the record before
    (``None`` when it is new), its transitions, the older occurrences of the same (sensor,
    rule) it closed (a lost clear) and how many of their pending steps were cancelled."""

    record: AlarmRecord
    previous: AlarmRecord | None
    transitions: tuple[Transition, ...]
    superseded: tuple[AlarmRecord, ...] = ()
    cancelled_steps: int = 0

    @property
    def new(self) -> bool:
        """The event began a new occurrence (or the first we heard of it)."""
        return self.previous is None


@dataclass(frozen=True, slots=True)
class AckResult:
    """What :meth:`alerting.store.AlertStore.ack` did.

    ``by``/``at_ms`` are this acknowledgement's, or for ``already_acked`` the earlier one's.
    ``also_acked`` lists older ``cleared-unacked`` occurrences acknowledged along with it.
    """

    status: AckStatus
    alarm_id: str
    record: AlarmRecord | None
    by: str | None = None
    at_ms: int | None = None
    cancelled_steps: int = 0
    also_acked: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """The acknowledgement was recorded now."""
        return self.status is AckStatus.ACKED

    def describe(self) -> str:
        """One plain sentence for the CLI, the web page or an SMS reply."""
        if self.status is AckStatus.UNKNOWN:
            return f"no alarm {self.alarm_id}"
        when = iso_ms(self.at_ms) if self.at_ms is not None else "?"
        if self.status is AckStatus.ALREADY_ACKED:
            return f"{self.alarm_id} was already acknowledged by {self.by} at {when}"
        also = f", with {len(self.also_acked)} earlier occurrence(s)" if self.also_acked else ""
        return (
            f"{self.alarm_id} acknowledged by {self.by} at {when}{also}; "
            f"{self.cancelled_steps} pending notification step(s) cancelled"
        )


@dataclass(frozen=True, slots=True)
class AlarmHistory:
    """One occurrence with everything that happened to it, for ``alarms show`` and the web."""

    record: AlarmRecord
    transitions: tuple[Transition, ...]
    steps: tuple[EscalationStep, ...]
    attempts: tuple[Attempt, ...]
    acks: tuple[AckRow, ...]
    shelves: tuple[Shelf, ...]


# --- rows ------------------------------------------------------------------------------------

_RECORD_FIELDS = tuple(f.name for f in fields(AlarmRecord) if f.name != "ref")
RECORD_COLUMNS = tuple("peak_level" if name == "peak" else name for name in _RECORD_FIELDS)
"""The ``alarms`` columns that hold an :class:`AlarmRecord`, in field order, ``alarm_id``
first. The table also has ``ref`` (the record's ``ref``, assigned by SQLite), ``event``,
``created_ms`` and ``updated_ms``."""


def _label(level: Level | None) -> str | None:
    return level.label if level is not None else None


def _level(text: str | None) -> Level | None:
    return Level.parse(text) if text is not None else None


def _real(value: float) -> float | None:
    """SQLite stores NaN as NULL anyway; say so explicitly (and infinities too)."""
    return value if math.isfinite(value) else None


def record_values(record: AlarmRecord) -> tuple[object, ...]:
    """The values of :data:`RECORD_COLUMNS` for one record."""
    converted: dict[str, object] = {
        "state": record.state.value,
        "level": _label(record.level),
        "peak": record.peak.label,
        "value": _real(record.value),
        "setpoint": _real(record.setpoint),
        "seen": json.dumps(sorted(record.seen)),
        "drill": int(record.drill),
        "flapping": int(record.flapping),
    }
    return tuple(converted.get(n, getattr(record, n)) for n in _RECORD_FIELDS)


def record_from_row(row: sqlite3.Row) -> AlarmRecord:
    """Rebuild a record; a NULL value or set-point (not finite when stored) reads as NaN."""
    values = {
        name: row[column] for name, column in zip(_RECORD_FIELDS, RECORD_COLUMNS, strict=True)
    }
    values.update(
        state=State(row["state"]),
        level=_level(row["level"]),
        peak=Level.parse(row["peak_level"]),
        value=math.nan if row["value"] is None else float(row["value"]),
        setpoint=math.nan if row["setpoint"] is None else float(row["setpoint"]),
        seen=frozenset(json.loads(row["seen"])),
        drill=bool(row["drill"]),
        flapping=bool(row["flapping"]),
        ref=row["ref"],
    )
    return AlarmRecord(**values)


def transition_values(t: Transition) -> tuple[object, ...]:
    """``alarm_id, kind, ts_ms, from_state, to_state, from_level, to_level, by_person,
    detail`` of a transition row."""
    return (
        t.alarm_id,
        t.kind.value,
        t.ts_ms,
        t.from_state.value if t.from_state else None,
        t.to_state.value,
        _label(t.from_level),
        _label(t.to_level),
        t.by,
        t.detail,
    )


def transition_dict(t: Transition) -> dict[str, Any]:
    """A transition as the JSON object of its audit row."""
    return {
        "kind": t.kind.value,
        "ts_ms": t.ts_ms,
        "from_state": t.from_state.value if t.from_state else None,
        "to_state": t.to_state.value,
        "from_level": _label(t.from_level),
        "to_level": _label(t.to_level),
        "by": t.by,
        "detail": t.detail,
    }


def transition_from_row(row: sqlite3.Row) -> Transition:
    """Rebuild a stored transition."""
    return Transition(
        alarm_id=row["alarm_id"],
        kind=TransitionKind(row["kind"]),
        ts_ms=row["ts_ms"],
        from_state=State(row["from_state"]) if row["from_state"] else None,
        to_state=State(row["to_state"]),
        from_level=_level(row["from_level"]),
        to_level=_level(row["to_level"]),
        by=row["by_person"],
        detail=row["detail"],
    )


def step_from_row(row: sqlite3.Row) -> EscalationStep:
    """Rebuild a stored escalation step."""
    return EscalationStep(
        id=row["id"],
        key=row["step_key"],
        alarm_id=row["alarm_id"],
        due_ms=row["due_ms"],
        target=row["target"],
        channel=row["channel"],
        payload=json.loads(row["payload"]),
        status=StepStatus(row["status"]),
        claims=row["claims"],
        created_ms=row["created_ms"],
        claimed_ms=row["claimed_ms"],
        finished_ms=row["finished_ms"],
        detail=row["detail"],
    )


def step_dict(step: EscalationStep) -> dict[str, Any]:
    """The fields of a step worth keeping in an audit row."""
    return {
        "step": step.id,
        "key": step.key,
        "due_ms": step.due_ms,
        "target": step.target,
        "channel": step.channel,
        "status": step.status.value,
        "claims": step.claims,
        "detail": step.detail,
    }


def attempt_from_row(row: sqlite3.Row) -> Attempt:
    """Rebuild a stored delivery attempt."""
    return Attempt(
        id=row["id"],
        step_id=row["step_id"],
        alarm_id=row["alarm_id"],
        person=row["person"],
        channel=row["channel"],
        address=row["address"],
        outcome=Delivery(row["outcome"]),
        detail=row["detail"],
        attempt=row["attempt"],
        ts_ms=row["ts_ms"],
    )


def ack_from_row(row: sqlite3.Row) -> AckRow:
    """Rebuild a stored acknowledgement."""
    return AckRow(
        id=row["id"],
        alarm_id=row["alarm_id"],
        by=row["by_person"],
        how=AckMethod(row["how"]),
        comment=row["comment"],
        ts_ms=row["ts_ms"],
        via=row["via"],
    )


def shelf_from_row(row: sqlite3.Row) -> Shelf:
    """Rebuild a stored shelving."""
    return Shelf(
        sensor=row["sensor"],
        rule=row["rule"],
        from_ms=row["from_ms"],
        until_ms=row["until_ms"],
        by=row["by_person"],
        reason=row["reason"],
        alarm_id=row["alarm_id"],
        id=row["id"],
        ended_ms=row["ended_ms"],
        ended_by=row["ended_by"],
    )


def window_from_row(row: sqlite3.Row) -> Window:
    """Rebuild a stored maintenance or drill window."""
    return Window(
        kind=WindowKind(row["kind"]),
        scope=Scope(row["scope"]),
        target=row["target"],
        from_ms=row["from_ms"],
        until_ms=row["until_ms"],
        by=row["by_person"],
        reason=row["reason"],
        id=row["id"],
        ended_ms=row["ended_ms"],
        ended_by=row["ended_by"],
    )
