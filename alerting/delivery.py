"""Carrying out escalation steps as they fall due: resolve, send, retry, fall back.

:mod:`alerting.escalation` plans an alarm's sends as durable steps in the store; this module
sends them. The :class:`~alerting.escalation.Escalator` holds one :class:`Courier` and passes
its ``pump``, ``pump_async``, ``recover`` (and the steps of a pump) through, so callers see
one object. The courier knows nothing of routes or policies: it reads the steps, the people
and the channels, and needs from the planner only how to hold an alarm.

- A **rung step** is resolved to people only when it falls due, because "the county duty
  officer" is whoever the roster says at that minute. Resolving it plans one delivery per
  person and channel, keyed by the moment of resolving: two rung steps resolved together (a
  restart's overdue ones, two routes naming the same duty officer) reach a person once per
  channel. Several overdue repeats of one (step, rung) — the process was down while they
  fell due — collapse to the latest: one call per person, not a backlog.
- A **delivery step** is claimed just before it is sent, so a process killed during one call
  leaves only that call's outcome unknown; :meth:`Courier.recover` reports such steps at
  start-up and does not send them again (the call may have gone out, and an unanswered alarm
  repeats anyway). The outcome is recorded as an attempt; a retryable failure comes back
  later with back-off (:class:`Retry`), a permanent one (or too many retries) moves to the
  person's next channel, and a person none of whose channels worked is logged as an error
  and recorded as unreachable in the step that gave up.
- A step of an alarm found held when it falls due (someone shelved it from the CLI after it
  started ringing) is not sent: the planner cancels the alarm's pending steps, and starts
  its plan over when the hold ends.
- Sends run inline (:meth:`Courier.pump`) or each in a worker thread
  (:meth:`Courier.pump_async`), so one slow provider delays no other call; the store is used
  from the calling thread only.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from alerting import compose
from alerting.channels.base import Channel
from alerting.compose import Facts, Purpose
from alerting.directory import Directory
from alerting.lifecycle import AlarmRecord
from alerting.links import LinkSigner
from alerting.notifications import Delivery, Notification, Outcome
from alerting.policy import CHANNELS, contacts_for
from alerting.roster import people_of
from alerting.store import AlertStore
from alerting.store_rows import EscalationStep, StepPlan, StepResult, StepStatus
from earlywarn.model import DutyRef, Level, Target

log = logging.getLogger("alerting.escalation")
"""Escalation's one logger, as before sending had a module of its own: operators' log
filters and the tests' log capture name it, and "NOBODY REACHED" should not move."""

RUNG = "rung"
"""The ``target`` of a rung step (planned by the escalator, resolved to people here)."""
_SERIES = re.compile(r"r\d+g(?=\d+$)")
"""The repeat number in a rung step's key (``…|d0|s1r4g2`` → ``…|d0|s1g2``: its series)."""
LIVE = (StepStatus.PENDING, StepStatus.SENDING)
"""Steps still to be carried out (or being carried out right now)."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Back-off of a retryable failure: ``first_ms`` doubling up to ``max_ms``; after
    ``attempts`` tries the person's next channel is used instead."""

    first_ms: int = 30_000
    max_ms: int = 300_000
    attempts: int = 4


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery step, ready to send (``channel`` ``None``: not configured)."""

    step: EscalationStep
    notification: Notification
    channel: Channel | None


class Courier:
    """Carries out the due steps of every alarm, through the store.

    ``channels`` maps channel names to channels; ``signer`` makes acknowledgement links
    (``None``: messages carry only the SMS reply code). ``hold`` is the planner's: it cancels
    the pending steps of a held alarm in a way that lets the plan start over when the hold
    ends, which only the planner knows how to do. Times are always arguments: the caller
    owns the clock.
    """

    def __init__(
        self,
        store: AlertStore,
        directory: Directory,
        channels: Mapping[str, Channel],
        signer: LinkSigner | None,
        *,
        hold: Callable[[AlarmRecord, str, int], None],
        lang: str = "zh",
        retry: Retry | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.channels = channels
        self.signer = signer
        self._hold = hold
        self.lang = lang
        self.retry = retry or Retry()

    def due_deliveries(self, now_ms: int) -> list[EscalationStep]:
        """Resolve due rung steps to deliveries (claimed and closed here), then return the
        due deliveries, unclaimed: each is claimed just before it is sent (:meth:`start`),
        so a process killed during one call leaves only that call's outcome unknown. Steps
        of an alarm held meanwhile are cancelled, not sent."""
        for _ in range(100):  # expanding rung steps plans deliveries due now
            due = self._skip_missed_repeats(self.store.due_steps(now_ms, limit=500), now_ms)
            due = self._not_held(due, now_ms)
            rungs = [step for step in due if step.target == RUNG]
            if not rungs:
                return due
            for step in rungs:
                claimed = self.store.claim_step(step.id, now_ms)
                if claimed is not None:
                    self._expand(claimed, now_ms)
        return []

    def _not_held(self, due: list[EscalationStep], now_ms: int) -> list[EscalationStep]:
        """``due`` without the steps of held alarms, whose pending steps are cancelled."""
        held: set[str] = set()
        for alarm_id in dict.fromkeys(step.alarm_id for step in due):
            reason = self.store.hold_reason(alarm_id, now_ms)
            record = self.store.get(alarm_id) if reason else None
            if reason and record is not None:
                self._hold(record, reason, now_ms)
                held.add(alarm_id)
        return [step for step in due if step.alarm_id not in held]

    def start(self, step: EscalationStep, now_ms: int) -> Job | None:
        """Claim one due delivery and build its notification (``None``: not to be sent)."""
        claimed = self.store.claim_step(step.id, now_ms)
        return None if claimed is None else self._job(claimed, now_ms)

    def _skip_missed_repeats(self, due: list[EscalationStep], now_ms: int) -> list[EscalationStep]:
        """Of several due repeats of one (step, rung) — the process was down while they fell
        due — keep the latest and cancel the others: one call per person, not a backlog."""
        latest: dict[str, EscalationStep] = {}
        for step in due:
            if step.target == RUNG:
                series = _SERIES.sub("g", step.key)
                kept = latest.get(series)
                if kept is None or step.payload["repeat"] > kept.payload["repeat"]:
                    latest[series] = step
        missed: dict[str, list[int]] = {}
        for step in due:
            if step.target == RUNG and latest[_SERIES.sub("g", step.key)] is not step:
                missed.setdefault(step.alarm_id, []).append(step.id)
        for alarm_id, ids in missed.items():
            self.store.cancel_steps(
                alarm_id,
                "missed while the service was down: a later repeat replaces it",
                now_ms,
                step_ids=ids,
            )
        skipped = {i for ids in missed.values() for i in ids}
        return [step for step in due if step.id not in skipped]

    def _expand(self, step: EscalationStep, now_ms: int) -> None:
        """Resolve a due rung step to one delivery per person and channel. Deliveries are
        keyed by the moment of resolving (a grouped message's by its site and window), so
        rung steps resolved together — a restart's overdue ones, two routes naming the same
        duty officer — reach a person once per channel."""
        p = step.payload
        grouped = p.get("purpose") == Purpose.GROUPED.value
        rung = tuple(_target(t) for t in p.get("targets", ()))
        people = people_of(rung, self.directory.regions, now_ms)
        allowed = frozenset(p["allowed"]) if p.get("allowed") else None
        plans = []
        for person_id in people:
            person = self.directory.people.get(person_id)
            if person is None:
                log.error("%s names %r, who is not in the registry", step.key, person_id)
                continue
            chosen = contacts_for(person, p.get("channels", ()), allowed)
            # The next channels: the person's contacts in their order (their preference),
            # then what their phone number adds (SMS, calls).
            order = [*(c for c, _ in person.contacts), *CHANNELS]
            spare = [
                pair
                for pair in contacts_for(person, order, allowed)
                if pair not in chosen and pair[0] != "console"
            ]
            if "console" in self.channels and ("console", person.id) not in chosen:
                # The last resort: the console line in the duty room's log, so that an alarm
                # whose channels all fail is at least in front of the operator.
                spare.append(("console", person.id))
            if grouped:
                base = f"group|{p.get('group')}|{person_id}"
            else:
                base = f"{step.alarm_id}|{p.get('level')}|t{now_ms}|{person_id}"
            for channel, address in chosen:
                plans.append(
                    StepPlan(
                        f"{base}|{channel}",
                        step.alarm_id,
                        now_ms,
                        person_id,
                        channel,
                        {
                            **{
                                k: p[k]
                                for k in ("purpose", "level", "repeat", "reminder", "window_ms")
                                if k in p
                            },
                            "address": address,
                            "base": base,
                            "fallbacks": [list(x) for x in spare],
                            "rung_step": step.id,
                        },
                    )
                )
        inserted = self.store.plan_steps(plans, now_ms, even_if_acked=grouped)
        if not people:
            self.store.finish_step(
                step.id,
                StepResult.FAILED,
                now_ms,
                detail="the rung resolved to nobody (check the duty roster)",
            )
            log.error("%s: the rung resolved to nobody", step.key)
        elif grouped and not inserted:
            detail = "summed up in the grouped message of its site and window"
            self.store.finish_step(step.id, StepResult.SENT, now_ms, detail=detail)
        else:
            self.store.finish_step(
                step.id,
                StepResult.SENT,
                now_ms,
                detail=f"{len(inserted)} deliveries to {', '.join(people)}",
            )

    def _job(self, step: EscalationStep, now_ms: int) -> Job | None:
        record = self.store.get(step.alarm_id)
        person = self.directory.people.get(step.target)
        if record is None or person is None or step.channel is None:
            self.store.finish_step(
                step.id, StepResult.FAILED, now_ms, detail="unknown alarm, person or channel"
            )
            return None
        p = step.payload
        purpose = Purpose(p.get("purpose", Purpose.ALARM.value))
        link = None
        if self.signer is not None and record.ref is not None:
            link = self.signer.link(record.ref, person.id, now_ms)
        level = Level.parse(str(p["level"])) if p.get("level") else record.level
        message, count = record.message, 0
        if purpose is Purpose.GROUPED:
            burst = self._window_alarms(record, int(p.get("window_ms", 0)))
            if burst:  # newest first: headed by the burst's highest level, its latest alarm
                level, message, count = max(a.peak for a in burst), burst[0].message, len(burst)
        facts = Facts(
            level=level,
            message=message,
            site_name=record.site_name,
            enterprise_name=record.enterprise_name,
            drill=record.drill,
            link=link,
            reply_code=str(record.ref) if record.ref is not None else None,
            repeat=int(p.get("reminder", p.get("repeat", 0))),
            acked_by=self._name(str(p.get("acked_by") or "")),
            group_count=count,
            group_minutes=int(p.get("window_ms", 0)) // 60_000,
        )
        voice = step.channel == "voice"
        subject = (compose.spoken if voice else compose.subject)(purpose, facts, self.lang)
        notification = Notification(
            key=f"{step.key}#{step.claims}",
            alarm_id=record.alarm_id,
            person=person.id,
            person_name=person.name,
            channel=step.channel,
            address=str(p.get("address", "")),
            subject=subject,
            body=compose.body(purpose, facts, self.lang),
            level=level,
            link=link,
            drill=record.drill,
            attempt=step.claims,
        )
        return Job(step, notification, self.channels.get(step.channel))

    def _name(self, person_id: str) -> str | None:
        person = self.directory.people.get(person_id)
        return person.name if person else (person_id or None)

    def _window_alarms(self, record: AlarmRecord, window: int) -> list[AlarmRecord]:
        """The alarms of the occurrence's site (drills with drills) in its flood-control
        window, newest first."""
        if not window:
            return []
        start = record.start_ms // window * window
        return self.store.list_alarms(
            enterprise=record.enterprise,
            site=record.site,
            since_ms=start,
            until_ms=start + window,
            drill=record.drill,
            limit=10_000,
        )

    @staticmethod
    def send(job: Job) -> Outcome:
        """Deliver one job; never raises (a channel's defect is a retryable failure)."""
        if job.channel is None:
            return Outcome.permanent(
                f"channel {job.notification.channel!r} is not configured (channels.yaml)"
            )
        try:
            return job.channel.send(job.notification)
        except Exception as exc:  # a channel defect must not stop the other sends
            log.exception("channel %s failed on %s", job.notification.channel, job.step.key)
            return Outcome.retry(f"internal error in the channel: {exc!r}")

    def finish(self, job: Job, outcome: Outcome, now_ms: int) -> None:
        """Record the attempt, then retry, fall back or close the step."""
        n, step = job.notification, job.step
        self.store.record_attempt(
            alarm_id=step.alarm_id,
            person=n.person,
            channel=n.channel,
            address=n.address,
            outcome=outcome.delivery,
            detail=outcome.detail,
            attempt=step.claims,
            now_ms=now_ms,
            step_id=step.id,
        )
        if outcome.delivery is Delivery.SENT:
            self.store.finish_step(step.id, StepResult.SENT, now_ms, detail=outcome.detail)
            return
        if outcome.delivery is Delivery.RETRY and step.claims < self.retry.attempts:
            wait = min(self.retry.first_ms * 2 ** (step.claims - 1), self.retry.max_ms)
            if outcome.retry_after_s is not None:
                wait = max(wait, int(outcome.retry_after_s * 1000))
            self.store.finish_step(
                step.id, StepResult.RETRY, now_ms, detail=outcome.detail, retry_at_ms=now_ms + wait
            )
            return
        fallback = self._fall_back(step, now_ms, outcome)
        detail = outcome.detail
        if fallback in (None, "console"):  # no real channel left (the console reaches no one)
            detail += self._gave_up(step, outcome)
        self.store.finish_step(step.id, StepResult.FAILED, now_ms, detail=detail)

    def _fall_back(self, step: EscalationStep, now_ms: int, outcome: Outcome) -> str | None:
        """Plan the person's next channel at once; returns it (``None``: none left). Keyed
        like the deliveries of the same resolving, so two channels failing for good reach
        the person once on the next one, not twice."""
        spare = [tuple(x) for x in step.payload.get("fallbacks", ())]
        if not spare:
            return None
        channel, address = spare[0]
        log.warning(
            "%s on %s failed (%s): trying %s", step.target, step.channel, outcome.detail, channel
        )
        payload = {**step.payload, "address": address, "fallbacks": [list(x) for x in spare[1:]]}
        base = step.payload.get("base")
        key = f"{base}|{channel}" if base else f"{step.key}|fb:{channel}"
        self.store.plan_steps(
            [StepPlan(key, step.alarm_id, now_ms, step.target, channel, payload)],
            now_ms,
            even_if_acked=bool(step.payload.get("notice"))
            or step.payload.get("purpose") == Purpose.GROUPED.value,
        )
        return str(channel)

    def _gave_up(self, step: EscalationStep, outcome: Outcome) -> str:
        """Say that a delivery failed with no channel left but the console; returns what to
        add to the step's detail. If none of the person's deliveries of this resolving got
        through or is still under way on a real channel, the person was not reached at all:
        an ERROR, and ``unreachable`` in the store, because the chain has a gap someone must
        fix (a cancelled number, a missing contact) before the next alarm. The console's line
        in the duty room is the last resort, not a way of reaching the person."""
        if step.payload.get("notice"):
            log.warning(
                "could not tell %s about %s on %s, and no other channel is left: %s",
                step.target,
                step.alarm_id,
                step.channel,
                outcome.detail,
            )
            return "; no other channel left"
        siblings = [
            s
            for s in self.store.steps_of(step.alarm_id)
            if s.id != step.id
            and s.target == step.target
            and s.channel is not None
            and s.payload.get("rung_step") == step.payload.get("rung_step")
        ]
        reached = [
            s.channel
            for s in siblings
            if s.status in (*LIVE, StepStatus.SENT) and s.channel != "console"
        ]
        if reached:
            log.warning(
                "%s on %s failed for good (%s); still reached on %s",
                step.target,
                step.channel,
                outcome.detail,
                ", ".join(str(c) for c in reached),
            )
            return "; no other channel left"
        tried = sorted({str(s.channel) for s in (*siblings, step) if s.channel != "console"})
        person = self.directory.people.get(step.target)
        log.error(
            "NOBODY REACHED %s (%s) about %s: every channel failed (%s); last: %s",
            person.name if person else step.target,
            step.target,
            step.alarm_id,
            ", ".join(tried),
            outcome.detail,
        )
        return f"; unreachable: every channel of {step.target} failed ({', '.join(tried)})"

    def pump(self, now_ms: int) -> int:
        """Send everything due, inline; returns how many deliveries were attempted."""
        done = 0
        while due := self.due_deliveries(now_ms):
            for step in due:
                job = self.start(step, now_ms)
                if job is not None:
                    self.finish(job, self.send(job), now_ms)
                    done += 1
        return done

    async def pump_async(self, now_ms: int, *, concurrency: int = 16) -> int:
        """Send everything due, each send in a worker thread (many at once, so one slow
        provider delays no other call); the store is used from this thread only."""
        gate = asyncio.Semaphore(concurrency)

        async def one(step: EscalationStep) -> int:
            async with gate:
                job = self.start(step, now_ms)
                if job is None:
                    return 0
                outcome = await asyncio.to_thread(self.send, job)
                self.finish(job, outcome, now_ms)
                return 1

        done = 0
        while due := self.due_deliveries(now_ms):
            done += sum(await asyncio.gather(*(one(step) for step in due)))
        return done

    def recover(self, now_ms: int) -> Sequence[EscalationStep]:
        """At start-up: the steps a killed process left mid-send, marked outcome unknown and
        not sent again (the call may have gone out)."""
        lost = self.store.recover_interrupted(now_ms)
        for step in lost:
            log.warning(
                "step %s was being sent when the process stopped: outcome unknown, not sent again",
                step.key,
            )
        return lost


def _target(text: str) -> Target:
    return DutyRef(text.removeprefix("duty:")) if text.startswith("duty:") else text
