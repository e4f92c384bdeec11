"""Threshold rules as columns: each level a hysteresis latch, all slots in one pass.

Takes threshold rules without on-delay, off-delay or consecutive count whose clear set-points
are in level order (as every preset's are); the engine's object lane evaluates the others with
:mod:`rules.threshold`. For a ``low`` rule values and set-points are negated, so one comparison
(``>=``) serves both directions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from rules.base import Rule
from rules.events import with_flapping
from rules.lanes.base import Batch, Emitted
from rules.lanes.columns import (
    Bools,
    Floats,
    Ints,
    LatchColumns,
    Segments,
    Spare,
    forward_fill,
    latch_marks,
    newer,
)
from rules.latch import LatchState, Transition
from rules.threshold import Direction, ThresholdRule

WIDTH = 4
"""At most one set-point per level: blue, yellow, orange, red."""


def monotone(rule: ThresholdRule) -> bool:
    """No delays, and clear set-points ordered like the set-points (so each level can latch on
    its own and the latched count is the level)."""
    clears = [sp.clear for sp in rule.setpoints]
    return (
        rule.on_delay_ms == 0
        and rule.off_delay_ms == 0
        and rule.consecutive == 1
        and clears == sorted(clears, reverse=rule.direction is Direction.LOW)
    )


class ThresholdLane:
    """Every column-friendly threshold rule of a fleet."""

    kind = "threshold"

    _COLUMNS = ("sign", "set", "clear", "levels", "by_count", "width")

    def __init__(self) -> None:
        self.rules: list[ThresholdRule] = []
        self.latch = LatchColumns()
        self._spare = Spare()
        self.sign = np.zeros(0, np.float64)
        self.set = np.zeros((0, WIDTH), np.float64)
        self.clear = np.zeros((0, WIDTH), np.float64)
        self.levels = np.zeros((0, WIDTH), np.int64)
        self.by_count = np.zeros((0, WIDTH + 1), np.int64)
        self.width = np.zeros(0, np.int64)
        """How many levels each slot's rule has."""

    def accepts(self, rule: Rule, state: Any) -> bool:
        """Threshold rules that :func:`monotone` allows, with a latch that fits in columns."""
        return (
            isinstance(rule, ThresholdRule)
            and monotone(rule)
            and isinstance(state, LatchState)
            and LatchColumns.fits(state)
        )

    def add(self, rule: Rule, state: Any) -> int:
        """Take the rule and its latch; return the slot."""
        if not isinstance(rule, ThresholdRule):
            msg = f"the threshold lane cannot take a {rule.kind} rule"
            raise TypeError(msg)
        slot = self.latch.grow(rule.delays)
        self.latch.put(slot, state)
        self.rules.append(rule)
        sign = 1.0 if rule.direction is Direction.HIGH else -1.0
        sets, clears, levels = [np.inf] * WIDTH, [np.inf] * WIDTH, [0] * WIDTH
        for j, sp in enumerate(rule.setpoints):
            sets[j], clears[j], levels[j] = sign * sp.set, sign * sp.clear, int(sp.level)
        self._spare.grow(self, self._COLUMNS, slot + 1)
        self.sign[slot] = sign
        self.set[slot] = sets
        self.clear[slot] = clears
        self.levels[slot] = levels
        self.by_count[slot] = [0, *levels]
        self.width[slot] = len(rule.setpoints)
        return slot

    def get(self, slot: int) -> LatchState:
        """The slot's latch (a threshold rule's whole state)."""
        return self.latch.get(slot)

    def level(self, slots: Ints) -> Ints:
        """Current levels."""
        return self.latch.level[slots]

    def evaluate(self, batch: Batch) -> Emitted:
        """As :func:`rules.threshold.evaluate` reading by reading: NaN and stale readings
        change nothing."""
        seg = Segments.of(batch.slot)
        ts, values = seg.gather(batch.ts), seg.gather(batch.value)
        keep = newer(seg, ts, np.isfinite(values), self.latch.last_ts_ms)
        if not keep.any():
            return []
        sub = seg
        if not keep.all():
            sub, ts, values = seg.take(keep), ts[keep], values[keep]
        count = self._latched(sub, sub.expand(self.sign[sub.seg_slot]) * values)
        level = self.by_count[sub.slot, count]
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
            event = rule.band_event(moved, float(values[at]), int(ts[at]), "threshold")
            emitted.append((int(sub.order[at]), with_flapping(event, moved.flapping)))
        emitted.sort(key=lambda e: e[0])
        return emitted

    def _latched(self, sub: Segments, signed: Floats) -> npt.NDArray[np.int8]:
        """How many levels are latched after each observation: each level a latch of its own
        (set at its set-point, reset past its clear set-point), one level at a time and only
        over the slots that have it (most have two, a water level four)."""
        count = np.zeros(len(signed), dtype=np.int8)
        width = self.width[sub.seg_slot]
        for j in range(WIDTH):
            has = width > j
            if not has.any():
                break
            part, pos = (sub, None) if has.all() else sub.segments(has)
            value = signed if pos is None else signed[pos]
            reached = value >= part.expand(self.set[part.seg_slot, j])
            held = value >= part.expand(self.clear[part.seg_slot, j])
            marks = latch_marks(reached, held)
            latched = forward_fill(part, marks, self.latch.level >= self.levels[:, j])
            if pos is None:
                count += latched
            else:
                count[pos] += latched
        return count

    def tick(self, now_ms: int, slots: Bools | None = None) -> Emitted:
        """Thresholds act on readings only."""
        return []
