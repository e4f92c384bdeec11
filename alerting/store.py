"""The durable alert store: alarms, transitions, escalation steps, delivery attempts,
acknowledgements, shelvings, maintenance and drill windows, and the append-only audit log.

SQLite in WAL mode with ``synchronous=FULL`` (see :mod:`alerting.store_schema` for why), one
file at a configurable path. The Work Safety Law of the PRC (安全生产法, art. 36) forbids
tampering with alarm data: the audit log cannot be changed through the database, and changes
that bypass it are detectable (:mod:`alerting.store_audit`, :meth:`AlertStore.verify_audit`).

**Transactions.** Every write that matters is one transaction, begun with ``BEGIN
IMMEDIATE``: it takes the write lock before the current record is read, so the record, its
transitions, the steps it cancels and the audit rows commit together or not at all, and a CLI
acknowledging from another process cannot slip in between the read and the write (a plain
``with conn:`` starts its transaction only at the first write, too late for that). A crash
never leaves half a transition; WAL recovery on the next open restores the last commit.

**Threads.** An :class:`AlertStore` belongs to the thread that opened it (the asyncio loop);
SQLite's connection refuses use from another thread. Other processes (the CLI, the web
process) open their own store on the same file; the busy timeout makes them wait their turn.

**Applying events.** :meth:`AlertStore.apply_event` runs the pure lifecycle
(:mod:`alerting.lifecycle`) on the stored record and writes the result; it returns ``None``
when nothing was written (duplicate, stale, after the clear). An alarm raised while a
maintenance window or a shelving covers it is recorded with it; one raised in drill mode is
a drill for its whole occurrence. Whether to send *now* is :meth:`AlertStore.hold_reason`.

**Escalation steps** — the API for the escalation engine:

1. ``plan_steps(plans, now_ms)``: insert :class:`StepPlan` values. Idempotent by
   ``StepPlan.key``: planning the same key again does nothing, so the engine may re-plan
   after a restart. Plans for an acknowledged alarm are skipped.
2. ``due_steps(now_ms)``: pending steps due at or before ``now_ms``, by due time then id;
   ``next_due_ms()`` says when to wake up next (``None``: nothing pending).
3. ``claim_step(step_id, now_ms)`` before sending: ``pending → sending``, committed. ``None``
   means do not send (cancelled meanwhile by an acknowledgement, or claimed already).
4. ``record_attempt(...)`` for each delivery attempt (person, channel, address, outcome).
5. ``finish_step(step_id, result, now_ms, …)``: ``sent``, ``failed``, or ``retry`` with a new
   due time (back to ``pending``; an alarm acknowledged meanwhile cancels it instead).
6. At start-up, before anything else, ``recover_interrupted(now_ms)``: steps left in
   ``sending`` by a killed process become ``unknown`` — audited as "outcome unknown" and not
   sent again: the call may have gone out, and an unacknowledged alarm repeats anyway, so
   the next planned repetition is the safe retry. The engine may plan one deliberately.
7. ``ack(...)`` cancels every pending step of the alarm in the same transaction as the
   acknowledgement, and audits how many and why; ``cancel_steps`` does it for other reasons.

**Acknowledgement.** :meth:`AlertStore.ack` applies the lifecycle, records the ack row and
the audit row, acknowledges older ``cleared-unacked`` occurrences of the same (sensor, rule)
with it and cancels pending steps, in one transaction, and says what happened
(:class:`AckResult`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from alerting import lifecycle, store_audit
from alerting.holds import context_for
from alerting.lifecycle import AckMethod, AlarmRecord, Refusal, State, Transition, event_key
from alerting.store_audit import AuditEntry, AuditKind
from alerting.store_base import StoreError
from alerting.store_holds import Holds
from alerting.store_rows import (
    AckResult,
    AckRow,
    AckStatus,
    AlarmHistory,
    Applied,
    Attempt,
    Contacted,
    EscalationStep,
    StepPlan,
    StepResult,
    StepStatus,
    ack_from_row,
    attempt_from_row,
    record_from_row,
    transition_from_row,
)
from alerting.store_steps import EscalationSteps
from earlywarn.model import AlarmEvent, Level

__all__ = [
    "AckResult",
    "AckRow",
    "AckStatus",
    "AlarmHistory",
    "AlertStore",
    "Applied",
    "Attempt",
    "AuditEntry",
    "Contacted",
    "EscalationStep",
    "StepPlan",
    "StepResult",
    "StepStatus",
    "StoreError",
]
"""The store and every value its methods take or return, importable from here."""

_log = logging.getLogger(__name__)


class AlertStore(EscalationSteps, Holds):
    """The alert store on one SQLite file (created with its schema if new).

    Times are always arguments (``now_ms``, epoch milliseconds): the store never reads a
    clock, so tests run hours of escalation without sleeping.
    """

    # --- events ----------------------------------------------------------------------------

    def apply_event(self, event: AlarmEvent, now_ms: int, *, drill: bool = False) -> Applied | None:
        """Apply one alarm event; ``None`` when it changed nothing (duplicate, stale, or an
        event of an occurrence already cleared or superseded) and nothing was written.

        ``drill``: the event comes from a drill (simulated data); a drill window covering the
        sensor makes a new occurrence a drill too.
        """
        with self._write():
            record = self.get(event.alarm_id)
            if record is None and self._newer_occurrence_exists(event):
                _log.warning(
                    "alarm event %s ignored: a newer occurrence of %s %s is stored",
                    event_key(event),
                    event.sensor,
                    event.rule,
                )
                return None
            ctx = context_for(
                event,
                now_ms,
                self._windows_at(event.ts_ms),
                self._shelves_of(event.sensor, event.rule),
                drill=drill,
            )
            result = lifecycle.apply_event(record, event, ctx)
            if result.record is None or not result.changed:
                _log.debug("alarm event %s not applied: %s", event_key(event), result.verdict)
                return None
            superseded: tuple[AlarmRecord, ...] = ()
            cancelled = 0
            if record is None:
                superseded, cancelled = self._supersede_older(event, now_ms)
            stored = self._save(result.record, now_ms, event)
            for t in result.transitions:
                self._add_transition(t, now_ms, event)
        return Applied(stored, record, result.transitions, superseded, cancelled)

    def _newer_occurrence_exists(self, event: AlarmEvent) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM alarms WHERE sensor = ? AND rule = ? AND start_ms > ? LIMIT 1",
            (event.sensor, event.rule, event.start_ms),
        ).fetchone()
        return row is not None

    def _supersede_older(
        self, event: AlarmEvent, now_ms: int
    ) -> tuple[tuple[AlarmRecord, ...], int]:
        """Close older occurrences of the event's (sensor, rule) still active (their clear
        was lost) and cancel their pending steps: the new occurrence escalates on its own."""
        rows = self._conn.execute(
            "SELECT * FROM alarms WHERE sensor = ? AND rule = ? AND start_ms < ? "
            "AND state IN (?, ?) ORDER BY start_ms",
            (event.sensor, event.rule, event.start_ms, *(s.value for s in State if s.active)),
        ).fetchall()
        closed: list[AlarmRecord] = []
        cancelled = 0
        for row in rows:
            result = lifecycle.supersede(record_from_row(row), event)
            if result.record is None or not result.changed:
                continue
            self._save(result.record, now_ms)
            for t in result.transitions:
                self._add_transition(t, now_ms, event)
            reason = f"superseded by {event.alarm_id}"
            cancelled += self._cancel_pending(result.record.alarm_id, reason, now_ms, quiet=True)
            closed.append(result.record)
        return tuple(closed), cancelled

    # --- acknowledgement -------------------------------------------------------------------

    def ack(
        self, alarm_id: str, by: str, how: AckMethod | str, comment: str, now_ms: int
    ) -> AckResult:
        """Acknowledge an occurrence, with older ``cleared-unacked`` occurrences of the same
        (sensor, rule), and cancel their pending steps — one transaction."""
        method = AckMethod(how)
        with self._write():
            record = self.get(alarm_id)
            decision = lifecycle.acknowledge(record, by, now_ms)
            if decision.refused is Refusal.UNKNOWN or record is None:
                return AckResult(AckStatus.UNKNOWN, alarm_id, None)
            if decision.refused is Refusal.ALREADY_ACKED:
                detail = {
                    "by": by,
                    "how": method.value,
                    "comment": comment,
                    "acked_by": record.acked_by,
                    "acked_ms": record.acked_ms,
                }
                self._audit(now_ms, AuditKind.ACK_REFUSED, alarm_id, detail, by)
                return AckResult(
                    AckStatus.ALREADY_ACKED, alarm_id, record, record.acked_by, record.acked_ms
                )
            self._acknowledged(decision, method, comment, now_ms, via=None)
            also: list[str] = []
            for older in self._older_unacked(record):
                extra = lifecycle.acknowledge(older, by, now_ms, via=alarm_id)
                if extra.ok:
                    self._acknowledged(extra, method, comment, now_ms, via=alarm_id)
                    also.append(older.alarm_id)
            reason = f"acknowledged by {by} ({method.value})"
            cancelled = sum(self._cancel_pending(a, reason, now_ms, by) for a in (alarm_id, *also))
        return AckResult(
            AckStatus.ACKED, alarm_id, decision.record, by, now_ms, cancelled, tuple(also)
        )

    def _acknowledged(
        self,
        decision: lifecycle.AckDecision,
        how: AckMethod,
        comment: str,
        now_ms: int,
        via: str | None,
    ) -> None:
        record = decision.record
        if record is None or record.acked_by is None:  # pragma: no cover - decision.ok
            return
        self._save(record, now_ms)
        extra = {"how": how.value, "comment": comment, "via": via}
        for t in decision.transitions:
            self._add_transition(t, now_ms, None, record.acked_by, kind=AuditKind.ACK, extra=extra)
        self._conn.execute(
            "INSERT INTO acks (alarm_id, by_person, how, comment, ts_ms, via) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (record.alarm_id, record.acked_by, how.value, comment, now_ms, via),
        )

    def _older_unacked(self, record: AlarmRecord) -> list[AlarmRecord]:
        rows = self._conn.execute(
            "SELECT * FROM alarms WHERE sensor = ? AND rule = ? AND start_ms < ? AND state = ? "
            "ORDER BY start_ms",
            (record.sensor, record.rule, record.start_ms, State.CLEARED_UNACKED.value),
        ).fetchall()
        return [record_from_row(r) for r in rows]

    # --- queries ---------------------------------------------------------------------------

    def list_alarms(
        self,
        *,
        states: Iterable[State] | None = None,
        enterprise: str | None = None,
        site: str | None = None,
        min_level: Level | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        drill: bool | None = None,
        limit: int = 200,
    ) -> list[AlarmRecord]:
        """Occurrences, newest start first. ``min_level`` filters on the peak level;
        ``since_ms``/``until_ms`` on the start (``since <= start < until``)."""
        where: list[str] = []
        args: list[object] = []

        def among(column: str, values: list[str]) -> None:
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            args.extend(values)

        if states is not None:
            among("state", [State(s).value for s in states] or [""])
        if enterprise is not None:
            where.append("enterprise = ?")
            args.append(enterprise)
        if site is not None:
            where.append("site = ?")
            args.append(site)
        if min_level is not None:
            among("peak_level", [lv.label for lv in Level if lv >= min_level])
        if since_ms is not None:
            where.append("start_ms >= ?")
            args.append(since_ms)
        if until_ms is not None:
            where.append("start_ms < ?")
            args.append(until_ms)
        if drill is not None:
            where.append("drill = ?")
            args.append(int(drill))
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self._conn.execute(
            f"SELECT * FROM alarms {clause}ORDER BY start_ms DESC, alarm_id LIMIT ?",  # noqa: S608 - placeholders only
            (*args, limit),
        ).fetchall()
        return [record_from_row(r) for r in rows]

    def transitions_of(self, alarm_id: str) -> list[Transition]:
        """The transitions of an occurrence in the order they were made."""
        rows = self._conn.execute(
            "SELECT * FROM transitions WHERE alarm_id = ? ORDER BY id", (alarm_id,)
        ).fetchall()
        return [transition_from_row(r) for r in rows]

    def history(self, alarm_id: str) -> AlarmHistory | None:
        """One occurrence with its transitions, steps, attempts, acknowledgements and
        shelvings; ``None`` if unknown."""
        record = self.get(alarm_id)
        if record is None:
            return None
        attempts = self._conn.execute(
            "SELECT * FROM attempts WHERE alarm_id = ? ORDER BY id", (alarm_id,)
        ).fetchall()
        acks = self._conn.execute(
            "SELECT * FROM acks WHERE alarm_id = ? ORDER BY id", (alarm_id,)
        ).fetchall()
        return AlarmHistory(
            record=record,
            transitions=tuple(self.transitions_of(alarm_id)),
            steps=tuple(self.steps_of(alarm_id)),
            attempts=tuple(attempt_from_row(r) for r in attempts),
            acks=tuple(ack_from_row(r) for r in acks),
            shelves=tuple(self._shelves_of(record.sensor, record.rule)),
        )

    # --- audit -----------------------------------------------------------------------------

    def audit(
        self, *, alarm_id: str | None = None, since_seq: int = 0, limit: int | None = None
    ) -> list[AuditEntry]:
        """Audit rows after ``since_seq``, in order, optionally of one alarm."""
        sql = "SELECT * FROM audit WHERE seq > ?"
        args: list[object] = [since_seq]
        if alarm_id is not None:
            sql += " AND alarm_id = ?"
            args.append(alarm_id)
        sql += " ORDER BY seq LIMIT ?"
        args.append(-1 if limit is None else limit)
        return [
            AuditEntry(
                r["seq"],
                r["ts_ms"],
                r["kind"],
                r["alarm_id"],
                r["actor"],
                json.loads(r["detail"]),
                r["prev_hash"],
                r["hash"],
            )
            for r in self._conn.execute(sql, args).fetchall()
        ]

    def audit_head(self) -> tuple[int, str]:
        """Sequence number and hash of the last audit row: publish it elsewhere now and then
        and pass it to :meth:`verify_audit` later to detect a rewritten chain."""
        return store_audit.head(self._conn)

    def verify_audit(self, expected_head: tuple[int, str] | None = None) -> list[str]:
        """Problems found in the audit log, in plain words with row numbers; empty if intact."""
        return store_audit.verify(self._conn, expected_head)
