"""The rules side of a distributed worker, without Kafka: records in, alarms and state out.

A Faust worker (:mod:`earlywarn.worker_app`) owns some partitions of ``ew.readings``. This
class holds the rule state of the sensors of those partitions in the embedded runner's
:class:`~earlywarn.pipeline.Pipeline` (so the evaluation is the very same, batch for batch),
and says after every batch which sensors' and zones' states changed, so that the worker
writes exactly those to its changelog-backed tables. When partitions move or the registry
changes, :meth:`WorkerCore.load` rebuilds the pipeline from the saved states.

Everything here is synchronous and takes its time from the injected clock, so tests drive
hours of offline detection without Kafka and without sleeping.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.partitioner import murmur2

from earlywarn.clock import Clock
from earlywarn.counters import Counters
from earlywarn.messages import Language
from earlywarn.model import AlarmEvent, Reading
from earlywarn.pipeline import Pipeline
from earlywarn.registry import Registry
from ingest.decode import Limits
from ingest.kafka_records import site_key
from ingest.mqtt import Inbound
from ingest.topics import DEADLETTER

log = logging.getLogger(__name__)

STATUS_SUFFIX = "/status"

StateLookup = Callable[[str], bytes | None]
"""Saved state (table value) of a sensor or zone uid, ``None`` when there is none."""


def partition_of(key: bytes, partitions: int) -> int:
    """The partition a keyed record goes to: Kafka's default partitioner (murmur2), which
    the bridge's producer uses, so a worker knows which sensors its partitions carry."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def encode_state(data: dict[str, Any]) -> bytes:
    """A sensor's or zone's rule states as a table value (compact JSON)."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True, allow_nan=True).encode()


def decode_state(value: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode_state`."""
    data = json.loads(value)
    if not isinstance(data, dict):
        msg = f"a saved state must be a JSON object, not {type(data).__name__}"
        raise ValueError(msg)
    return data


@dataclass(slots=True)
class Outcome:
    """What one batch (or one tick) produced."""

    alarms: list[AlarmEvent] = field(default_factory=list)
    deadletters: list[tuple[bytes, bytes]] = field(default_factory=list)
    """``(key, value)`` for ``ew.deadletter``: keyed by the MQTT topic, as the bridge does."""
    sensors: dict[str, int] = field(default_factory=dict)
    """Sensors whose state changed → their partition."""
    zones: dict[str, int] = field(default_factory=dict)
    """Zones whose state changed → their partition."""


class _Collect:
    """The pipeline's alarm sink and publish function, gathering into an :class:`Outcome`."""

    def __init__(self) -> None:
        self.outcome = Outcome()

    def emit(self, event: AlarmEvent) -> None:
        self.outcome.alarms.append(event)

    def publish(self, topic: str, payload: bytes, retain: bool) -> None:
        if topic != DEADLETTER:  # alarm topics are not published by workers
            return
        try:
            key = str(json.loads(payload).get("topic", "")).encode()
        except ValueError:
            key = b""
        self.outcome.deadletters.append((key, payload))

    def take(self) -> Outcome:
        out, self.outcome = self.outcome, Outcome()
        return out


class WorkerCore:
    """The rule state of the sensors of the partitions a worker owns."""

    def __init__(
        self,
        registry: Registry,
        clock: Clock,
        partitions: int,
        *,
        limits: Limits | None = None,
        language: Language = "zh",
    ) -> None:
        if partitions < 1:
            msg = f"the readings topic needs at least one partition, not {partitions}"
            raise ValueError(msg)
        self.clock = clock
        self.partitions = partitions
        self.limits = limits or Limits()
        self.language: Language = language
        self.owned: frozenset[int] = frozenset()
        self.counters = Counters()
        self.statuses = 0
        """Device status records skipped."""
        self._first_tick = False
        self._collect = _Collect()
        self.registry = registry
        self.pipeline = self._pipeline(registry, {}, {})
        self._index(registry)

    def _index(self, registry: Registry) -> None:
        self.sensor_partition = {
            uid: partition_of(site_key(s.enterprise, s.site), self.partitions)
            for uid, s in registry.sensors.items()
        }
        self.zone_partition = {
            uid: partition_of(site_key(z.enterprise, z.site), self.partitions)
            for uid, z in registry.zones.items()
        }

    def _pipeline(
        self,
        registry: Registry,
        states: dict[str, dict[str, Any]],
        zone_states: dict[str, dict[str, Any]],
    ) -> Pipeline:
        pipeline = Pipeline(
            registry,
            self.clock,
            [self._collect],
            self._collect.publish,
            self.limits,
            publish_alarms=False,
            language=self.language,
            states=states,
            zone_states=zone_states,
        )
        pipeline.counters = self.counters  # one set of counters across rebuilds
        pipeline.readings_out = self._evaluated
        return pipeline

    # -- ownership ---------------------------------------------------------------------------

    def owned_sensors(self) -> list[str]:
        """Uids of the registered sensors whose readings the owned partitions carry."""
        return [uid for uid, p in self.sensor_partition.items() if p in self.owned]

    def owned_zones(self) -> list[str]:
        """Uids of the zones of the owned partitions."""
        return [uid for uid, p in self.zone_partition.items() if p in self.owned]

    def load(
        self,
        owned: Collection[int],
        sensor_state: StateLookup,
        zone_state: StateLookup,
        registry: Registry | None = None,
    ) -> None:
        """Take ownership of ``owned`` partitions with the saved states of their sensors and
        zones (and, when given, a new registry); rebuild the pipeline.

        A sensor without a saved state starts afresh (its offline countdown from now). A saved
        state that cannot be read is logged and that sensor starts afresh: one bad value must
        not keep a whole partition from being evaluated.
        """
        if registry is not None:
            self.registry = registry
            self._index(registry)
        self.owned = frozenset(owned)
        sensors, owned_zones = self.owned_sensors(), self.owned_zones()
        states = {uid: s for uid in sensors if (s := _read(uid, sensor_state))}
        zones = {uid: s for uid in owned_zones if (s := _read(uid, zone_state))}
        self.pipeline = self._pipeline(self.registry, states, zones)
        self.pipeline.watch_only(set(sensors))
        self._first_tick = True
        log.info(
            "worker owns partitions %s: %d sensors (%d with saved state), %d zones",
            sorted(self.owned) or "none",
            len(sensors),
            len(states),
            len(owned_zones),
        )

    # -- work --------------------------------------------------------------------------------

    def handle(self, messages: Sequence[Inbound]) -> Outcome:
        """Decode and evaluate a batch of messages (in partition order); never raises.

        Device statuses (``…/status``, which the bridges forward too) are counted and left in
        Kafka: like the embedded runner, the rules judge silence by readings, not by what a
        device says of itself.
        """
        readings = [m for m in messages if not m.topic.endswith(STATUS_SUFFIX)]
        self.statuses += len(messages) - len(readings)
        self._collect.take()
        self.pipeline.handle_batch(readings)
        return self._changed(self._collect.take())

    def tick(self, now_ms: int) -> Outcome:
        """Let time pass for the owned sensors' clock-driven rules (offline)."""
        self._collect.take()
        self.pipeline.tick(now_ms)
        out = self._changed(self._collect.take())
        if self._first_tick:
            # The first tick starts the watch of every sensor never heard from: saved, so that
            # a successor counts the silence from then, not from its own start.
            self._first_tick = False
            for uid in self.owned_sensors():
                self._mark(out, uid)
        return out

    def sensor_value(self, uid: str) -> bytes:
        """The table value of a sensor's current state."""
        return encode_state(self.pipeline.sensor_state_data(uid))

    def zone_value(self, uid: str) -> bytes:
        """The table value of a zone's current state."""
        return encode_state(self.pipeline.zone_state_data(uid))

    def _evaluated(self, readings: Sequence[Reading]) -> None:
        out = self._collect.outcome
        for sensor in {r.sensor for r in readings}:
            self._mark(out, sensor)

    def _changed(self, out: Outcome) -> Outcome:
        """Mark what the alarm events of ``out`` changed (their sensors or zones)."""
        for event in out.alarms:
            self._mark(out, event.sensor)
        return out

    def _mark(self, out: Outcome, uid: str) -> None:
        """Note that ``uid`` (a sensor or a zone) changed, with the zones a sensor is in."""
        if uid in self.sensor_partition:
            out.sensors[uid] = self.sensor_partition[uid]
            for zone in self.registry.zones_of(uid):
                out.zones[zone.uid] = self.zone_partition[zone.uid]
        elif uid in self.zone_partition:
            out.zones[uid] = self.zone_partition[uid]


def _read(uid: str, lookup: StateLookup) -> dict[str, Any] | None:
    value = lookup(uid)
    if value is None:
        return None
    try:
        return decode_state(value)
    except ValueError as exc:
        log.error("saved state of %s cannot be read (%s); it starts afresh", uid, exc)
        return None
