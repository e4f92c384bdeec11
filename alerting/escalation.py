"""Wake-up escalation: turn an alarm into planned, durable sends.

Every timer lives in the store as an escalation step, so a process killed between two calls
makes the next call on time after a restart (or at once if overdue), and never repeats one
already made. The :class:`Escalator` plans; its :class:`~alerting.delivery.Courier` carries
out the steps as they fall due (resolving, sending, retry and fallback: see
:mod:`alerting.delivery`). Two kinds of step:

- a **rung step** (``target = "rung"``): "at 02:03, call rung 2 of this alarm's chain on
  voice". It is planned ahead from the escalation policy (:func:`alerting.policy.plan`), and
  resolved to people only when due, because "the county duty officer" is whoever the roster
  says at that minute.
- a **delivery step** (``target`` = a person id, ``channel`` = a channel name): one message
  to one person, planned when a rung step is resolved, or here for a notice (lower,
  acknowledged, cleared) to someone already reached.

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

import logging
from collections.abc import Mapping, Sequence

from alerting.channels.base import Channel
from alerting.compose import Purpose
from alerting.delivery import LIVE, RUNG, Courier, Job, Retry
from alerting.directory import Directory
from alerting.lifecycle import AlarmRecord, State, TransitionKind
from alerting.links import LinkSigner
from alerting.notifications import Delivery, Outcome
from alerting.policy import Policy, contacts_for, plan
from alerting.routing import AlarmFacts, Decision, Routing, route
from alerting.store import AlertStore
from alerting.store_rows import (
    AckResult,
    Applied,
    EscalationStep,
    StepPlan,
    StepStatus,
)

__all__ = ["Directory", "Escalator", "Retry"]
"""What callers build an escalator from, importable from here as before the split: the
directory and the back-off live in their own modules (:mod:`alerting.directory`,
:mod:`alerting.delivery`)."""

log = logging.getLogger(__name__)

OPEN_UNACKED = (State.ACTIVE_UNACKED, State.CLEARED_UNACKED)
WRITTEN = ("im", "sms")
"""Channels for notices (lower, acknowledged, grouped): written, never a call at night."""
HELD = "held: "
"""How the detail of a step cancelled by a hold begins: the plan starts over after it."""


class Escalator:
    """Plans the sends of every alarm, through the store, and has its courier carry them out.

    ``policies`` maps policy names to policies (defaults included); ``channels`` maps channel
    names to channels; ``signer`` makes acknowledgement links (``None``: messages carry only
    the SMS reply code). Times are always arguments: the caller owns the clock.

    Sending is the :attr:`courier`'s (:class:`~alerting.delivery.Courier`); ``pump``,
    ``pump_async``, ``recover`` and the steps of a pump stay methods here so that the alert
    service, the runner and the tests hold one object.
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
        self.horizon_ms = horizon_ms
        self.courier = Courier(
            store, directory, channels, signer, hold=self._hold, lang=lang, retry=retry
        )

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

    # -- carrying out due steps: the courier's ------------------------------------------

    def due_deliveries(self, now_ms: int) -> list[EscalationStep]:
        """The due deliveries, unclaimed (:meth:`Courier.due_deliveries`)."""
        return self.courier.due_deliveries(now_ms)

    def start(self, step: EscalationStep, now_ms: int) -> Job | None:
        """Claim one due delivery and build its notification (:meth:`Courier.start`)."""
        return self.courier.start(step, now_ms)

    @staticmethod
    def send(job: Job) -> Outcome:
        """Deliver one job; never raises (:meth:`Courier.send`)."""
        return Courier.send(job)

    def finish(self, job: Job, outcome: Outcome, now_ms: int) -> None:
        """Record the attempt, then retry, fall back or close the step (:meth:`Courier.finish`)."""
        self.courier.finish(job, outcome, now_ms)

    def pump(self, now_ms: int) -> int:
        """Send everything due, inline; returns how many deliveries were attempted."""
        return self.courier.pump(now_ms)

    async def pump_async(self, now_ms: int, *, concurrency: int = 16) -> int:
        """Send everything due, each send in a worker thread (:meth:`Courier.pump_async`)."""
        return await self.courier.pump_async(now_ms, concurrency=concurrency)

    def recover(self, now_ms: int) -> Sequence[EscalationStep]:
        """At start-up: steps a killed process left mid-send (outcome unknown, not resent),
        then a reconcile so every open alarm has its plan."""
        lost = self.courier.recover(now_ms)
        self.reconcile(now_ms)
        return lost
