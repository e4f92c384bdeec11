"""Wake-up escalation: turn an alarm into planned, durable sends, and carry them out.

Every timer lives in the store as an escalation step, so a process killed between two calls
makes the next call on time after a restart (or at once if overdue), and never repeats one
already made. Two kinds of step:

- a **rung step** (``target = "rung"``): "at 02:03, call rung 2 of this alarm's chain on
  voice". It is planned ahead from the escalation policy (:func:`alerting.policy.plan`), and
  resolved to people only when due, because "the county duty officer" is whoever the roster
  says at that minute. Resolving it plans one delivery per person and channel.
- a **delivery step** (``target`` = a person id, ``channel`` = a channel name): one message
  to one person. Its outcome is recorded as an attempt; a retryable failure comes back later
  with back-off, a permanent one (or too many retries) moves to the person's next channel.

Keys make planning idempotent: planning again after a restart, or every minute to extend
the horizon of endless repeats, inserts only what is missing. Sends that became overdue
while the process was down are collapsed to the latest repeat of each (step, rung), so a
restart after an hour sends one call per person, not twenty.

What stops sends: an acknowledgement cancels every pending step in the same transaction as
the ack (:meth:`alerting.store.AlertStore.ack`); a clear cancels the steps that stop on clear
and tells everyone already reached; a level rise replaces the plan of the lower level. A
flapping alarm's level changes plan nothing new (its existing plan runs on): re-notification
is held until it settles. A shelved or suppressed alarm is recorded and not sent.

Flood control: more than ``flood.alarms`` new alarms at one site within ``flood.within`` are
not each sent on: one grouped message per site and window tells the first rung how many
there were. An alarm of a higher level than all the others of the burst is never folded
into a group: it escalates on its own.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alerting import compose
from alerting.channels.base import Channel
from alerting.compose import Facts, Purpose
from alerting.lifecycle import AlarmRecord, State, TransitionKind
from alerting.links import LinkSigner
from alerting.notifications import Delivery, Notification, Outcome
from alerting.policy import CHANNELS, Policy, contacts_for, plan
from alerting.roster import people_of
from alerting.routing import AlarmFacts, Decision, Routing, route
from alerting.store import AlertStore
from alerting.store_rows import AckResult, Applied, EscalationStep, StepPlan, StepResult
from earlywarn.model import DutyRef, Enterprise, Level, Person, Region, Target

log = logging.getLogger(__name__)

RUNG = "rung"
_SERIES = re.compile(r"r\d+g(?=\d+$)")
"""The repeat number in a rung step's key (``…|d0|s1r4g2`` → ``…|d0|s1g2``: its series)."""
OPEN_UNACKED = (State.ACTIVE_UNACKED, State.CLEARED_UNACKED)
WRITTEN = ("im", "sms")
"""Channels for notices (cleared, acknowledged, grouped): written, never a call at night."""


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


class Escalator:
    """Plans and carries out the sends of every alarm, through the store.

    ``policies`` maps policy names to policies (defaults included); ``channels`` maps channel
    names to channels; ``signer`` makes acknowledgement links (``None``: messages carry only
    the SMS reply code). Times are always arguments: the caller owns the clock.
    """

    def __init__(
        self,
        store: AlertStore,
        directory: Directory,
        routing: Routing,
        policies: Mapping[str, Policy],
        channels: Mapping[str, Channel],
        signer: LinkSigner | None = None,
        *,
        lang: str = "zh",
        horizon_ms: int = 3_600_000,
        retry: Retry | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.routing = routing
        self.policies = policies
        self.channels = channels
        self.signer = signer
        self.lang = lang
        self.horizon_ms = horizon_ms
        self.retry = retry or Retry()

    # -- reacting to alarms and acknowledgements -------------------------------------------

    def on_applied(self, applied: Applied, now_ms: int) -> None:
        """Plan, replace or cancel sends after an event changed an occurrence."""
        record = applied.record
        kinds = {t.kind for t in applied.transitions}
        if TransitionKind.LEVEL_UP in kinds and not applied.new:
            if record.flapping:
                log.info(
                    "%s is flapping: its rise to %s plans no new sends",
                    record.alarm_id,
                    record.peak.label,
                )
                return
            self.store.cancel_steps(
                record.alarm_id,
                f"the level rose to {record.peak.label}: its policy replaces the earlier one",
                now_ms,
            )
            self.plan_alarm(record, now_ms)
        elif applied.new:
            self.plan_alarm(record, now_ms)
        if TransitionKind.LEVEL_DOWN in kinds and not record.flapping and record.level:
            self._notice(record, Purpose.LOWER, now_ms, tag=f"lower-{record.level.label}")
        if TransitionKind.CLEARED in kinds:
            self._stop_on_clear(record, now_ms)
            self._notice(record, Purpose.CLEARED, now_ms, tag="cleared")

    def on_ack(self, result: AckResult, now_ms: int) -> None:
        """Tell everyone already reached (except the one who answered) that it is answered."""
        if result.ok and result.record is not None:
            self._notice(result.record, Purpose.ACKED, now_ms, tag="acked", besides=result.by or "")

    def reconcile(self, now_ms: int) -> None:
        """Extend plans of open, unacknowledged alarms to the horizon, plan what a shelving
        or a maintenance window held back once it ended, and send the acknowledgement notice
        for alarms acknowledged by another process (the CLI). Idempotent; call it every minute
        and at start-up."""
        for record in self.store.list_alarms(states=OPEN_UNACKED, limit=10_000):
            self.plan_alarm(record, now_ms)
        recent = self.store.list_alarms(
            states=(State.ACTIVE_ACKED, State.CLEARED), since_ms=now_ms - 86_400_000, limit=1_000
        )
        for record in recent:
            if record.acked_ms is not None and now_ms - record.acked_ms < 900_000:
                self._notice(
                    record, Purpose.ACKED, now_ms, tag="acked", besides=record.acked_by or ""
                )

    def plan_alarm(self, record: AlarmRecord, now_ms: int) -> int:
        """Plan the sends of one occurrence up to the horizon; returns how many are new."""
        if record.state not in OPEN_UNACKED:
            return 0
        held = self.store.hold_reason(record.alarm_id, now_ms)
        if held:
            log.info("%s: notifications held (%s)", record.alarm_id, held)
            return 0
        enterprise = self.directory.enterprises.get(record.enterprise)
        if enterprise is None:
            log.error(
                "alarm %s belongs to enterprise %r, which is not in the registry: nobody can "
                "be notified",
                record.alarm_id,
                record.enterprise,
            )
            return 0
        facts = AlarmFacts(record.enterprise, record.site, record.kind, record.peak, record.drill)
        decisions = route(self.routing, facts, enterprise, self.directory.regions)
        if not decisions:
            log.error("no route notifies anyone of %s: check routing.yaml", record.alarm_id)
            return 0
        if self._grouped(record):
            return self._plan_group(record, decisions, now_ms)
        start = self._peak_since(record)
        higher = start > record.start_ms
        plans: list[StepPlan] = []
        for index, decision in enumerate(decisions):
            policy = self.policies.get(decision.policy)
            if policy is None:
                log.error("policy %r of route %s is unknown", decision.policy, decision.route)
                continue
            plans.extend(
                self._plan_decision(record, index, decision, policy, start, higher, now_ms)
            )
        return len(self.store.plan_steps(plans, now_ms))

    def _plan_decision(
        self,
        record: AlarmRecord,
        index: int,
        decision: Decision,
        policy: Policy,
        start: int,
        higher: bool,
        now_ms: int,
    ) -> list[StepPlan]:
        sends = list(
            plan(
                policy,
                start,
                len(decision.rungs),
                channels=decision.channels,
                horizon_ms=now_ms + self.horizon_ms,
            )
        )
        if record.state is State.CLEARED_UNACKED:
            sends = [s for s in sends if not s.stop_on_clear]
        # Overdue repeats (the process was down): only the latest of each (step, rung).
        latest: dict[tuple[int, int], int] = {}
        for s in sends:
            if s.due_ms <= now_ms:
                latest[(s.step, s.rung)] = max(latest.get((s.step, s.rung), 0), s.repeat)
        plans = []
        for s in sends:
            if s.due_ms <= now_ms and latest[(s.step, s.rung)] != s.repeat:
                continue
            targets = decision.rungs[s.rung]
            if not targets:
                continue
            purpose = (
                Purpose.REMINDER if s.repeat else (Purpose.HIGHER if higher else Purpose.ALARM)
            )
            key = f"{record.alarm_id}|{record.peak.label}|d{index}|s{s.step}r{s.repeat}g{s.rung}"
            plans.append(
                StepPlan(
                    key,
                    record.alarm_id,
                    s.due_ms,
                    RUNG,
                    None,
                    {
                        "targets": [str(t) for t in targets],
                        "channels": list(s.channels),
                        "allowed": sorted(decision.channels) if decision.channels else None,
                        "purpose": purpose.value,
                        "level": record.peak.label,
                        "repeat": s.repeat,
                        "policy": policy.name,
                        "route": decision.route,
                        "stop_on_clear": s.stop_on_clear,
                    },
                )
            )
        return plans

    def _peak_since(self, record: AlarmRecord) -> int:
        """When the occurrence reached its peak level: the policy of that level runs from
        there (a rise to red at 02:10 calls at 02:10, 02:13…, not as if red since 02:00)."""
        since = record.start_ms
        for t in self.store.transitions_of(record.alarm_id):
            if t.kind is TransitionKind.LEVEL_UP and t.to_level == record.peak:
                since = t.ts_ms
        return since

    def _grouped(self, record: AlarmRecord) -> bool:
        """Whether the occurrence is part of a burst at its site beyond flood control and not
        of a higher level than every other alarm of the burst."""
        flood = self.routing.flood
        burst = self.store.list_alarms(
            enterprise=record.enterprise,
            site=record.site,
            since_ms=record.start_ms - flood.within_ms,
            until_ms=record.start_ms + 1,
            limit=10_000,
        )
        earlier = [
            r
            for r in burst
            if (r.start_ms, r.ref or 0) < (record.start_ms, record.ref or 0)
            and r.drill == record.drill
        ]
        if len(earlier) < flood.alarms:
            return False
        return record.peak <= max(r.peak for r in earlier)

    def _plan_group(self, record: AlarmRecord, decisions: list[Decision], now_ms: int) -> int:
        window = self.routing.flood.within_ms
        bucket = record.start_ms // window
        plans = []
        for index, decision in enumerate(decisions):
            first = next((rung for rung in decision.rungs if rung), None)
            if first is None:
                continue
            key = f"group|{record.enterprise}/{record.site}|{bucket}|d{index}"
            plans.append(
                StepPlan(
                    key,
                    record.alarm_id,
                    max(now_ms, record.start_ms),
                    RUNG,
                    None,
                    {
                        "targets": [str(t) for t in first],
                        "channels": list(WRITTEN),
                        "allowed": sorted(decision.channels) if decision.channels else None,
                        "purpose": Purpose.GROUPED.value,
                        "level": record.peak.label,
                        "repeat": 0,
                        "policy": "flood",
                        "route": decision.route,
                        "stop_on_clear": False,
                        "window_ms": window,
                    },
                )
            )
        log.warning(
            "%s folded into the flood-control group of %s/%s",
            record.alarm_id,
            record.enterprise,
            record.site,
        )
        return len(self.store.plan_steps(plans, now_ms))

    def _stop_on_clear(self, record: AlarmRecord, now_ms: int) -> None:
        stop = [
            s.id
            for s in self.store.steps_of(record.alarm_id)
            if s.status.value == "pending" and s.payload.get("stop_on_clear", True)
        ]
        if stop:
            self.store.cancel_steps(
                record.alarm_id, "the alarm cleared: its repeats stop", now_ms, step_ids=stop
            )

    def _notice(
        self,
        record: AlarmRecord,
        purpose: Purpose,
        now_ms: int,
        *,
        tag: str,
        besides: str = "",
    ) -> None:
        """One written message to everyone already reached about this occurrence."""
        reached = {
            c.person
            for c in self.store.who_was_called(record.alarm_id)
            if c.last_outcome is Delivery.SENT
        }
        plans = []
        for person_id in sorted(reached - {besides}):
            person = self.directory.people.get(person_id)
            if person is None:
                continue
            pairs = contacts_for(person, WRITTEN)
            if not pairs:
                continue
            channel, address = pairs[0]
            plans.append(
                StepPlan(
                    f"{record.alarm_id}|{tag}|{person_id}",
                    record.alarm_id,
                    now_ms,
                    person_id,
                    channel,
                    {
                        "purpose": purpose.value,
                        "address": address,
                        "fallbacks": [],
                        "level": record.level.label if record.level else None,
                        "acked_by": besides,
                        "notice": True,
                    },
                )
            )
        if plans:
            self._plan_notices(record, plans, now_ms)

    def _plan_notices(self, record: AlarmRecord, plans: list[StepPlan], now_ms: int) -> None:
        # The store skips plans for acknowledged alarms (nothing more should wake anyone);
        # a notice is not a wake-up, so it goes in even then.
        self.store.plan_steps(plans, now_ms, even_if_acked=True)

    # -- carrying out due steps ----------------------------------------------------------

    def due_deliveries(self, now_ms: int) -> list[EscalationStep]:
        """Resolve due rung steps to deliveries (claimed and closed here), then return the
        due deliveries, unclaimed: each is claimed just before it is sent (:meth:`start`),
        so a process killed during one call leaves only that call's outcome unknown."""
        for _ in range(100):  # expanding rung steps plans deliveries due now
            due = self._skip_missed_repeats(self.store.due_steps(now_ms, limit=500), now_ms)
            rungs = [step for step in due if step.target == RUNG]
            if not rungs:
                return due
            for step in rungs:
                claimed = self.store.claim_step(step.id, now_ms)
                if claimed is not None:
                    self._expand(claimed, now_ms)
        return []

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
        p = step.payload
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
            spare = [
                pair
                for pair in contacts_for(person, CHANNELS, allowed)
                if pair not in chosen and pair[0] != "console"
            ]
            if "console" in self.channels and ("console", person.id) not in chosen:
                # The last resort: the console line in the duty room's log, so that an alarm
                # whose channels all fail is at least in front of the operator.
                spare.append(("console", person.id))
            for channel, address in chosen:
                plans.append(
                    StepPlan(
                        f"{step.alarm_id}|{p.get('level')}|t{step.due_ms}|{person_id}|{channel}",
                        step.alarm_id,
                        now_ms,
                        person_id,
                        channel,
                        {
                            **{
                                k: p[k]
                                for k in ("purpose", "level", "repeat", "window_ms")
                                if k in p
                            },
                            "address": address,
                            "fallbacks": [list(x) for x in spare],
                            "rung_step": step.id,
                        },
                    )
                )
        inserted = self.store.plan_steps(
            plans, now_ms, even_if_acked=p.get("purpose") == Purpose.GROUPED.value
        )
        if not people:
            self.store.finish_step(
                step.id,
                StepResult.FAILED,
                now_ms,
                detail="the rung resolved to nobody (check the duty roster)",
            )
            log.error("%s: the rung resolved to nobody", step.key)
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
        facts = Facts(
            level=level,
            message=record.message,
            site_name=record.site_name,
            enterprise_name=record.enterprise_name,
            drill=record.drill,
            link=link,
            reply_code=str(record.ref) if record.ref is not None else None,
            repeat=int(p.get("repeat", 0)),
            acked_by=self._name(str(p.get("acked_by") or "")),
            group_count=self._group_count(record, p),
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

    def _group_count(self, record: AlarmRecord, payload: Mapping[str, Any]) -> int:
        window = int(payload.get("window_ms", 0))
        if not window:
            return 0
        start = record.start_ms // window * window
        return len(
            self.store.list_alarms(
                enterprise=record.enterprise,
                site=record.site,
                since_ms=start,
                until_ms=start + window,
                limit=10_000,
            )
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
        self.store.finish_step(step.id, StepResult.FAILED, now_ms, detail=outcome.detail)
        self._fall_back(step, now_ms, outcome)

    def _fall_back(self, step: EscalationStep, now_ms: int, outcome: Outcome) -> None:
        spare = [tuple(x) for x in step.payload.get("fallbacks", ())]
        if not spare:
            log.error(
                "could not reach %s about %s on %s, and no other channel is left: %s",
                step.target,
                step.alarm_id,
                step.channel,
                outcome.detail,
            )
            return
        channel, address = spare[0]
        log.warning(
            "%s on %s failed (%s): trying %s", step.target, step.channel, outcome.detail, channel
        )
        payload = {**step.payload, "address": address, "fallbacks": [list(x) for x in spare[1:]]}
        self.store.plan_steps(
            [
                StepPlan(
                    f"{step.key}|fb:{channel}", step.alarm_id, now_ms, step.target, channel, payload
                )
            ],
            now_ms,
            even_if_acked=bool(step.payload.get("notice")),
        )

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
        """At start-up: steps a killed process left mid-send (outcome unknown, not resent),
        then a reconcile so every open alarm has its plan."""
        lost = self.store.recover_interrupted(now_ms)
        for step in lost:
            log.warning(
                "step %s was being sent when the process stopped: outcome unknown, not sent again",
                step.key,
            )
        self.reconcile(now_ms)
        return lost


def _target(text: str) -> Target:
    return DutyRef(text.removeprefix("duty:")) if text.startswith("duty:") else text


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())
