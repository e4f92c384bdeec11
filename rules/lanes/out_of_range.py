"""Out-of-range rules as columns: one fault test per observation, one latch level per slot.

Takes out-of-range rules without on-delay, off-delay or consecutive count (a one-level latch
that simply follows the fault test) whose latch fits in columns; the engine's object lane
evaluates the others with :mod:`rules.out_of_range`. The fault test is
:meth:`rules.out_of_range.OutOfRangeRule.fault` for a whole batch: a listed quality code, NaN,
a listed sentinel value, or a value outside ``[low, high]`` (±infinity falls outside). Only
*whether* a reading is a fault is vectorised; *why* (the event's direction, set-point and
label) is asked of the rule itself for the few readings that move the latch, so the events are
the reference's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.base import Rule
from rules.events import with_flapping
from rules.lanes.base import Batch, Emitted
from rules.lanes.columns import Bools, Floats, Ints, LatchColumns, Segments, Spare, newer
from rules.latch import LatchState, Transition
from rules.out_of_range import OutOfRangeRule, _event


def undelayed(rule: OutOfRangeRule) -> bool:
    """No on-delay, off-delay or consecutive count: the level is the fault test's verdict."""
    return rule.on_delay_ms == 0 and rule.off_delay_ms == 0 and rule.consecutive == 1


def _widen(table: Floats | Ints, width: int, pad: float | int) -> Any:
    """``table`` with at least ``width`` columns, new ones filled with ``pad`` (a new array,
    which the next :meth:`~rules.lanes.columns.Spare.grow` moves into a new buffer)."""
    if table.shape[1] >= width:
        return table
    extra = np.full((table.shape[0], width - table.shape[1]), pad, dtype=table.dtype)
    return np.hstack((table, extra))


class OutOfRangeLane:
    """Every column-friendly out-of-range rule of a fleet."""

    kind = "out_of_range"

    _COLUMNS = ("low", "high", "levels", "values", "codes", "ncodes")

    def __init__(self) -> None:
        self.rules: list[OutOfRangeRule] = []
        self.latch = LatchColumns()
        self._spare = Spare()
        self.low = np.zeros(0, np.float64)
        self.high = np.zeros(0, np.float64)
        self.levels = np.zeros(0, np.int64)
        # Sentinel values padded with NaN, which equals nothing; quality codes padded with
        # anything, masked by their count (every int64 is a possible code).
        self.values: Floats = np.zeros((0, 0), np.float64)
        self.codes: Ints = np.zeros((0, 0), np.int64)
        self.ncodes = np.zeros(0, np.int64)

    def accepts(self, rule: Rule, state: Any) -> bool:
        """Out-of-range rules without delays, with a latch that fits in columns and whose start
        agrees with its level (``None`` when not alarming, as every state the reference
        produces has it: the columns keep no start for level 0, the reference would keep it)."""
        return (
            isinstance(rule, OutOfRangeRule)
            and undelayed(rule)
            and isinstance(state, LatchState)
            and LatchColumns.fits(state)
            and (state.level != 0 or state.start_ms is None)
        )

    def add(self, rule: Rule, state: Any) -> int:
        """Take the rule and its latch; return the slot."""
        if not isinstance(rule, OutOfRangeRule):
            msg = f"the out-of-range lane cannot take a {rule.kind} rule"
            raise TypeError(msg)
        if not self.accepts(rule, state):
            msg = (
                f"rule {rule.rule_id!r}: this out-of-range rule and state cannot be held in columns"
            )
            raise ValueError(msg)
        slot = self.latch.grow(rule.delays)
        self.latch.put(slot, state)
        self.rules.append(rule)
        values, codes = rule.fault_values, rule.fault_qualities
        # Widening copies every row, but only when a rule lists more values or codes than
        # any before it.
        self.values = _widen(self.values, len(values), np.nan)
        self.codes = _widen(self.codes, len(codes), 0)
        self._spare.grow(self, self._COLUMNS, slot + 1)
        self.low[slot] = rule.low
        self.high[slot] = rule.high
        self.levels[slot] = int(rule.level)
        self.values[slot] = np.nan
        self.values[slot, : len(values)] = values
        self.codes[slot] = 0
        self.codes[slot, : len(codes)] = codes
        self.ncodes[slot] = len(codes)
        return slot

    def get(self, slot: int) -> LatchState:
        """The slot's latch (an out-of-range rule's whole state)."""
        return self.latch.get(slot)

    def level(self, slots: Ints) -> Ints:
        """Current levels."""
        return self.latch.level[slots]

    def faults(self, seg: Segments, values: Floats, quality: Ints) -> Bools:
        """Whether each observation of ``seg`` is invalid for its slot's rule —
        ``rule.fault(...) is not None`` for every observation at once (the order of the
        reference's checks only decides the reason, not the verdict). A slot's limits are
        spread over its segment (:meth:`Segments.expand`), one listed value or code at a
        time."""
        slots = seg.seg_slot
        fault = np.isnan(values)
        fault |= values < seg.expand(self.low[slots])
        fault |= values > seg.expand(self.high[slots])
        for j in range(self.values.shape[1]):
            fault |= values == seg.expand(self.values[slots, j])  # NaN padding: never equal
        for j in range(self.codes.shape[1]):
            listed = self.ncodes[slots] > j
            fault |= (quality == seg.expand(self.codes[slots, j])) & seg.expand(listed)
        return fault

    def evaluate(self, batch: Batch) -> Emitted:
        """As :func:`rules.out_of_range.evaluate` reading by reading: stale readings change
        nothing; NaN and infinity are evaluated (they are faults)."""
        seg = Segments.of(batch.slot)
        ts = seg.gather(batch.ts)
        keep = newer(seg, ts, np.ones(len(seg), np.bool_), self.latch.last_ts_ms)
        if not keep.any():
            return []
        sub = seg
        values, quality = seg.gather(batch.value), seg.gather(batch.quality)
        if not keep.all():
            sub, ts, values, quality = seg.take(keep), ts[keep], values[keep], quality[keep]
        fault = self.faults(sub, values, quality)
        level = sub.expand(self.levels[sub.seg_slot])
        level *= fault
        moves = self.latch.advance(sub, ts, level)
        self.latch.last_ts_ms[sub.seg_slot] = ts[sub.last]
        emitted: Emitted = []
        changes = moves.changes()
        for i, at in enumerate(moves.at.tolist()):
            rule = self.rules[int(sub.slot[at])]
            moved = Transition(
                changes[i],
                int(moves.old[i]),
                int(moves.new[i]),
                int(moves.start_ms[i]),
                bool(moves.flapping[i]),
            )
            value = float(values[at])
            why = rule.fault(value, int(quality[at]))
            event = _event(rule, moved, value, why, int(ts[at]))
            emitted.append((int(sub.order[at]), with_flapping(event, moved.flapping)))
        emitted.sort(key=lambda e: e[0])
        return emitted

    def tick(self, now_ms: int, slots: Bools | None = None) -> Emitted:
        """Out-of-range rules act on readings only."""
        return []
