"""One message in, alarms out: the synchronous core of the embedded runner.

No network here. Messages arrive as :class:`Inbound`; alarm events leave through sinks;
dead-letters and retained alarm states leave through an injected ``publish`` function. Tests
drive it directly, the runner drives it from the MQTT hand-off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from alerting.active import ActiveAlarms
from alerting.sinks import AlarmSink
from earlywarn.alarms import to_alarm_event
from earlywarn.clock import Clock
from earlywarn.counters import Counters
from earlywarn.messages import Language
from earlywarn.model import AlarmEvent, Reading, Sensor
from earlywarn.registry import Registry
from earlywarn.zones import to_zone_alarm_event
from ingest.deadletter import deadletter_payload
from ingest.decode import Limits, Rejection, decode_reading_message
from ingest.mqtt import Inbound
from ingest.reasons import Reason
from ingest.topics import DEADLETTER, alarm_topic
from rules import composite
from rules.composite import CompositeState
from rules.engine import state_to_dict
from rules.events import RuleEvent
from rules.fleet import CLOCK_KINDS, FleetEngine
from rules.lanes.columns import NONE, Bools, Ints, Segments, running_max

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bool], None]
"""``publish(topic, payload, retain)`` with QoS 1."""

ReadingsOut = Callable[[Sequence[Reading]], None]
"""Takes every batch of accepted readings after evaluation (storage's spool)."""


class Pipeline:
    """Decode, evaluate, emit. Holds the rule state of every sensor and the active alarms.

    Readings are evaluated a batch at a time by the fleet engine (:mod:`rules.fleet`): the
    runner hands over whatever arrived in the last few milliseconds, and each rule kind is
    evaluated for all of them at once. The events, and their order, are those of evaluating
    the readings one by one.
    """

    def __init__(
        self,
        registry: Registry,
        clock: Clock,
        sinks: Sequence[AlarmSink] = (),
        publish: Publish | None = None,
        limits: Limits | None = None,
        *,
        publish_alarms: bool = True,
        language: Language = "zh",
        states: Mapping[str, Mapping[str, Any]] | None = None,
        zone_states: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.sinks = list(sinks)
        self.publish = publish
        self.limits = limits or Limits()
        self.publish_alarms = publish_alarms
        self.language: Language = language
        self.counters = Counters()
        self.readings_out: ReadingsOut | None = None
        """Where accepted readings go once evaluated (the storage spool), if anywhere."""
        self.active = ActiveAlarms()
        self.engine = FleetEngine()
        self._sensors: list[Sensor] = []
        self._index: dict[str, int] = {}
        states = states or {}
        for uid, sensor in registry.sensors.items():
            saved = states.get(uid)
            restored = None if saved is None else _restore(sensor.uid, sensor.rules, saved)
            self._index[uid] = self.engine.add(sensor.rules, restored)
            self._sensors.append(sensor)
        self.engine.settle()  # now, not in the first micro-batch's latency
        self._newest = np.full(len(self._sensors), NONE, dtype=np.int64)
        """Per sensor, the newest reading time evaluated (for the ``stale`` counter)."""
        self._watched = np.array(
            [any(r.kind in CLOCK_KINDS for r in s.rules) for s in self._sensors], dtype=np.bool_
        )
        self._zoned = {self._index[uid] for uid in self._sensors_in_zones()}
        self.zone_states: dict[str, dict[str, CompositeState]] = {}
        """Zone uid → composite rule id → state."""
        for zone_uid, saved in (zone_states or {}).items():
            zone = registry.zones.get(zone_uid)
            if zone is not None:
                self.zone_states[zone_uid] = _restore(zone_uid, zone.rules, saved)

    def _sensors_in_zones(self) -> set[str]:
        return {uid for uid in self.registry.sensors if self.registry.zones_of(uid)}

    @property
    def clock_watched(self) -> int:
        """How many sensors :meth:`tick` visits."""
        return int(self._watched.sum())

    def watch_only(self, sensors: set[str]) -> None:
        """Limit clock-driven rules to these sensors (a backtest of a partial recording must
        not call every other registered sensor offline)."""
        keep = np.zeros(len(self._sensors), dtype=np.bool_)
        for uid in sensors:
            if uid in self._index:
                keep[self._index[uid]] = True
        self._watched &= keep

    def sensor_state(self, uid: str) -> dict[str, Any]:
        """A sensor's rule states (rule id → the rule's state value), for snapshots."""
        return self.engine.state(self._index[uid])

    def sensor_state_data(self, uid: str) -> dict[str, Any]:
        """A sensor's rule states as plain data (the distributed workers' table values);
        ``states=`` of a new pipeline reads it back."""
        return state_to_dict(self.engine.state(self._index[uid]))

    def zone_state_data(self, zone_uid: str) -> dict[str, Any]:
        """A zone's composite rule states as plain data (``zone_states=`` reads it back)."""
        return state_to_dict(self.zone_states.get(zone_uid, {}))

    def handle(self, msg: Inbound) -> None:
        """Process one message completely; never raises."""
        self.handle_batch([msg])

    def handle_batch(self, msgs: Sequence[Inbound]) -> None:
        """Decode every message, evaluate all their readings together, emit; never raises.

        A defect of ours must not stop the service or lose a message: it is logged, and the
        messages it concerns go to the dead-letter topic with the reason ``internal_error``.
        """
        readings: list[Reading] = []
        now_ms = self.clock.now_ms()
        for msg in msgs:
            self.counters.received += 1
            try:
                decoded = decode_reading_message(
                    msg.topic, msg.payload, self.registry, now_ms, self.limits
                )
                readings.extend(decoded.readings)
                rejections = decoded.rejections
            except Exception:
                log.exception("internal error while decoding a message on %s", msg.topic)
                rejections = [
                    Rejection(Reason.INTERNAL_ERROR, "internal error; see the service log")
                ]
            if rejections:
                self._reject(msg, rejections)
        if not readings:
            return
        try:
            self.evaluate_many(readings)
        except Exception:
            log.exception("internal error while evaluating %d readings", len(readings))
            for msg in msgs:
                self._reject(
                    msg, [Rejection(Reason.INTERNAL_ERROR, "internal error; see the service log")]
                )
        if self.readings_out is not None:
            # After the rules: storing must never delay an alarm. Before the runner
            # acknowledges the messages to the broker: once acknowledged, a reading is in the
            # spool, so a crash loses none.
            try:
                self.readings_out(readings)
            except Exception:
                self.counters.unstored += len(readings)
                log.exception(
                    "could not spool %d readings for InfluxDB (alarms are not affected)",
                    len(readings),
                )

    def evaluate(self, reading: Reading) -> list[AlarmEvent]:
        """Run one accepted reading through its sensor's rules and emit the events."""
        return self.evaluate_many([reading])

    def evaluate_many(
        self, readings: Sequence[Reading], arrival_ms: Sequence[int] | None = None
    ) -> list[AlarmEvent]:
        """Run accepted readings (in arrival order) through their sensors' rules; emit.

        Clock-driven rules (offline) hear of a reading at its *arrival* time on our clock
        (now, unless ``arrival_ms`` says when each arrived, as a replay does):
        whether data arrives is what they judge, so a device whose clock lags, a back-fill of
        old readings or a replay faster than real time is never taken for a silent device.
        """
        n = len(readings)
        sensor = np.fromiter((self._index[r.sensor] for r in readings), np.int64, n)
        ts = np.fromiter((r.ts_ms for r in readings), np.int64, n)
        value = np.fromiter((r.value for r in readings), np.float64, n)
        quality = np.fromiter((r.quality for r in readings), np.int64, n)
        arrival = (
            np.full(n, self.clock.now_ms(), dtype=np.int64)
            if arrival_ms is None
            else np.asarray(arrival_ms, dtype=np.int64)
        )
        zoned = [i for i, s in enumerate(sensor.tolist()) if s in self._zoned]
        before = {s: self._levels(s) for s in {int(sensor[i]) for i in zoned}}
        stale = self._count(sensor, ts)
        found = self.engine.evaluate(sensor, ts, value, quality, arrival)
        by_reading: dict[int, list[tuple[int, RuleEvent]]] = {}
        for position, s, rule_event in found:
            by_reading.setdefault(position, []).append((s, rule_event))
        zoned_positions = set(zoned)
        drills = {i for i, r in enumerate(readings) if r.drill}
        events: list[AlarmEvent] = []
        # Reading by reading, as the reference order has it: a reading's own events, then what
        # its zones make of the sensor's new levels.
        for position in sorted(by_reading.keys() | zoned_positions):
            own = by_reading.get(position, [])
            drill = position in drills
            for s, rule_event in own:
                event = to_alarm_event(self.registry, self._sensors[s], rule_event, self.language)
                if drill:
                    event = replace(event, drill=True)
                self._emit(event)
                events.append(event)
            if position not in zoned_positions or (stale[position] and not own):
                continue  # not a zone member, or a late or duplicate reading: nothing new
            s = int(sensor[position])
            levels = before[s]
            for _s, rule_event in own:
                levels[rule_event.rule_id] = int(rule_event.level) if rule_event.level else 0
            zone_events = self._feed_zones(self._sensors[s], int(ts[position]), levels, drill)
            events.extend(zone_events)
        return events

    def _count(self, sensor: Ints, ts: Ints) -> Bools:
        """Count the readings; those not newer than their sensor's newest one are ``stale``
        (returned as a mask in arrival order)."""
        seg = Segments.of(sensor)
        grouped = ts[seg.order]
        seen = running_max(seg, grouped, self._newest)
        mask = np.zeros(len(sensor), dtype=np.bool_)
        mask[seg.order] = grouped <= seen
        stale = int(mask.sum())
        self._newest[seg.seg_slot] = np.maximum(
            self._newest[seg.seg_slot], np.maximum.reduceat(grouped, seg.first)
        )
        self.counters.readings += len(sensor)
        self.counters.stale += stale
        self.counters.evaluated += len(sensor) - stale
        return mask

    def _levels(self, sensor: int) -> dict[str, int]:
        return {
            rule_id: int(state.latch.level) for rule_id, state in self.engine.state(sensor).items()
        }

    def tick(self, now_ms: int) -> list[AlarmEvent]:
        """Let time pass for the sensors whose rules watch the clock (offline detection).

        Runs whether or not any reading arrives, so a sensor that was never heard from, or a
        whole feed that went silent, still raises its alarm on time. All watched sensors are
        ticked at once, as columns.
        """
        events: list[AlarmEvent] = []
        ticked: dict[int, list[AlarmEvent]] = {}
        for s, rule_event in self.engine.tick(now_ms, self._watched):
            event = to_alarm_event(self.registry, self._sensors[s], rule_event, self.language)
            self._emit(event)
            events.append(event)
            ticked.setdefault(s, []).append(event)
        for s in ticked:
            if s in self._zoned:
                events.extend(self._feed_zones(self._sensors[s], now_ms, self._levels(s)))
        return events

    def _feed_zones(
        self, sensor: Sensor, ts_ms: int, levels: dict[str, int], drill: bool = False
    ) -> list[AlarmEvent]:
        """Tell each zone of ``sensor`` the sensor's current level; emit the zone events.

        ``levels`` are the sensor's rule levels after the reading. Called after every
        evaluated reading of a member (not only when its level changed), so a composite
        rule's on- and off-delays run on the members' readings.
        """
        events: list[AlarmEvent] = []
        for zone in self.registry.zones_of(sensor.uid):
            states = self.zone_states.setdefault(zone.uid, {})
            for rule in zone.rules:
                if rule.member_rule is not None:
                    level = levels.get(rule.member_rule, 0)
                else:
                    level = max(levels.values(), default=0)
                old = states.get(rule.rule_id)
                new, rule_event = composite.update(
                    rule, rule.initial() if old is None else old, sensor.uid, level, ts_ms
                )
                states[rule.rule_id] = new
                if rule_event is not None:
                    event = to_zone_alarm_event(
                        self.registry, zone, rule, rule_event, self.language
                    )
                    if drill:
                        event = replace(event, drill=True)
                    self._emit(event)
                    events.append(event)
        return events

    def _emit(self, event: AlarmEvent) -> None:
        self.counters.alarms[event.level.label if event.level else "cleared"] += 1
        self.active.apply(event)
        # The console sink is the alarm record; the log repeats events only when debugging.
        log.debug(
            "alarm %s %s: %s",
            event.change.value,
            event.level.label if event.level else "-",
            event.message,
        )
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception:
                log.exception("alarm sink %r failed on %s", sink, event.alarm_id)
        if self.publish is not None and self.publish_alarms:
            self.publish(
                alarm_topic(event.enterprise, event.site, event.sensor_id),
                self.active.retained_payload(event),
                True,
            )

    def _reject(self, msg: Inbound, rejections: list[Rejection]) -> None:
        for r in rejections:
            self.counters.rejected[r.reason.value] += 1
        first = rejections[0]
        log.warning(
            "rejected %s from %s: %s (%s)%s",
            first.where,
            msg.topic,
            first.reason.value,
            first.detail,
            f" and {len(rejections) - 1} more" if len(rejections) > 1 else "",
        )
        if self.publish is not None:
            self.publish(
                DEADLETTER,
                deadletter_payload(msg.topic, msg.payload, rejections, msg.received_ms),
                False,
            )
            self.counters.deadletters += 1


class _Stateful(Protocol):
    """A sensor rule or a zone's composite rule: what restoring a saved state needs."""

    @property
    def rule_id(self) -> str: ...

    def state_from_dict(self, data: dict[str, Any]) -> Any: ...


def _restore(uid: str, rules: Sequence[_Stateful], saved: Mapping[str, Any]) -> dict[str, Any]:
    """Saved states of ``uid``'s rules; a rule's state that no longer reads (its kind changed
    under the same id) starts afresh, with a warning, rather than stopping the service."""
    out: dict[str, Any] = {}
    for rule in rules:
        data = saved.get(rule.rule_id)
        if data is None:
            continue
        try:
            out[rule.rule_id] = rule.state_from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning(
                "saved state of %s rule %s does not fit the rule any more; it starts afresh",
                uid,
                rule.rule_id,
            )
    return out


def snapshot_json(counters: Counters) -> str:
    """Counters as one JSON line (for ``--stats-json`` and scripts)."""
    return json.dumps(counters.snapshot(), sort_keys=True)
