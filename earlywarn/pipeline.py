"""One message in, alarms out: the synchronous core of the embedded runner.

No network here. Messages arrive as :class:`Inbound`; alarm events leave through sinks;
dead-letters and retained alarm states leave through an injected ``publish`` function. Tests
drive it directly, the runner drives it from the MQTT hand-off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

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
from rules import composite, engine
from rules.base import Rule
from rules.composite import CompositeState
from rules.events import RuleEvent

log = logging.getLogger(__name__)

CLOCK_KINDS = frozenset({"offline"})
"""Rule kinds that act on clock ticks, not only on readings."""

Publish = Callable[[str, bytes, bool], None]
"""``publish(topic, payload, retain)`` with QoS 1."""


class Pipeline:
    """Decode, evaluate, emit. Holds the per-sensor rule state and the active alarms."""

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
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.sinks = list(sinks)
        self.publish = publish
        self.limits = limits or Limits()
        self.publish_alarms = publish_alarms
        self.language: Language = language
        self.counters = Counters()
        self.active = ActiveAlarms()
        self.states: dict[str, dict[str, Any]] = {}
        self.zone_states: dict[str, dict[str, CompositeState]] = {}
        """Zone uid → composite rule id → state, like :attr:`states` for sensors."""
        # Per sensor: the rules judging readings, and those acting on the clock (offline).
        self._rules: dict[str, tuple[tuple[Rule, ...], tuple[Rule, ...]]] = {
            uid: (
                tuple(r for r in s.rules if r.kind not in CLOCK_KINDS),
                tuple(r for r in s.rules if r.kind in CLOCK_KINDS),
            )
            for uid, s in registry.sensors.items()
        }
        # Ticks visit only the clock rules: ticking every rule of every sensor once a second
        # would hold the event loop for nothing.
        self._clock_watched: list[tuple[Sensor, tuple[Rule, ...]]] = [
            (registry.sensors[uid], clock_rules)
            for uid, (_reading_rules, clock_rules) in self._rules.items()
            if clock_rules
        ]

    @property
    def clock_watched(self) -> int:
        """How many sensors :meth:`tick` visits."""
        return len(self._clock_watched)

    def watch_only(self, sensors: set[str]) -> None:
        """Limit clock-driven rules to these sensors (a backtest of a partial recording must
        not call every other registered sensor offline)."""
        self._clock_watched = [(s, r) for s, r in self._clock_watched if s.uid in sensors]

    def handle(self, msg: Inbound) -> None:
        """Process one message completely; never raises."""
        self.counters.received += 1
        try:
            decoded = decode_reading_message(
                msg.topic, msg.payload, self.registry, self.clock.now_ms(), self.limits
            )
            for reading in decoded.readings:
                self.evaluate(reading)
            rejections = decoded.rejections
        except Exception:
            # A defect of ours must not stop the service or lose the message: say so loudly,
            # keep the payload in the dead-letter topic and go on with the next message.
            log.exception("internal error while handling a message on %s", msg.topic)
            rejections = [Rejection(Reason.INTERNAL_ERROR, "internal error; see the service log")]
        if rejections:
            self._reject(msg, rejections)

    def evaluate(self, reading: Reading) -> list[AlarmEvent]:
        """Run one accepted reading through its sensor's rules and emit the events.

        Clock-driven rules (offline) hear of the reading at its *arrival* time on our clock:
        whether data arrives is what they judge, so a device whose clock lags, a back-fill of
        old readings or a replay faster than real time is never taken for a silent device.
        """
        self.counters.readings += 1
        sensor = self.registry.sensors[reading.sensor]
        reading_rules, clock_rules = self._rules[reading.sensor]
        # The pipeline owns these dicts; the engine returns new states and they are stored here.
        state = self.states.setdefault(reading.sensor, {})
        rule_events: list[RuleEvent] = []
        if clock_rules:
            alive, rule_events = engine.evaluate_sensor(
                clock_rules, state, self.clock.now_ms(), reading.value, reading.quality
            )
            state.update(alive)
        stale = engine.rules_stale(reading_rules, state, reading.ts_ms)
        if stale:
            self.counters.stale += 1
        else:
            judged, more = engine.evaluate_sensor(
                reading_rules, state, reading.ts_ms, reading.value, reading.quality
            )
            state.update(judged)
            rule_events.extend(more)
            self.counters.evaluated += 1
        if stale and not rule_events:
            return []
        events = [to_alarm_event(self.registry, sensor, e, self.language) for e in rule_events]
        for event in events:
            self._emit(event)
        events.extend(self._feed_zones(sensor, reading.ts_ms))
        return events

    def tick(self, now_ms: int, part: slice = slice(None)) -> list[AlarmEvent]:
        """Let time pass for the sensors whose rules watch the clock (offline detection).

        Runs whether or not any reading arrives, so a sensor that was never heard from, or a
        whole feed that went silent, still raises its alarm on time. ``part`` ticks a slice of
        the watched sensors, so a runner can spread a large registry's tick over the loop.
        """
        events: list[AlarmEvent] = []
        for sensor, clock_rules in self._clock_watched[part]:
            state = self.states.setdefault(sensor.uid, {})
            ticked, rule_events = engine.tick_sensor(clock_rules, state, now_ms)
            state.update(ticked)
            for rule_event in rule_events:
                event = to_alarm_event(self.registry, sensor, rule_event, self.language)
                self._emit(event)
                events.append(event)
            if rule_events:
                events.extend(self._feed_zones(sensor, now_ms))
        return events

    def _feed_zones(self, sensor: Sensor, ts_ms: int) -> list[AlarmEvent]:
        """Tell each zone of ``sensor`` the sensor's current level; emit the zone events.

        Called after every evaluated reading of a member (not only when its level changed), so
        a composite rule's on- and off-delays run on the members' readings.
        """
        events: list[AlarmEvent] = []
        for zone in self.registry.zones_of(sensor.uid):
            states = self.zone_states.setdefault(zone.uid, {})
            for rule in zone.rules:
                level = self._member_level(sensor.uid, rule.member_rule)
                old = states.get(rule.rule_id)
                new, rule_event = composite.update(
                    rule, rule.initial() if old is None else old, sensor.uid, level, ts_ms
                )
                states[rule.rule_id] = new
                if rule_event is not None:
                    event = to_zone_alarm_event(
                        self.registry, zone, rule, rule_event, self.language
                    )
                    self._emit(event)
                    events.append(event)
        return events

    def _member_level(self, sensor: str, member_rule: str | None) -> int:
        """A sensor's highest active alarm level (0: none), over one rule or all of them."""
        state = self.states.get(sensor, {})
        if member_rule is not None:
            rule_state = state.get(member_rule)
            return 0 if rule_state is None else int(rule_state.latch.level)
        return max((int(s.latch.level) for s in state.values()), default=0)

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


def snapshot_json(counters: Counters) -> str:
    """Counters as one JSON line (for ``--stats-json`` and scripts)."""
    return json.dumps(counters.snapshot(), sort_keys=True)
