"""Offline (deadman) rules as columns: the whole fleet's silence checked in one tick.

The reference is :mod:`rules.offline`. Offline detection runs on the clock: every tick asks
each watched sensor how long it has been silent, so with thousands of sensors the tick, not
the readings, is the cost — here it is a few array operations over all slots, with a Python
loop only over the (rare) slots whose alarm changes.

Takes offline rules without off-delay. Their latch is then a one-level latch with no memory
beyond its level: after a tick the level is the rule's level if the sensor is silent, else 0,
and after any reading that is not stale it is 0 (a reading is a sign of life and nothing
delays the clear). So every step's level is known up front, and :meth:`LatchColumns.advance`
only has to derive the changes, starts and flapping flags from it.

As in the reference, ``latch.last_ts_ms`` is the time of the last *reading* and
``last_tick_ms`` that of the last tick: ticks never make a reading look stale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.base import Rule
from rules.events import RuleEvent, with_flapping
from rules.lanes.base import Batch, Emitted
from rules.lanes.columns import (
    NONE,
    Bools,
    Ints,
    LatchColumns,
    Moves,
    Segments,
    col,
    newer,
    opt,
)
from rules.latch import Transition

# The reference's event builder, so that the lane's events cannot drift from the reference's
# (label, set-point, window) when the offline event format changes.
from rules.offline import OfflineRule, OfflineState, _event


def fits(rule: OfflineRule, state: OfflineState) -> bool:
    """No off-delay (so the level after each step is known up front), and a latch with
    nothing pending whose start agrees with its level (``None`` when not alarming, as every
    state the reference produces has it; the columns keep no start for level 0)."""
    latch = state.latch
    return (
        rule.off_delay_ms == 0
        and LatchColumns.fits(latch)
        and (latch.level != 0 or latch.start_ms is None)
    )


class OfflineLane:
    """Every column-friendly offline rule of a fleet."""

    kind = "offline"

    def __init__(self) -> None:
        self.rules: list[OfflineRule] = []
        self.latch = LatchColumns()
        self.watch_since_ms = np.zeros(0, np.int64)
        self.last_tick_ms = np.zeros(0, np.int64)
        self.limit_ms = np.zeros(0, np.int64)
        self.alarm = np.zeros(0, np.int64)
        """The level each slot's rule raises."""

    def accepts(self, rule: Rule, state: Any) -> bool:
        """Offline rules and states that :func:`fits` allows."""
        return (
            isinstance(rule, OfflineRule) and isinstance(state, OfflineState) and fits(rule, state)
        )

    def add(self, rule: Rule, state: Any) -> int:
        """Take the rule and its state; return the slot. ``TypeError`` for another kind,
        ``ValueError`` for an offline rule or state the lane cannot hold."""
        if not isinstance(rule, OfflineRule) or not isinstance(state, OfflineState):
            msg = f"the offline lane cannot take a {rule.kind} rule with {type(state).__name__}"
            raise TypeError(msg)
        if not fits(rule, state):
            msg = f"rule {rule.rule_id!r}: an off-delay or a latch mid-delay needs the object lane"
            raise ValueError(msg)
        slot = self.latch.grow(rule.delays)
        self.latch.put(slot, state.latch)
        self.rules.append(rule)
        self.watch_since_ms = np.append(self.watch_since_ms, col(state.watch_since_ms))
        self.last_tick_ms = np.append(self.last_tick_ms, col(state.last_tick_ms))
        self.limit_ms = np.append(self.limit_ms, rule.limit_ms)
        self.alarm = np.append(self.alarm, int(rule.level))
        return slot

    def get(self, slot: int) -> OfflineState:
        """The slot's state as the reference value."""
        return OfflineState(
            latch=self.latch.get(slot),
            watch_since_ms=opt(int(self.watch_since_ms[slot])),
            last_tick_ms=opt(int(self.last_tick_ms[slot])),
        )

    def level(self, slots: Ints) -> Ints:
        """Current levels."""
        return self.latch.level[slots]

    def evaluate(self, batch: Batch) -> Emitted:
        """As :func:`rules.offline.evaluate` reading by reading: a reading newer than the slot's
        last reading clears the alarm; value and quality do not matter (any reading is alive).

        The latch steps at ``max(reading, last tick)`` so a clear is never dated before the
        tick that raised it; the clear's value is the silence the reading ended, counted from
        the reading before it (within the batch too) or else from the start of the watch.
        """
        seg = Segments.of(batch.slot)
        ts = batch.ts[seg.order]
        keep = newer(seg, ts, np.ones(len(ts), np.bool_), self.latch.last_ts_ms)
        if not keep.any():
            return []
        sub = seg.take(keep)
        ts = batch.ts[sub.order]
        ticked = self.last_tick_ms[sub.slot]
        at = np.maximum(ts, ticked)  # NONE (no tick yet) is below every time
        heard = self.latch.last_ts_ms
        since = sub.previous(ts, np.where(heard == NONE, self.watch_since_ms, heard))
        moves = self.latch.advance(sub, at, np.zeros(len(ts), np.int64))
        self.latch.last_ts_ms[sub.seg_slot] = ts[sub.last]
        # Only a slot's first kept reading can change its level (every step ends at 0).
        where = moves.at
        ended = ts[where]
        since = since[where]
        silence = np.maximum(ended - np.where(since == NONE, ended, since), 0)
        events = self._events(moves, sub.slot[where], silence, at[where])
        emitted = list(zip(sub.order[where].tolist(), events, strict=True))
        emitted.sort(key=lambda e: e[0])
        return emitted

    def tick(self, now_ms: int, slots: Bools | None = None) -> Emitted:
        """As :func:`rules.offline.tick` for every slot (or those where ``slots``): raise once
        ``now − last reading (or watch start) ≥ limit``, clear if heard from since.

        A slot whose last tick is not before ``now_ms`` changes nothing; the first tick starts
        the watch of a sensor never heard from. Each ticked slot is one latch evaluation, and
        ``latch.last_ts_ms`` stays the last reading's time.
        """
        due = (self.last_tick_ms == NONE) | (self.last_tick_ms < now_ms)
        if slots is not None:
            due &= slots
        ticked = np.flatnonzero(due).astype(np.int64)
        if len(ticked) == 0:
            return []
        watch = self.watch_since_ms[ticked]
        watch = np.where(watch == NONE, now_ms, watch)
        heard = self.latch.last_ts_ms[ticked]
        silence = now_ms - np.where(heard == NONE, watch, heard)
        level = np.where(silence >= self.limit_ms[ticked], self.alarm[ticked], 0)
        # One observation per ticked slot, already in slot order: the segments are trivial.
        one = np.arange(len(ticked), dtype=np.int64)
        seg = Segments(one, ticked, one, one, ticked, one, np.ones(len(ticked), np.int64))
        moves = self.latch.advance(seg, np.full(len(ticked), now_ms, np.int64), level)
        self.watch_since_ms[ticked] = watch
        self.last_tick_ms[ticked] = now_ms
        where = moves.at
        events = self._events(
            moves,
            ticked[where],
            np.maximum(silence[where], 0),
            np.full(len(where), now_ms, np.int64),
        )
        return list(zip(ticked[where].tolist(), events, strict=True))

    def _events(self, moves: Moves, slot: Ints, silence_ms: Ints, ts_ms: Ints) -> list[RuleEvent]:
        """The reference events of ``moves`` (one per change, with the slot, silence and time
        of each), carrying the latch's flapping flag after the change."""
        rows = zip(
            moves.changes(),
            moves.old.tolist(),
            moves.new.tolist(),
            moves.start_ms.tolist(),
            moves.flapping.tolist(),
            slot.tolist(),
            silence_ms.tolist(),
            ts_ms.tolist(),
            strict=True,
        )
        events: list[RuleEvent] = []
        for change, old, new, start, flapping, s, silence, ts in rows:
            moved = Transition(change, old, new, start, flapping)
            event = _event(self.rules[s], moved, silence, ts)
            events.append(with_flapping(event, flapping))
        return events
