"""Escalation steps and delivery attempts of the alert store (see :mod:`alerting.store` for
how the escalation engine uses them)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from alerting.notifications import Delivery
from alerting.store_audit import AuditKind
from alerting.store_base import SYSTEM, StoreBase, StoreError
from alerting.store_rows import (
    Attempt,
    Contacted,
    EscalationStep,
    StepPlan,
    StepResult,
    StepStatus,
    attempt_from_row,
    step_dict,
    step_from_row,
)

__all__ = ["EscalationSteps"]

_log = logging.getLogger(__name__)


class EscalationSteps(StoreBase):
    """Planned notification steps with their claim/finish cycle, and delivery attempts."""

    # --- escalation steps ------------------------------------------------------------------

    def plan_steps(
        self, plans: Iterable[StepPlan], now_ms: int, *, even_if_acked: bool = False
    ) -> list[EscalationStep]:
        """Insert planned steps, idempotently by key; returns the steps actually inserted.

        A plan whose key exists, or for an alarm already acknowledged (unless
        ``even_if_acked``: notices such as "acknowledged by …" are meant for such alarms),
        is skipped. A plan for an unknown alarm raises ``ValueError`` and inserts none of
        the batch.
        """
        inserted: list[EscalationStep] = []
        with self._write():
            for plan in plans:
                record = self.get(plan.alarm_id)
                if record is None:
                    msg = f"cannot plan step {plan.key!r}: no alarm {plan.alarm_id}"
                    raise ValueError(msg)
                if record.state.acked and not even_if_acked:
                    _log.debug("step %s not planned: %s is acknowledged", plan.key, plan.alarm_id)
                    continue
                cursor = self._conn.execute(
                    "INSERT INTO steps (step_key, alarm_id, due_ms, target, channel, payload, "
                    "status, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (step_key) DO NOTHING",
                    (
                        plan.key,
                        plan.alarm_id,
                        plan.due_ms,
                        plan.target,
                        plan.channel,
                        json.dumps(dict(plan.payload), ensure_ascii=False, allow_nan=False),
                        StepStatus.PENDING.value,
                        now_ms,
                    ),
                )
                if cursor.rowcount != 1 or cursor.lastrowid is None:
                    continue
                step = self._step(cursor.lastrowid)
                self._audit(now_ms, AuditKind.STEP_PLANNED, step.alarm_id, step_dict(step))
                inserted.append(step)
        return inserted

    def _step(self, step_id: int) -> EscalationStep:
        row = self._conn.execute("SELECT * FROM steps WHERE id = ?", (step_id,)).fetchone()
        if row is None:
            msg = f"no escalation step {step_id}"
            raise StoreError(msg)
        return step_from_row(row)

    def step(self, step_id: int) -> EscalationStep | None:
        """One step by id."""
        row = self._conn.execute("SELECT * FROM steps WHERE id = ?", (step_id,)).fetchone()
        return step_from_row(row) if row else None

    def due_steps(self, now_ms: int, limit: int = 100) -> list[EscalationStep]:
        """Pending steps due at or before ``now_ms``, by due time then id."""
        rows = self._conn.execute(
            "SELECT * FROM steps WHERE status = ? AND due_ms <= ? ORDER BY due_ms, id LIMIT ?",
            (StepStatus.PENDING.value, now_ms, limit),
        ).fetchall()
        return [step_from_row(r) for r in rows]

    def next_due_ms(self) -> int | None:
        """The due time of the earliest pending step; ``None`` when nothing is pending."""
        row = self._conn.execute(
            "SELECT min(due_ms) FROM steps WHERE status = ?", (StepStatus.PENDING.value,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def claim_step(self, step_id: int, now_ms: int) -> EscalationStep | None:
        """Mark a pending step ``sending`` (committed) before sending it. ``None``: do not
        send — the step is no longer pending (cancelled by an acknowledgement, claimed)."""
        with self._write():
            step = self.step(step_id)
            if step is None or step.status is not StepStatus.PENDING:
                return None
            self._conn.execute(
                "UPDATE steps SET status = ?, claims = claims + 1, claimed_ms = ? WHERE id = ?",
                (StepStatus.SENDING.value, now_ms, step_id),
            )
            step = self._step(step_id)
            self._audit(now_ms, AuditKind.STEP_CLAIMED, step.alarm_id, step_dict(step))
        return step

    def finish_step(
        self,
        step_id: int,
        result: StepResult | str,
        now_ms: int,
        *,
        detail: str = "",
        retry_at_ms: int | None = None,
    ) -> EscalationStep:
        """Finish a claimed step: ``sent``, ``failed``, or ``retry`` at ``retry_at_ms`` (back
        to pending, unless the alarm was acknowledged meanwhile: then cancelled).

        ``StoreError`` if the step is not ``sending``: it was never claimed, or finished or
        recovered already.
        """
        outcome = StepResult(result)
        if outcome is StepResult.RETRY and retry_at_ms is None:
            msg = "a retry needs retry_at_ms"
            raise ValueError(msg)
        with self._write():
            step = self._step(step_id)
            if step.status is not StepStatus.SENDING:
                msg = f"step {step_id} is {step.status}, not sending: it cannot be finished"
                raise StoreError(msg)
            status = StepStatus(outcome.value) if outcome is not StepResult.RETRY else None
            due = step.due_ms
            if status is None:
                record = self.get(step.alarm_id)
                if record is not None and record.state.acked:
                    status = StepStatus.CANCELLED
                    detail = f"{detail}; not retried: the alarm was acknowledged".lstrip("; ")
                else:
                    status = StepStatus.PENDING
                    due = retry_at_ms if retry_at_ms is not None else step.due_ms
            finished = None if status is StepStatus.PENDING else now_ms
            self._conn.execute(
                "UPDATE steps SET status = ?, due_ms = ?, finished_ms = ?, detail = ? WHERE id = ?",
                (status.value, due, finished, detail, step_id),
            )
            step = self._step(step_id)
            audit = {**step_dict(step), "result": outcome.value}
            self._audit(now_ms, AuditKind.STEP_FINISHED, step.alarm_id, audit)
        return step

    def cancel_steps(
        self,
        alarm_id: str,
        reason: str,
        now_ms: int,
        *,
        actor: str = SYSTEM,
        step_ids: Iterable[int] | None = None,
    ) -> int:
        """Cancel every pending step of an alarm (or only those of ``step_ids``) in one
        transaction; returns how many. The audit records the number and the reason (also
        when it is zero)."""
        with self._write():
            if step_ids is None:
                return self._cancel_pending(alarm_id, reason, now_ms, actor)
            count = 0
            for step_id in step_ids:
                count += self._conn.execute(
                    "UPDATE steps SET status = ?, finished_ms = ?, detail = ? "
                    "WHERE id = ? AND alarm_id = ? AND status = ?",
                    (
                        StepStatus.CANCELLED.value,
                        now_ms,
                        reason,
                        step_id,
                        alarm_id,
                        StepStatus.PENDING.value,
                    ),
                ).rowcount
            detail = {"cancelled": count, "reason": reason}
            self._audit(now_ms, AuditKind.STEPS_CANCELLED, alarm_id, detail, actor)
            return count

    def _cancel_pending(
        self, alarm_id: str, reason: str, now_ms: int, actor: str = SYSTEM, *, quiet: bool = False
    ) -> int:
        cursor = self._conn.execute(
            "UPDATE steps SET status = ?, finished_ms = ?, detail = ? "
            "WHERE alarm_id = ? AND status = ?",
            (StepStatus.CANCELLED.value, now_ms, reason, alarm_id, StepStatus.PENDING.value),
        )
        count = cursor.rowcount
        if count or not quiet:
            detail = {"cancelled": count, "reason": reason}
            self._audit(now_ms, AuditKind.STEPS_CANCELLED, alarm_id, detail, actor)
        return count

    def recover_interrupted(self, now_ms: int) -> list[EscalationStep]:
        """Steps a killed process left in ``sending``: marked ``unknown`` ("outcome unknown"
        in the audit) and returned; they are not sent again. Call once at start-up, while no
        other process sends from this store."""
        with self._write():
            rows = self._conn.execute(
                "SELECT id FROM steps WHERE status = ? ORDER BY id", (StepStatus.SENDING.value,)
            ).fetchall()
            recovered: list[EscalationStep] = []
            for (step_id,) in rows:
                self._conn.execute(
                    "UPDATE steps SET status = ?, finished_ms = ?, detail = ? WHERE id = ?",
                    (
                        StepStatus.UNKNOWN.value,
                        now_ms,
                        "outcome unknown: the process stopped while sending; not sent again",
                        step_id,
                    ),
                )
                step = self._step(step_id)
                self._audit(now_ms, AuditKind.STEP_INTERRUPTED, step.alarm_id, step_dict(step))
                recovered.append(step)
        if recovered:
            _log.warning(
                "%d escalation step(s) were being sent when the process stopped: outcome unknown",
                len(recovered),
            )
        return recovered

    def steps_of(self, alarm_id: str) -> list[EscalationStep]:
        """Every step of an alarm, by due time then id."""
        rows = self._conn.execute(
            "SELECT * FROM steps WHERE alarm_id = ? ORDER BY due_ms, id", (alarm_id,)
        ).fetchall()
        return [step_from_row(r) for r in rows]

    # --- delivery attempts -----------------------------------------------------------------

    def record_attempt(
        self,
        *,
        alarm_id: str,
        person: str,
        channel: str,
        address: str,
        outcome: Delivery | str,
        detail: str,
        attempt: int,
        now_ms: int,
        step_id: int | None = None,
    ) -> Attempt:
        """Record one delivery attempt and its outcome (``sent``, ``retry``, ``permanent``),
        with its audit row. ``attempt`` counts the tries of this person on this channel for
        this step, from 1. An unknown alarm or step is an ``sqlite3.IntegrityError``."""
        delivery = Delivery(outcome)
        with self._write():
            cursor = self._conn.execute(
                "INSERT INTO attempts (step_id, alarm_id, person, channel, address, outcome, "
                "detail, attempt, ts_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    step_id,
                    alarm_id,
                    person,
                    channel,
                    address,
                    delivery.value,
                    detail,
                    attempt,
                    now_ms,
                ),
            )
            row = self._conn.execute(
                "SELECT * FROM attempts WHERE id = ?", (cursor.lastrowid,)
            ).fetchone()
            made = attempt_from_row(row)
            audit = {
                "step": step_id,
                "person": person,
                "channel": channel,
                "address": address,
                "outcome": delivery.value,
                "detail": detail,
                "attempt": attempt,
            }
            self._audit(now_ms, AuditKind.ATTEMPT, alarm_id, audit)
        return made

    def who_was_called(self, alarm_id: str) -> list[Contacted]:
        """Everyone tried for an alarm, per person, channel and address, first tried first."""
        rows = self._conn.execute(
            "SELECT person, channel, address, count(*) AS n, min(ts_ms) AS first_ms, "
            "max(ts_ms) AS last_ms, max(id) AS last_id FROM attempts WHERE alarm_id = ? "
            "GROUP BY person, channel, address ORDER BY first_ms, min(id)",
            (alarm_id,),
        ).fetchall()
        contacted: list[Contacted] = []
        for r in rows:
            last = self._conn.execute(
                "SELECT outcome FROM attempts WHERE id = ?", (r["last_id"],)
            ).fetchone()
            contacted.append(
                Contacted(
                    r["person"],
                    r["channel"],
                    r["address"],
                    r["n"],
                    r["first_ms"],
                    r["last_ms"],
                    Delivery(last["outcome"]),
                )
            )
        return contacted
