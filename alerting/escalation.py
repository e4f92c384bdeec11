"""Wake-up escalation: turn an alarm into planned, durable sends, and carry them out.

Every timer lives in the store as an escalation step, so a process killed between two calls
makes the next call on time after a restart (or at once if overdue), and never repeats one
already made. Two kinds of step:

- a **rung step** (``target = "rung"``): "at 02:03, call rung 2 of this alarm's chain on
  voice". It is planned ahead from the escalation policy (:func:`alerting.policy.plan`), and
  resolved to people only when due, because "the county duty officer" is whoever the roster
  says at that minute. Resolving it plans one delivery per person and channel; two rung
  steps resolved at the same moment reach a person once per channel.
- a **delivery step** (``target`` = a person id, ``channel`` = a channel name): one message
  to one person. Its outcome is recorded as an attempt; a retryable failure comes back later
  with back-off, a permanent one (or too many retries) moves to the person's next channel,
  and a person none of whose channels worked is logged as an error and recorded as
  unreachable in the step that gave up.

Keys make planning idempotent: planning again after a restart, or every minute to extend
the horizon of endless repeats, inserts only what is missing. A plan's keys carry its level
and when it began (the raise, or the rise to that level), so a second rise to red after a
dip to orange plans red anew instead of colliding with the first red plan. Sends that
became overdue while the process was down are collapsed to the latest repeat of each
(step, rung), so a restart after an hour sends one call per person, not twenty.

What stops sends: an acknowledgement cancels every pending step in the same transaction as
the ack (:meth:`alerting.store.AlertStore.ack`); a clear cancels the steps that stop on clear
and tells everyone already reached once, on the policy's ``cleared`` channels; a level rise
replaces the plan of the lower level, while a fall is told in a written notice and leaves
the plan of the peak level running (nobody has acknowledged it). A flapping alarm's level
changes plan nothing new (its existing plan runs on): re-notification is held until it
settles.

Holds: a shelved alarm, or one in a maintenance window, is recorded and not sent. A hold
found when planning, or when a step of the alarm falls due (someone shelved it from the CLI
after it started ringing), cancels every pending step of the alarm ("held: …"). When the
hold is over and the alarm still needs acknowledging, the next :meth:`Escalator.reconcile`
(every minute) starts the policy of its level over from that moment: rung 1 first, as for a
new alarm — whoever shelved it knew about it, and the chain should not all be woken at once
because the alarm is old.

Flood control: more than ``flood.alarms`` new alarms at one site within ``flood.within`` are
not each sent on. The windows are fixed (02:00–02:02, 02:02–02:04 for two minutes); every
alarm folded in a window holds a share of one grouped message, sent to the first rung when
the window closes, so that it counts the whole burst (and is still sent if some of the
folded alarms were acknowledged meanwhile). An alarm of a higher level than all the others
of the burst is never folded into a group: it escalates on its own.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
from alerting.store_rows import (
    AckResult,
    Applied,
    EscalationStep,
    StepPlan,
    StepResult,
    StepStatus,
)
from earlywarn.model import DutyRef, Enterprise, Level, Person, Region, Target

log = logging.getLogger(__name__)

RUNG = "rung"
_SERIES = re.compile(r"r\d+g(?=\d+$)")
"""The repeat number in a rung step's key (``…|d0|s1r4g2`` → ``…|d0|s1g2``: its series)."""
OPEN_UNACKED = (State.ACTIVE_UNACKED, State.CLEARED_UNACKED)
WRITTEN = ("im", "sms")
"""Channels for notices (lower, acknowledged, grouped): written, never a call at night."""
HELD = "held: "
"""How the detail of a step cancelled by a hold begins: the plan starts over after it."""
LIVE = (StepStatus.PENDING, StepStatus.SENDING)
"""Steps still to be carried out (or being carried out right now)."""


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
        """Plan, replace or cancel sends after an event changed an occurrence.

        A rise cancels what is pending and plans the policy of the new level from the rise.
        A fall (not while flapping) sends one written "降为…" notice to everyone reached and
        changes no plan: the policy of the peak level runs on until someone acknowledges,
        because a gas reading back from red to orange is still a leak nobody has answered.
        A clear stops the steps that stop on clear and sends the all-clear.
        """
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
        """Tell everyone already reached (except the one who answered) that it is answered.

        Only for an alarm still active: after the all-clear everyone reached was told it is
        over, and a second message in the night to say that someone has now seen it would
        wake them for nothing.
        """
        record = result.record
        if result.ok and record is not None and record.state is State.ACTIVE_ACKED:
            self._notice(record, Purpose.ACKED, now_ms, tag="acked", besides=result.by or "")

    def reconcile(self, now_ms: int) -> None:
        """Extend plans of open, unacknowledged alarms to the horizon, start the plan of an
        alarm whose hold (shelving, maintenance window) has ended, and send the
        acknowledgement notice for active alarms acknowledged by another process (the CLI).
        Idempotent; call it every minute and at start-up."""
        for record in self.store.list_alarms(states=OPEN_UNACKED, limit=10_000):
            self.plan_alarm(record, now_ms)
        recent = self.store.list_alarms(
            states=(State.ACTIVE_ACKED, State.CLEARED), since_ms=now_ms - 86_400_000, limit=1_000
        )
        for record in recent:
            acked = record.acked_ms
            if acked is None or now_ms - acked >= 900_000:
                continue
            if record.cleared_ms is None or acked < record.cleared_ms:
                self._notice(
                    record, Purpose.ACKED, now_ms, tag="acked", besides=record.acked_by or ""
                )

    def plan_alarm(self, record: AlarmRecord, now_ms: int) -> int:
        """Plan the sends of one occurrence up to the horizon; returns how many are new.

        A held occurrence (shelved, in a maintenance window) gets nothing: its pending steps
        are cancelled instead (see the module docstring).
        """
        if record.state not in OPEN_UNACKED:
            return 0
        held = self.store.hold_reason(record.alarm_id, now_ms)
        if held:
            self._hold(record, held, now_ms)
            return 0
        plans = self._plans(record, now_ms, now_ms + self.horizon_ms)
        inserted = self.store.plan_steps(plans, now_ms)
        if any(s.payload.get("purpose") == Purpose.GROUPED.value for s in inserted):
            log.warning(
                "%s folded into the flood-control group of %s/%s",
                record.alarm_id,
                record.enterprise,
                record.site,
            )
        return len(inserted)

    def _plans(self, record: AlarmRecord, now_ms: int, horizon_ms: int) -> list[StepPlan]:
        """The steps of one occurrence's plan, due up to ``horizon_ms`` (not yet stored)."""
        enterprise = self.directory.enterprises.get(record.enterprise)
        if enterprise is None:
            log.error(
                "alarm %s belongs to enterprise %r, which is not in the registry: nobody can "
                "be notified",
                record.alarm_id,
                record.enterprise,
            )
            return []
        facts = AlarmFacts(record.enterprise, record.site, record.kind, record.peak, record.drill)
        decisions = route(self.routing, facts, enterprise, self.directory.regions)
        if not decisions:
            log.error("no route notifies anyone of %s: check routing.yaml", record.alarm_id)
            return []
        since = self._peak_since(record)
        start = self._period_start(record, since, now_ms)
        if self._grouped(record):
            return self._plan_group(record, decisions, start, now_ms)
        higher = since > record.start_ms
        plans: list[StepPlan] = []
        for index, decision in enumerate(decisions):
            policy = self.policies.get(decision.policy)
            if policy is None:
                log.error("policy %r of route %s is unknown", decision.policy, decision.route)
                continue
            plans.extend(
                self._plan_decision(
                    record, index, decision, policy, start, higher, now_ms, horizon_ms
                )
            )
        return plans

    def _hold(self, record: AlarmRecord, reason: str, now_ms: int) -> None:
        """Cancel every pending step of a held occurrence. If nothing was planned yet at its
        level, what would be sent now is planned and cancelled with it: the audit shows what
        the hold kept back, and the plan starts over when the hold ends."""
        since = self._peak_since(record)
        steps = self.store.steps_of(record.alarm_id)
        if record.state in OPEN_UNACKED and not self._period_steps(record, since, steps):
            self.store.plan_steps(self._plans(record, now_ms, now_ms), now_ms)
            steps = self.store.steps_of(record.alarm_id)
        pending = [s.id for s in steps if s.status is StepStatus.PENDING]
        if pending:
            count = self.store.cancel_steps(
                record.alarm_id, f"{HELD}{reason}", now_ms, step_ids=pending
            )
            log.info(
                "%s: notifications held (%s): %d step(s) cancelled; its escalation starts "
                "over when the hold ends",
                record.alarm_id,
                reason,
                count,
            )

    def _period_steps(
        self, record: AlarmRecord, since: int, steps: Sequence[EscalationStep]
    ) -> list[EscalationStep]:
        """The rung steps planned for the occurrence at its peak level since it got there."""
        return [
            s
            for s in steps
            if s.target == RUNG
            and s.payload.get("level") == record.peak.label
            and int(s.payload.get("start", -1)) >= since
        ]

    def _period_start(self, record: AlarmRecord, since: int, now_ms: int) -> int:
        """When the plan of the occurrence's peak level runs from: where it reached that level
        (``since``), or, once a hold cancelled that plan and nothing of it is left pending,
        now — the hold is over and the policy starts over. Stable while the plan runs, since
        its steps carry it: re-planning every minute or after a restart plans the same keys."""
        steps = self._period_steps(record, since, self.store.steps_of(record.alarm_id))
        if not steps:
            return since
        latest = max(int(s.payload["start"]) for s in steps)
        current = [s for s in steps if int(s.payload["start"]) == latest]
        if any(s.status in LIVE for s in current):
            return latest
        held = any(s.status is StepStatus.CANCELLED and s.detail.startswith(HELD) for s in current)
        return now_ms if held else latest

    def _plan_decision(
        self,
        record: AlarmRecord,
        index: int,
        decision: Decision,
        policy: Policy,
        start: int,
        higher: bool,
        now_ms: int,
        horizon_ms: int,
    ) -> list[StepPlan]:
        sends = list(
            plan(
                policy,
                start,
                len(decision.rungs),
                channels=decision.channels,
                horizon_ms=horizon_ms,
            )
        )
        # How many earlier instants each send's rung was sent to: the second call to a rung
        # is its first reminder, whichever step of the policy makes it.
        before: dict[int, set[int]] = {}
        earlier: list[int] = []
        for s in sends:
            times = before.setdefault(s.rung, set())
            earlier.append(sum(1 for t in times if t < s.due_ms))
            times.add(s.due_ms)
        numbered = list(zip(sends, earlier, strict=True))
        if record.state is State.CLEARED_UNACKED:
            numbered = [(s, n) for s, n in numbered if not s.stop_on_clear]
        # Overdue repeats (the process was down): only the latest of each (step, rung).
        latest: dict[tuple[int, int], int] = {}
        for s, _ in numbered:
            if s.due_ms <= now_ms:
                latest[(s.step, s.rung)] = max(latest.get((s.step, s.rung), 0), s.repeat)
        plans = []
        for s, n in numbered:
            if s.due_ms <= now_ms and latest[(s.step, s.rung)] != s.repeat:
                continue
            targets = decision.rungs[s.rung]
            if not targets:
                continue
            purpose = Purpose.REMINDER if n else (Purpose.HIGHER if higher else Purpose.ALARM)
            key = (
                f"{record.alarm_id}|{record.peak.label}@{start}|d{index}"
                f"|s{s.step}r{s.repeat}g{s.rung}"
            )
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
                        "start": start,
                        "repeat": s.repeat,
                        "reminder": n,
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

    def _plan_group(
        self, record: AlarmRecord, decisions: list[Decision], start: int, now_ms: int
    ) -> list[StepPlan]:
        """This occurrence's share of its window's grouped message: due when the window
        closes (at once if it has), to the first rung of each decision, on written channels.
        Every folded alarm plans its own share so that acknowledging one of them does not
        cancel the message for the others; the deliveries are keyed by site, window, person
        and channel, so the first share to fall due sends, the others add nothing."""
        window = self.routing.flood.within_ms
        bucket = record.start_ms // window
        plans = []
        for index, decision in enumerate(decisions):
            first = next((rung for rung in decision.rungs if rung), None)
            if first is None:
                continue
            key = (
                f"group|{record.enterprise}/{record.site}|{bucket}|d{index}"
                f"|{record.alarm_id}|{record.peak.label}@{start}"
            )
            plans.append(
                StepPlan(
                    key,
                    record.alarm_id,
                    max(now_ms, (bucket + 1) * window),
                    RUNG,
                    None,
                    {
                        "targets": [str(t) for t in first],
                        "channels": list(WRITTEN),
                        "allowed": sorted(decision.channels) if decision.channels else None,
                        "purpose": Purpose.GROUPED.value,
                        "level": record.peak.label,
                        "start": start,
                        "repeat": 0,
                        "policy": "flood",
                        "route": decision.route,
                        "stop_on_clear": False,
                        "window_ms": window,
                        "group": f"{record.enterprise}/{record.site}|{bucket}",
                    },
                )
            )
        return plans

    def _stop_on_clear(self, record: AlarmRecord, now_ms: int) -> None:
        stop = [
            s.id
            for s in self.store.steps_of(record.alarm_id)
            if s.status is StepStatus.PENDING and s.payload.get("stop_on_clear", True)
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
        """One written message to everyone already reached about this occurrence.

        The all-clear goes on the ``cleared`` channels of the policy that reached each person
        (``[]``: none), the other notices on the person's first written channel (IM, else
        SMS).
        """
        reached = {
            c.person
            for c in self.store.who_was_called(record.alarm_id)
            if c.last_outcome is Delivery.SENT
        }
        cleared = self._cleared_channels(record) if purpose is Purpose.CLEARED else {}
        plans = []
        for person_id in sorted(reached - {besides}):
            person = self.directory.people.get(person_id)
            if person is None:
                continue
            if person_id in cleared:
                pairs = contacts_for(person, *cleared[person_id])
            else:
                pairs = contacts_for(person, WRITTEN)[:1]
            base = f"{record.alarm_id}|{tag}|{person_id}"
            for channel, address in pairs:
                plans.append(
                    StepPlan(
                        f"{base}|{channel}",
                        record.alarm_id,
                        now_ms,
                        person_id,
                        channel,
                        {
                            "purpose": purpose.value,
                            "address": address,
                            "base": base,
                            "fallbacks": [],
                            "level": record.level.label if record.level else None,
                            "acked_by": besides,
                            "notice": True,
                        },
                    )
                )
        if plans:
            self._plan_notices(record, plans, now_ms)

    def _cleared_channels(
        self, record: AlarmRecord
    ) -> dict[str, tuple[tuple[str, ...], frozenset[str] | None]]:
        """Person → (the ``cleared`` channels, the route's channel restriction) of the policy
        whose send reached them last; people reached otherwise (a grouped message) are not
        in it."""
        steps = self.store.steps_of(record.alarm_id)
        rungs = {s.id: s.payload for s in steps if s.target == RUNG}
        found: dict[str, tuple[tuple[str, ...], frozenset[str] | None]] = {}
        for s in steps:
            rung = rungs.get(s.payload.get("rung_step", -1))
            if s.target == RUNG or rung is None or s.status is not StepStatus.SENT:
                continue
            policy = self.policies.get(str(rung.get("policy")))
            if policy is not None:
                allowed = frozenset(rung["allowed"]) if rung.get("allowed") else None
                found[s.target] = (policy.cleared, allowed)
        return found

    def _plan_notices(self, record: AlarmRecord, plans: list[StepPlan], now_ms: int) -> None:
        # The store skips plans for acknowledged alarms (nothing more should wake anyone);
        # a notice is not a wake-up, so it goes in even then.
        self.store.plan_steps(plans, now_ms, even_if_acked=True)

    # -- carrying out due steps ----------------------------------------------------------

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
