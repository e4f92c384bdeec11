"""The fleet engine: every sensor's rules, evaluated a batch of readings at a time.

The per-reading engine (:mod:`rules.engine`) is the reference: one sensor, one reading, each
rule's pure ``evaluate``. Called once per reading per rule, Python spends its time in the
calls, not the arithmetic. This engine gives exactly the same events and states for the same
readings in the same order, but evaluates each rule kind for all sensors of a batch at once in
a *lane* (:mod:`rules.lanes`), whose state lives in numpy columns. A rule no lane takes (one
with an on-delay, a kind without a lane) is evaluated by the reference code in the *object
lane*, so nothing is left out and a configuration never changes what fires.

Each lane works on its observations grouped by slot, in arrival order within each. A large
batch (:attr:`FleetEngine.group_from` readings or more) is sorted by sensor once, and every
lane is handed its observations grouped already (a lane numbers its slots sensor after
sensor), instead of each lane sorting the whole batch again; events are reported by the
readings' positions in the caller's order all the same.

The same engine serves both fast paths of the issue: the runner hands it each micro-batch
("whatever arrived in the last few ms"), ``earlywarn backtest`` and the batch path hand it a
whole recording. Per-sensor states come and go as the reference values
(:meth:`FleetEngine.state`, :meth:`FleetEngine.add`) for snapshots and tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rules.base import Rule
from rules.events import RuleEvent, with_flapping
from rules.lanes.accumulation import AccumulationLane
from rules.lanes.base import Batch, Lane, Replays
from rules.lanes.columns import Bools, Floats, Ints, Spare, counting
from rules.lanes.offline import OfflineLane
from rules.lanes.out_of_range import OutOfRangeLane
from rules.lanes.spike import SpikeLane
from rules.lanes.threshold import ThresholdLane
from rules.lanes.trend import ProjectionLane, RateLane

CLOCK_KINDS = frozenset({"offline"})
"""Kinds that judge whether data arrives: they hear of a reading at its arrival time."""

Evaluated = list[tuple[int, int, RuleEvent]]
"""``(reading position, sensor, event)``, in the order the reference engine gives them."""
Ticked = list[tuple[int, RuleEvent]]
"""``(sensor, event)``, ordered by sensor, then by the sensor's rule order."""


def default_lanes() -> list[Lane]:
    """One lane per kind that has one."""
    return [
        ThresholdLane(),
        OfflineLane(),
        OutOfRangeLane(),
        SpikeLane(),
        AccumulationLane(),
        RateLane(),
        ProjectionLane(),
    ]


@dataclass(slots=True)
class _Map:
    """For one lane: which slots each sensor has (CSR) and whose they are.

    :meth:`FleetEngine.add` appends to the lists; :meth:`ready` turns what was appended since
    into the arrays' new rows (grown into spare room), so that adding sensors between batches
    costs what they add, not the whole fleet again.
    """

    slot_sensor: list[int] = field(default_factory=list)
    slot_position: list[int] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    """The lane's slots, sensor after sensor (the CSR's ``flat``)."""
    sensor_start: list[int] = field(default_factory=list)
    """Per sensor, where its slots start in :attr:`slots`."""
    counts: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    offsets: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    flat: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    sensor_of: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    position_of: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    most: int = 0
    """The most slots any sensor has here."""
    ascending: bool = True
    """The slots rise along :attr:`flat` (numbered sensor after sensor, as adding does): then
    readings grouped by sensor are grouped by slot too."""
    spare: Spare = field(default_factory=Spare)

    @property
    def single(self) -> bool:
        """No sensor has more than one slot in the lane (and there is a sensor)."""
        return len(self.counts) > 0 and self.most <= 1

    def ready(self) -> None:
        """Bring the arrays up to date with the lists."""
        done, sensors = len(self.counts), len(self.sensor_start)
        if done == sensors:
            return
        starts = self.sensor_start[done:]
        counts = np.diff(np.array([*starts, len(self.slots)], dtype=np.int64))
        self.most = max(self.most, int(counts.max()))
        placed, total = len(self.flat), len(self.slots)
        taken, owned = len(self.sensor_of), len(self.slot_sensor)
        self.spare.grow(self, ("counts", "offsets"), sensors)
        self.spare.grow(self, ("flat",), total)
        self.spare.grow(self, ("sensor_of", "position_of"), owned)
        self.counts[done:] = counts
        self.offsets[done:] = starts
        self.flat[placed:] = self.slots[placed:]
        if self.ascending and total > placed:
            rising = self.flat[max(placed - 1, 0) :]
            self.ascending = bool((rising[1:] > rising[:-1]).all())
        self.sensor_of[taken:] = self.slot_sensor[taken:]
        self.position_of[taken:] = self.slot_position[taken:]


@dataclass(frozen=True, slots=True)
class _BySensor:
    """A batch's readings sorted by sensor, arrival order kept within each sensor: the order
    in which every lane groups its observations (by slot, and a sensor's slots are numbered
    together), so that the batch is sorted once for all lanes rather than once per lane.

    ``order[i]`` is the caller's position of sorted reading ``i``; sensor ``sensors[k]`` has
    the sorted readings ``starts[k] .. starts[k] + sizes[k] - 1``. ``ts``, ``value``,
    ``quality`` and ``arrival`` are the caller's columns in sorted order."""

    order: Ints
    sensors: Ints
    starts: Ints
    sizes: Ints
    ts: Ints
    value: Floats
    quality: Ints
    arrival: Ints | None

    @classmethod
    def of(
        cls, sensor: Ints, ts: Ints, value: Floats, quality: Ints, arrival: Ints | None
    ) -> _BySensor:
        n = len(sensor)
        if n < 2 or bool((sensor[1:] >= sensor[:-1]).all()):
            order = counting(n)
        else:
            # A stable sort of 16-bit keys is a radix sort in numpy, several times faster
            # than the merge sort of wider ones.
            keys = sensor.astype(np.uint16) if int(sensor.max()) < 2**16 else sensor
            order = np.argsort(keys, kind="stable").astype(np.int64, copy=False)
            ts, value, quality = ts[order], value[order], quality[order]
            arrival = None if arrival is None else arrival[order]
        # The runs from the readings per sensor (no sorted copy of the sensors needed).
        per_sensor = np.bincount(sensor).astype(np.int64, copy=False)
        sensors = np.flatnonzero(per_sensor).astype(np.int64, copy=False)
        sizes = per_sensor[sensors]
        return cls(order, sensors, _exclusive(sizes), sizes, ts, value, quality, arrival)


def _exclusive(counts: Ints) -> Ints:
    """Where each run of ``counts`` starts when laid end to end."""
    out = np.zeros(len(counts), np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=out[1:])
    return out


@dataclass(slots=True)
class _Objects:
    """The object lane: rules evaluated reading by reading by their reference code."""

    rules: list[Rule] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)
    sensor: list[int] = field(default_factory=list)
    position: list[int] = field(default_factory=list)
    per_sensor: list[list[int]] = field(default_factory=list)
    clocked: list[int] = field(default_factory=list)
    """The rules of clock kinds, which ticks visit."""


class FleetEngine:
    """Rules and states of many sensors; batches of readings in, events out."""

    group_from = 1500
    """From this many readings, a batch is sorted by sensor once and every lane gets its
    observations grouped by slot already (:class:`_BySensor`); a smaller one goes to each lane
    in arrival order, and the lane sorts its own few observations: laying the batch out
    costs more numpy calls than sorting a few hundred saves."""

    def __init__(
        self, lanes: Iterable[Lane] | None = None, clock_kinds: frozenset[str] = CLOCK_KINDS
    ) -> None:
        self.lanes: list[Lane] = list(default_lanes() if lanes is None else lanes)
        self.clock_kinds = clock_kinds
        self._maps = [_Map() for _ in self.lanes]
        self._objects = _Objects()
        self._placed: list[list[tuple[int, int]]] = []
        """Per sensor, per rule (in order): (lane index or -1 for the object lane, slot)."""
        self._rules: list[tuple[Rule, ...]] = []

    def __len__(self) -> int:
        return len(self._rules)

    def settle(self) -> None:
        """Finish the work that adding sensors defers (each lane's index of its sensors, the
        accumulation tables), so that the first batch after building a whole fleet is as
        quick as any other. Optional: evaluating does it when needed."""
        for m in self._maps:
            m.ready()
        for lane in self.lanes:
            settle = getattr(lane, "settle", None)
            if callable(settle):
                settle()

    def add(self, rules: Sequence[Rule], state: Mapping[str, Any] | None = None) -> int:
        """Take a sensor's rules and (optionally) their states; return the sensor's index."""
        sensor = len(self._rules)
        state = state or {}
        placed: list[tuple[int, int]] = []
        for m in self._maps:
            m.sensor_start.append(len(m.slots))
        self._objects.per_sensor.append([])
        for position, rule in enumerate(rules):
            current = state.get(rule.rule_id)
            current = rule.initial() if current is None else current
            placed.append(self._place(sensor, position, rule, current))
        self._placed.append(placed)
        self._rules.append(tuple(rules))
        return sensor

    def _place(self, sensor: int, position: int, rule: Rule, state: Any) -> tuple[int, int]:
        for index, lane in enumerate(self.lanes):
            if lane.kind == rule.kind and lane.accepts(rule, state):
                slot = lane.add(rule, state)
                m = self._maps[index]
                m.slot_sensor.append(sensor)
                m.slot_position.append(position)
                m.slots.append(slot)
                return index, slot
        objects = self._objects
        objects.rules.append(rule)
        objects.states.append(state)
        objects.sensor.append(sensor)
        objects.position.append(position)
        objects.per_sensor[sensor].append(len(objects.rules) - 1)
        if rule.kind in self.clock_kinds:
            objects.clocked.append(len(objects.rules) - 1)
        return -1, len(objects.rules) - 1

    def rules(self, sensor: int) -> tuple[Rule, ...]:
        """The sensor's rules, in order."""
        return self._rules[sensor]

    def state(self, sensor: int) -> dict[str, Any]:
        """The sensor's rule states as reference values (rule id → state)."""
        out: dict[str, Any] = {}
        for rule, (lane, slot) in zip(self._rules[sensor], self._placed[sensor], strict=True):
            out[rule.rule_id] = (
                self._objects.states[slot] if lane < 0 else self.lanes[lane].get(slot)
            )
        return out

    def level(self, sensor: int, rule_id: str | None = None) -> int:
        """The sensor's alarm level: of one rule, or the highest of all (0: none)."""
        best = 0
        for rule, (lane, slot) in zip(self._rules[sensor], self._placed[sensor], strict=True):
            if rule_id is not None and rule.rule_id != rule_id:
                continue
            if lane < 0:
                value = int(self._objects.states[slot].latch.level)
            else:
                value = int(self.lanes[lane].level(np.array([slot], dtype=np.int64))[0])
            best = max(best, value)
        return best

    def placement(self) -> dict[str, int]:
        """How many (sensor, rule) pairs each lane holds; ``object`` for the reference path."""
        counts: dict[str, int] = {}
        for lane, m in zip(self.lanes, self._maps, strict=True):
            if m.slot_sensor:
                counts[lane.kind] = counts.get(lane.kind, 0) + len(m.slot_sensor)
        if self._objects.rules:
            counts["object"] = len(self._objects.rules)
        return counts

    def evaluate(
        self,
        sensor: Ints,
        ts: Ints,
        value: Floats,
        quality: Ints | None = None,
        arrival: Ints | None = None,
    ) -> Evaluated:
        """Apply readings (in arrival order) of any sensors; events in reference order.

        ``arrival`` is when each reading arrived on our clock; rules of :data:`CLOCK_KINDS`
        judge that time, not the device's. Without it they use ``ts`` (a recording).
        """
        if len(sensor) == 0:
            return []
        qual = np.zeros(len(sensor), np.int64) if quality is None else quality
        tagged = self._evaluate(sensor, ts, value, qual, arrival, clock=None)
        tagged.sort(key=lambda t: (t[0], t[1]))
        return [(r, s, e) for r, _p, s, e in tagged]

    def replay(
        self,
        sensor: Ints,
        ts: Ints,
        value: Floats,
        quality: Ints | None = None,
        ticks: Ints | None = None,
    ) -> Ticked:
        """A recording at once: readings in time order, and ``ticks`` (ascending times).

        Gives what :meth:`evaluate` of the readings between two ticks, then :meth:`tick`,
        would give, tick after tick — a tick at ``t`` before the readings stamped at or after
        ``t`` — returned as ``(sensor, event)`` in that order. Only the clock kinds depend on
        the ticks, so every other lane takes the whole recording in one call; the clock kinds
        go from tick to tick.
        """
        n = len(sensor)
        qual = np.zeros(n, np.int64) if quality is None else quality
        times = np.zeros(0, np.int64) if ticks is None else ticks
        by = _BySensor.of(sensor, ts, value, qual, None) if n >= self.group_from else None
        tagged: list[tuple[int, int, int, int, int, RuleEvent]] = [
            (r, 1, 0, 0, p, e)
            for r, p, _s, e in self._evaluate(sensor, ts, value, qual, None, clock=False, by=by)
        ]
        bounds = np.searchsorted(ts, times, side="left").tolist()
        # Clock lanes that replay a recording themselves take it whole, ticks included.
        whole = frozenset(
            index
            for index, lane in enumerate(self.lanes)
            if lane.kind in self.clock_kinds and isinstance(lane, Replays)
        )
        for index in whole:
            lane = self.lanes[index]
            if not isinstance(lane, Replays) or not self._maps[index].slot_sensor:
                continue
            # Even with none of its sensors' readings, the lane has its ticks to go through.
            expanded = self._lane_batch(index, sensor, ts, value, qual, None, by)
            none = np.zeros(0, np.int64)
            reading, batch = expanded or (none, Batch(none, none, np.zeros(0), none))
            m = self._maps[index]
            for at, phase, slot, event in lane.replay(batch, times):
                position = int(m.position_of[slot])
                if phase == 0:
                    tagged.append((bounds[at], 0, at, int(m.sensor_of[slot]), position, event))
                else:
                    tagged.append((int(reading[at]), 1, 0, 0, position, event))
        rest = any(
            lane.kind in self.clock_kinds and index not in whole and self._maps[index].slot_sensor
            for index, lane in enumerate(self.lanes)
        )
        if rest or self._objects.clocked:
            # The other clock rules go from tick to tick.
            start = 0
            ends = [*bounds, n]
            for k, (tick_ms, end) in enumerate(zip([*times.tolist(), None], ends, strict=True)):
                if end > start:
                    part = slice(start, end)
                    found = self._evaluate(
                        sensor[part], ts[part], value[part], qual[part], None, clock=True,
                        skip=whole,
                    )  # fmt: skip
                    tagged.extend((r + start, 1, 0, 0, p, e) for r, p, _s, e in found)
                    start = end
                if tick_ms is not None:
                    ticked = self._tick(tick_ms, None, skip=whole)
                    tagged.extend((end, 0, k, s, p, e) for s, p, e in ticked)
        # Before reading ``r``: the ticks due (in order; by sensor, then rule, within one),
        # then the reading's own events by rule.
        tagged.sort(key=lambda t: t[:5])
        return [(int(sensor[r]) if phase else s, e) for r, phase, _k, s, _p, e in tagged]

    def _lane_batch(
        self,
        index: int,
        sensor: Ints,
        ts: Ints,
        value: Floats,
        quality: Ints,
        arrival: Ints | None,
        by: _BySensor | None = None,
    ) -> tuple[Ints, Batch] | None:
        """The readings of lane ``index``'s sensors as they come, one observation per (reading,
        slot): for a batch below :attr:`group_from` readings, and for a lane that needs them in
        time order (:class:`Replays`). Returns each observation's reading with the batch;
        ``None`` when the lane has none of them. ``by``, the same readings sorted by sensor,
        is handed on as the batch's grouping where it groups the observations by slot."""
        m = self._maps[index]
        m.ready()
        n = len(sensor)
        counts = m.counts[sensor]
        times = (
            arrival if arrival is not None and self.lanes[index].kind in self.clock_kinds else ts
        )
        if m.single and counts.all():
            # Every reading has exactly one slot here: no expansion, no copies.
            grouping = by.order if by is not None and m.ascending else None
            return np.arange(n, dtype=np.int64), Batch(
                m.flat[m.offsets[sensor]], times, value, quality, grouping
            )
        total = int(counts.sum())
        if total == 0:
            return None
        reading = np.repeat(np.arange(n, dtype=np.int64), counts)
        starts = np.repeat(m.offsets[sensor] - (np.cumsum(counts) - counts), counts)
        slots = m.flat[starts + np.arange(total, dtype=np.int64)]
        return reading, Batch(slots, times[reading], value[reading], quality[reading])

    def _grouped_batch(self, index: int, by: _BySensor) -> tuple[Ints, Batch] | None:
        """The readings of lane ``index``'s sensors, one observation per (reading, slot),
        grouped by slot: each sensor's readings (in arrival order) once per slot it has here,
        slot after slot. Returns each observation's reading (the caller's position) with the
        batch; ``None`` when the lane has none of them.

        Slots are numbered sensor after sensor, so the observations come sorted by slot and
        the lane's :meth:`Segments.of <rules.lanes.columns.Segments.of>` has nothing to sort
        (were they not, it would sort them: the grouping only saves work)."""
        m = self._maps[index]
        m.ready()
        times = (
            by.arrival
            if by.arrival is not None and self.lanes[index].kind in self.clock_kinds
            else by.ts
        )
        counts = m.counts[by.sensors]  # the lane's slots of each sensor with readings
        offsets = m.offsets[by.sensors]
        if m.single and counts.all():
            # Every reading has exactly one slot here: the sorted columns as they are.
            slots = np.repeat(m.flat[offsets], by.sizes)
            return by.order, Batch(slots, times, by.value, by.quality)
        runs = int(counts.sum())
        if runs == 0:
            return None
        # A run per (sensor, slot): the sensor's readings, for each of its slots in turn.
        run_slot = m.flat[np.repeat(offsets - _exclusive(counts), counts) + counting(runs)]
        sizes = np.repeat(by.sizes, counts)
        at = np.repeat(np.repeat(by.starts, counts) - _exclusive(sizes), sizes)
        at += counting(len(at))
        slots = np.repeat(run_slot, sizes)
        return by.order[at], Batch(slots, times[at], by.value[at], by.quality[at])

    def _evaluate(
        self,
        sensor: Ints,
        ts: Ints,
        value: Floats,
        quality: Ints,
        arrival: Ints | None,
        *,
        clock: bool | None,
        skip: frozenset[int] = frozenset(),
        by: _BySensor | None = None,
    ) -> list[tuple[int, int, int, RuleEvent]]:
        """Events as (reading, rule position, sensor, event), unsorted; ``clock`` True or
        False limits the work to the clock kinds or to the others; lanes in ``skip`` are
        left out. ``by``: the readings sorted by sensor, if the caller has them; from
        :attr:`group_from` readings on, they are sorted here if not."""
        tagged: list[tuple[int, int, int, RuleEvent]] = []
        grouped = by is not None or len(sensor) >= self.group_from
        for index, lane in enumerate(self.lanes):
            m = self._maps[index]
            is_clock = lane.kind in self.clock_kinds
            if not m.slot_sensor or index in skip or (clock is not None and clock != is_clock):
                continue
            if not grouped:
                expanded = self._lane_batch(index, sensor, ts, value, quality, arrival)
            else:
                if by is None:
                    by = _BySensor.of(sensor, ts, value, quality, arrival)
                expanded = self._grouped_batch(index, by)
            if expanded is None:
                continue
            reading, batch = expanded
            for at, event in lane.evaluate(batch):
                slot = int(batch.slot[at])
                r = int(reading[at])
                tagged.append((r, int(m.position_of[slot]), int(sensor[r]), event))
        if self._objects.rules:
            tagged.extend(self._evaluate_objects(sensor, ts, value, quality, arrival, clock))
        return tagged

    def _evaluate_objects(
        self,
        sensor: Ints,
        ts: Ints,
        value: Floats,
        quality: Ints,
        arrival: Ints | None,
        clock: bool | None,
    ) -> list[tuple[int, int, int, RuleEvent]]:
        objects = self._objects
        out: list[tuple[int, int, int, RuleEvent]] = []
        kinds = self.clock_kinds
        arrivals = None if arrival is None else arrival.tolist()
        rows = zip(sensor.tolist(), ts.tolist(), value.tolist(), quality.tolist(), strict=True)
        for r, (s, t, v, q) in enumerate(rows):
            for index in objects.per_sensor[s]:
                rule = objects.rules[index]
                is_clock = rule.kind in kinds
                if clock is not None and clock != is_clock:
                    continue
                at = arrivals[r] if arrivals is not None and is_clock else t
                new, event = rule.evaluate(objects.states[index], at, v, q)
                objects.states[index] = new
                if event is not None:
                    flagged = with_flapping(event, new.latch.flapping)
                    out.append((r, objects.position[index], s, flagged))
        return out

    def tick(self, now_ms: int, sensors: Bools | None = None) -> Ticked:
        """Let time pass for every sensor (or those where ``sensors``): offline detection.

        Only rules of :data:`CLOCK_KINDS` act on ticks; the others are not visited.
        """
        tagged = self._tick(now_ms, sensors)
        tagged.sort(key=lambda t: (t[0], t[1]))
        return [(s, e) for s, _p, e in tagged]

    def _tick(
        self, now_ms: int, sensors: Bools | None, skip: frozenset[int] = frozenset()
    ) -> list[tuple[int, int, RuleEvent]]:
        tagged: list[tuple[int, int, RuleEvent]] = []
        for index, lane in enumerate(self.lanes):
            m = self._maps[index]
            if lane.kind not in self.clock_kinds or not m.slot_sensor or index in skip:
                continue
            m.ready()
            mask = None if sensors is None else sensors[m.sensor_of]
            for slot, event in lane.tick(now_ms, mask):
                tagged.append((int(m.sensor_of[slot]), int(m.position_of[slot]), event))
        objects = self._objects
        for index in objects.clocked:
            rule, s = objects.rules[index], objects.sensor[index]
            if sensors is not None and not sensors[s]:
                continue
            new, moved = rule.tick(objects.states[index], now_ms)
            objects.states[index] = new
            if moved is not None:
                tagged.append(
                    (s, objects.position[index], with_flapping(moved, new.latch.flapping))
                )
        return tagged
