"""The alert service: what the runner hands every alarm event to.

It records each event in the durable store (lifecycle, audit), lets the escalator plan or
cancel sends, pumps due sends, and answers the acknowledgement web server (the page of an
alarm, acks by link, SMS reply and keypress). One object so that the runner wires one thing,
and so that an acknowledgement, wherever it comes from, goes through the same path: the
store's one-transaction ack, then the "acknowledged by …" notice to the others reached.

It is an :class:`~alerting.sinks.AlarmSink`: ``emit`` is called on the event loop for every
event, in order. The store write is short (one SQLite transaction); sending happens in
:meth:`pump_async`, off the loop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from alerting.ackweb import AckReply, AlarmPage, Answer, Contacted
from alerting.escalation import Escalator
from alerting.lifecycle import AckMethod, AlarmRecord
from alerting.store import AlertStore
from alerting.store_rows import AckResult, AckStatus, Applied
from earlywarn.model import AlarmEvent, format_value, signal_unit

log = logging.getLogger(__name__)

_FIRST_NUMBER = re.compile(r"[0-9]+")
"""ASCII digits only: ``str.isdigit`` also accepts superscripts and other scripts' digits."""
RECONCILE_EVERY_MS = 60_000
"""How often open alarms' plans are extended (endless repeats are planned an hour ahead)."""


class AlertService:
    """Store + escalation + acknowledgement, driven by an injected clock (``now_ms``)."""

    def __init__(
        self,
        store: AlertStore,
        escalator: Escalator,
        now_ms: Callable[[], int],
        *,
        drill: bool = False,
    ) -> None:
        self.store = store
        self.escalator = escalator
        self.now_ms = now_ms
        self.drill = drill
        self._reconciled_ms: int | None = None

    # -- the sink --------------------------------------------------------------------------

    def emit(self, event: AlarmEvent) -> None:
        """Record an event and plan what it calls for. Never raises: a store problem is
        logged loudly, and the console and MQTT sinks still carry the event."""
        try:
            self.record(event)
        except Exception:
            log.exception("could not record or escalate alarm event %s", event.alarm_id)

    def record(self, event: AlarmEvent) -> Applied | None:
        """Record an event and plan what it calls for; what it changed, or ``None`` when the
        store already held it or it came too late (a duplicate, a stale event).

        Raises what the store raises (``sqlite3.Error`` when it cannot take the event now):
        the event is then not recorded, and whoever delivered it may deliver it again. A
        failure to plan the sends of a recorded event is logged, not raised: recording it
        again would change nothing, and :meth:`start` plans every open alarm.
        """
        now = self.now_ms()
        applied = self.store.apply_event(event, now, drill=self.drill or event.drill)
        if applied is not None:
            try:
                self.escalator.on_applied(applied, now)
            except Exception:
                log.exception("could not plan the notifications of %s", event.alarm_id)
        return applied

    def start(self) -> None:
        """At start-up: settle steps a killed process left mid-send, plan every open alarm."""
        now = self.now_ms()
        self.escalator.recover(now)
        self._reconciled_ms = now

    def _maybe_reconcile(self, now: int) -> None:
        if self._reconciled_ms is None or now - self._reconciled_ms >= RECONCILE_EVERY_MS:
            self.escalator.reconcile(now)
            self._reconciled_ms = now

    def pump(self) -> int:
        """Send what is due, inline (tests, the CLI); returns how many sends were tried."""
        now = self.now_ms()
        self._maybe_reconcile(now)
        return self.escalator.pump(now)

    async def pump_async(self) -> int:
        """Send what is due, each send in a worker thread (the runner's loop)."""
        now = self.now_ms()
        self._maybe_reconcile(now)
        return await self.escalator.pump_async(now)

    # -- acknowledgements --------------------------------------------------------------------

    def ack(self, alarm_id: str, by: str, how: AckMethod | str, comment: str = "") -> AckResult:
        """Acknowledge, stop every pending send, tell the others reached."""
        now = self.now_ms()
        result = self.store.ack(alarm_id, by, how, comment, now)
        log.info("acknowledgement (%s): %s", how, result.describe())
        if result.status is AckStatus.ACKED:
            self.escalator.on_ack(result, now)
        return result

    # -- the acknowledgement desk of the web server ----------------------------------------

    def page(self, alarm_ref: int, person: str) -> AlarmPage | None:
        """The page of one alarm: what, where, value, state, who was called, who answered."""
        record = self.store.get_by_ref(alarm_ref)
        if record is None:
            return None
        people = self.escalator.directory.people
        history = self.store.history(record.alarm_id)
        contacted = tuple(
            Contacted(
                people[a.person].name if a.person in people else a.person,
                people[a.person].role if a.person in people else "",
                a.channel,
                a.ts_ms,
                a.outcome.value,
            )
            for a in (history.attempts if history else ())
        )
        answers = tuple(
            Answer(people[a.by].name if a.by in people else a.by, a.ts_ms, a.how, a.comment)
            for a in (history.acks if history else ())
        )
        return AlarmPage(
            alarm_ref=alarm_ref,
            title=f"{record.site_name} {record.sensor_name}",
            level=record.level.label if record.level else None,
            peak_level=record.peak.label,
            state=record.state.value,
            enterprise_name=record.enterprise_name,
            site_name=record.site_name,
            sensor_name=record.sensor_name,
            value_text=_value_text(record),
            message=record.message,
            start_ms=record.start_ms,
            drill=record.drill,
            contacted=contacted,
            answers=answers,
        )

    def acknowledge(self, alarm_ref: int, person: str, how: str, comment: str) -> AckReply:
        """An acknowledgement by link (the token proved who ``person`` is)."""
        record = self.store.get_by_ref(alarm_ref)
        if record is None:
            return AckReply(False, "找不到这条报警。")
        return _reply(self.ack(record.alarm_id, person, how, comment), self._name)

    def acknowledge_by_phone(self, phone: str, code: str) -> AckReply:
        """An SMS reply: the code is the alarm's number; the phone must be someone who was
        sent this alarm.

        The code is the first number in the reply: people write after it ("12 收到，2人已到
        现场"), and the digits of their words must not be read as part of it.
        """
        found = _FIRST_NUMBER.search(code)
        record = self.store.get_by_ref(int(found.group(0))) if found else None
        if record is None:
            return AckReply(False, f"回复码 {code.strip()[:20]} 不对应任何报警。")
        reached = {c.person for c in self.store.who_was_called(record.alarm_id)}
        owners = [p for p in self.escalator.directory.phone_owners(phone) if p.id in reached]
        if not owners:
            log.warning(
                "SMS reply from %s for %s: that phone was not sent this alarm",
                phone,
                record.alarm_id,
            )
            return AckReply(False, "此号码未收到这条报警，不能确认。")
        return _reply(
            self.ack(record.alarm_id, owners[0].id, AckMethod.SMS_REPLY, f"短信回复 {code}"),
            self._name,
        )

    def acknowledge_by_call(self, key: str, digits: str) -> AckReply:
        """A keypress during a call: ``key`` is the notification key sent with the call."""
        if digits.strip() != "1":
            return AckReply(False, "未确认（按 1 确认）。")
        step_key = key.rsplit("#", 1)[0]
        step = next(
            (s for s in self.store.steps_of(step_key.split("|", 1)[0]) if s.key == step_key),
            None,
        )
        if step is None or step.channel != "voice":
            return AckReply(False, "找不到这通电话对应的报警。")
        return _reply(
            self.ack(step.alarm_id, step.target, AckMethod.IVR, "电话按键确认"), self._name
        )

    def _name(self, person_id: str) -> str:
        person = self.escalator.directory.people.get(person_id)
        return person.name if person else person_id


def _value_text(record: AlarmRecord) -> str:
    unit = signal_unit(record.rule_kind, record.unit)
    value = format_value(record.value, unit)
    return f"{value}（限值 {format_value(record.setpoint, unit)} {record.setpoint_label}）".strip()


def _reply(result: AckResult, name: Callable[[str], str]) -> AckReply:
    if result.status is AckStatus.ACKED:
        return AckReply(True, f"已确认，谢谢。其余通知已停止（{result.cancelled_steps} 项）。")
    if result.status is AckStatus.ALREADY_ACKED:
        return AckReply(False, f"{name(result.by or '')} 已经确认过这条报警。")
    return AckReply(False, "找不到这条报警。")
