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

A whole recording with its ticks goes through :meth:`OfflineLane.replay` at once, as if it
were fed tick by tick (see :data:`Replayed` for the events it returns). Most sensors report
on time all along: no tick finds them silent, so their latch only counts evaluations, and the
replay settles them in closed form; only the others have their readings and ticks merged and
stepped through the latch.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    Spare,
    col,
    fill_values,
    newer,
    opt,
)
from rules.latch import Transition

# The reference's event builder, so that the lane's events cannot drift from the reference's
# (label, set-point, window) when the offline event format changes.
from rules.offline import OfflineRule, OfflineState, _event

Replayed = list[tuple[int, int, int, RuleEvent]]
"""``(index, phase, slot, event)`` from :meth:`OfflineLane.replay`, in the order of the
tick-by-tick sequence it stands for. Phase 0 is a tick's event: ``index`` is the tick's
index (the first of equal ticks; the others change nothing); phase 1 is an observation's:
``index`` is its position in the batch. Ordering key: a tick comes before the observations
stamped at or after it, so tick ``k`` sorts at ``searchsorted(ts, ticks[k], "left")``, the
position of the first observation at or after it; there ticks come in index order, the
events of one tick by slot, and then the observation's own event."""


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

    merge_rows = 4000
    """:meth:`replay` merges the readings and ticks of the slots it cannot settle in closed
    form (one row each) while they are at most this many rows per tick; beyond that, it
    takes them tick by tick, which costs per tick rather than per row."""

    _COLUMNS = ("watch_since_ms", "last_tick_ms", "limit_ms", "alarm")

    def __init__(self) -> None:
        self.rules: list[OfflineRule] = []
        self.latch = LatchColumns()
        self._spare = Spare()
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
        self._spare.grow(self, self._COLUMNS, slot + 1)
        self.watch_since_ms[slot] = col(state.watch_since_ms)
        self.last_tick_ms[slot] = col(state.last_tick_ms)
        self.limit_ms[slot] = rule.limit_ms
        self.alarm[slot] = int(rule.level)
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
        ts = seg.gather(batch.ts)
        keep = newer(seg, ts, np.ones(len(ts), np.bool_), self.latch.last_ts_ms)
        if not keep.any():
            return []
        sub = seg
        if not keep.all():
            sub, ts = seg.take(keep), ts[keep]
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
        seg = Segments(one, ticked, one, one, ticked)
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

    def replay(self, batch: Batch, ticks: Ints, slots: Bools | None = None) -> Replayed:
        """A recording and its ticks at once: exactly what :meth:`evaluate` of the
        observations stamped before ``ticks[0]``, :meth:`tick` at ``ticks[0]`` (for the slots
        where ``slots``), the observations before ``ticks[1]``, … and finally of the
        observations left over would do, events and states alike.

        The batch must be in time order (``ts`` non-decreasing, duplicates allowed) and the
        ticks ascending (``ValueError`` otherwise); a tick at ``t`` comes before the
        observations stamped ``t`` or later. Events as :data:`Replayed`, in that order.

        Most slots are quiet: at level 0, and no tick finds them silent, so every step
        leaves them at level 0 and is only an evaluation; they are settled in closed form
        (:func:`_settle`: the count, and any recent changes leaving the flapping window).
        Silence grows from one reading to the next, so only the last tick before each reading
        (and the last tick of all) can find a slot silent, and none can unless the readings
        are at least the limit apart. The other slots have their counted readings and ticks
        merged, one row each, and stepped through the latch at once — or, when they are so
        many that rows cost more than calls (more than :attr:`merge_rows` rows per tick), go
        through :meth:`evaluate` and :meth:`tick` as the definition says.
        """
        ticks = np.asarray(ticks, dtype=np.int64)
        ts = batch.ts
        n, count = len(batch), len(self.rules)
        if len(ticks) > 1 and bool((ticks[1:] < ticks[:-1]).any()):
            msg = "replay needs ascending ticks"
            raise ValueError(msg)
        if n > 1 and bool((ts[1:] < ts[:-1]).any()):
            msg = "replay needs the observations in time order"
            raise ValueError(msg)
        initial = _Initial.of(self, ticks, slots)
        obs = _Grouped.of(batch, count)
        # Readings newer than the slot's last one (the batch's first of equal times): those
        # that count. Slots whose last reading is not before their first here need a look.
        n_new = obs.n_new.copy()
        overlap = np.flatnonzero(obs.seen & (obs.first_ts <= initial.heard))
        if len(overlap):
            rows, row_slot = _rows(obs.starts, obs.sizes, overlap)
            counted = (obs.steps[rows] != 0) & (obs.ts[rows] > initial.heard[row_slot])
            n_new[overlap] = np.bincount(row_slot[counted], minlength=count)[overlap]
        latch = self.latch
        exact = (latch.level != 0) | self._found_silent(obs, initial)
        steps = n_new + initial.n_ticks
        _settle(latch, np.flatnonzero(~exact & (steps > 0)), steps)
        which = np.flatnonzero(exact).astype(np.int64)
        size = int(obs.sizes[which].sum() + initial.n_ticks[which].sum())
        if size <= self.merge_rows * (len(initial.times) + 1):
            emitted = self._replay_exact(which, batch, obs, initial)
        else:
            emitted = self._replay_in_turn(which, batch, ticks, slots)
        latch.last_ts_ms = np.maximum(initial.heard, obs.last_ts)
        moved = initial.n_ticks > 0
        self.watch_since_ms = np.where(moved, initial.watch, initial.watch_since)
        last = initial.times[-1] if len(initial.times) else NONE
        self.last_tick_ms = np.where(moved, last, initial.ticked_at)
        return emitted

    def _found_silent(self, obs: _Grouped, initial: _Initial) -> Bools:
        """The slots that some tick of the replay may find silent (where it is not sure, it
        says yes: those slots take the exact path)."""
        ticks, limit = initial.ticks, self.limit_ms
        count, size = len(limit), len(ticks)
        found = np.zeros(count, np.bool_)
        if size == 0:
            return found
        due = initial.n_ticks > 0
        heard0, ticked0 = initial.heard, initial.ticked_at
        # Before the first reading (or without any): the last tick before it.
        opening = np.full(count, size, np.int64)
        opening[obs.seen] = np.searchsorted(ticks, obs.first_ts[obs.seen], side="right")
        tick = ticks[np.maximum(opening - 1, 0)]
        since = np.where(heard0 != NONE, heard0, initial.watch)
        found |= (opening > 0) & (tick > ticked0) & (tick - since >= limit)
        # After the last reading: the last tick.
        closing = np.searchsorted(ticks, obs.last_ts, side="right")
        since = np.maximum(obs.last_ts, heard0)
        found |= obs.seen & (closing < size) & (ticks[-1] > ticked0) & (ticks[-1] - since >= limit)
        # Between two readings at least the limit apart: the last tick before the second.
        far = np.flatnonzero(due & obs.seen & (obs.widest >= limit))
        if len(far):
            rows, row_slot = _rows(obs.starts, obs.sizes, far)
            times = obs.ts[rows]
            prev = np.empty_like(times)
            prev[1:] = times[:-1]
            prev[0] = NONE
            prev[1:][row_slot[1:] != row_slot[:-1]] = NONE
            at = np.searchsorted(ticks, times, side="right")
            tick = ticks[np.maximum(at - 1, 0)]
            since = np.maximum(prev, heard0[row_slot])
            hit = (prev != NONE) & (at > 0) & (tick > prev) & (tick > ticked0[row_slot])
            hit &= tick - since >= limit[row_slot]
            found[row_slot[hit]] = True
        return found & due

    def _replay_in_turn(
        self, exact: Ints, batch: Batch, ticks: Ints, slots: Bools | None
    ) -> Replayed:
        """The ``exact`` slots' sequence as it is defined: their observations before each tick
        evaluated, then the tick, tick after tick."""
        pick = np.zeros(len(self.rules), np.bool_)
        pick[exact] = True
        positions = np.flatnonzero(pick[batch.slot]).astype(np.int64)
        mask = pick if slots is None else pick & slots
        ends = np.searchsorted(batch.ts[positions], ticks, side="left").tolist()
        emitted: Replayed = []
        start = 0
        for k, (now, end) in enumerate(
            zip([*ticks.tolist(), None], [*ends, len(positions)], strict=True)
        ):
            if end > start:
                part = positions[start:end]
                sub = Batch(
                    batch.slot[part], batch.ts[part], batch.value[part], batch.quality[part]
                )
                found = self.evaluate(sub)
                emitted += [(int(part[i]), 1, int(sub.slot[i]), event) for i, event in found]
                start = end
            if now is not None:
                emitted += [(k, 0, slot, event) for slot, event in self.tick(now, mask)]
        return emitted

    def _replay_exact(
        self, exact: Ints, batch: Batch, obs: _Grouped, initial: _Initial
    ) -> Replayed:
        """Step the ``exact`` slots through their merged readings and ticks, one latch
        evaluation per reading that counts and per tick after the slot's last one."""
        if len(exact) == 0:
            return []
        heard0, ticked0, watch0 = initial.heard, initial.ticked_at, initial.watch_since
        ticks, times = initial.ticks, initial.times
        # The slots' readings that count, at their place in the sequence: observation i comes
        # after the ticks not later than it; tick k after the observations before it.
        rows, row_slot = _rows(obs.starts, obs.sizes, exact)
        keep = (obs.steps[rows] != 0) & (obs.ts[rows] > heard0[row_slot])
        rows, row_slot = rows[keep], row_slot[keep]
        position = obs.order[rows]
        read_ts = obs.ts[rows]
        read_place = position + np.searchsorted(ticks, read_ts, side="right")
        first_k = initial.first_k
        tick_place = np.searchsorted(batch.ts, times, side="left") + first_k
        picks, pick_slot = _rows(initial.skip, initial.n_ticks, exact)
        slot = np.concatenate((row_slot, pick_slot))
        place = np.concatenate((read_place, tick_place[picks]))
        index = np.concatenate((position, first_k[picks]))
        time = np.concatenate((read_ts, times[picks]))
        is_tick = np.concatenate((np.zeros(len(rows), np.bool_), np.ones(len(picks), np.bool_)))
        span = len(batch) + len(ticks) + 1  # places are below it
        if len(self.rules) < 2**62 // span:
            merged = np.argsort(slot * span + place)
        else:
            merged = np.lexsort((place, slot))
        slot, place, index = slot[merged], place[merged], index[merged]
        time, is_tick = time[merged], is_tick[merged]
        seg = Segments.of(slot)  # already grouped: its order is the identity
        # Before each step: the last reading, the last tick, the watch start.
        read = fill_values(seg, ~is_tick, time, heard0)
        read_before = seg.previous(read, heard0)
        tick_seen = fill_values(seg, is_tick, time, ticked0)
        tick_before = seg.previous(tick_seen, ticked0)
        watch = np.where(
            watch0[slot] != NONE,
            watch0[slot],
            np.where(tick_seen != ticked0[slot], initial.first_tick[slot], NONE),
        )
        since = np.where(is_tick, read, read_before)
        since = np.where(since == NONE, watch, since)
        silence = np.where(since == NONE, 0, time - since)
        silent = is_tick & (silence >= self.limit_ms[slot])
        level = np.where(silent, self.alarm[slot], 0)
        at = np.where(is_tick, time, np.maximum(time, tick_before))
        moves = self.latch.advance(seg, at, level)
        where = moves.at
        events = self._events(moves, slot[where], np.maximum(silence[where], 0), at[where])
        tagged = sorted(
            zip(
                place[where].tolist(),
                slot[where].tolist(),
                index[where].tolist(),
                is_tick[where].tolist(),
                events,
                strict=True,
            ),
            key=lambda row: (row[0], row[1]),
        )
        return [(k, 0 if tick else 1, s, event) for _p, s, k, tick, event in tagged]

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


def _settle(latch: LatchColumns, which: Ints, steps: Ints) -> None:
    """Step the latches of ``which`` through ``steps[slot]`` evaluations at level 0 from level
    0, in closed form: as many shifts of the history with no change, the evaluations counted
    up to the window, and the flapping flag as :func:`rules.latch.flap` would leave it.

    With no change coming in, the count of changes in the window only falls, step after
    step, while the evaluations only grow. So a flapping latch is still flapping at the end
    if it still has more than ``leave`` of the window then; one that is not flapping starts
    at the first step that has seen half a window, if it has ``enter`` of it then, or never;
    and, once started, it too holds if the count at the end is above ``leave``.
    """
    if len(which) == 0:
        return
    steps = steps[which]
    window = latch.window[which]
    history = latch.history[which]
    evaluations = latch.evaluations[which]
    full = np.uint64(2**64 - 1)
    mask = np.where(
        window >= 64, full, (np.uint64(1) << np.minimum(window, 63).astype(np.uint64)) - 1
    ).astype(np.uint64)

    def shifted(by: Ints) -> Ints:
        """How many changes the window holds after ``by`` steps with none."""
        kept = (history << np.minimum(by, 63).astype(np.uint64)) & mask
        return np.where(by < window, np.bitwise_count(kept), 0).astype(np.int64)

    left = shifted(steps) / window
    half = np.maximum(1, (window + 1) // 2 - evaluations)
    starts = (half <= steps) & (shifted(half) / window >= latch.enter[which])
    latch.flapping[which] = (latch.flapping[which] | starts) & (left > latch.leave[which])
    latch.history[which] = np.where(
        steps < window, (history << np.minimum(steps, 63).astype(np.uint64)) & mask, 0
    ).astype(np.uint64)
    latch.evaluations[which] = np.minimum(evaluations + steps, window)


def _rows(starts: Ints, sizes: Ints, which: Ints) -> tuple[Ints, Ints]:
    """The rows ``starts[s] .. starts[s] + sizes[s] - 1`` of each slot ``s`` of ``which``, one
    after the other, and the slot of each."""
    lengths = sizes[which]
    total = int(lengths.sum())
    offsets = np.cumsum(lengths) - lengths
    rows = np.repeat(starts[which] - offsets, lengths) + np.arange(total, dtype=np.int64)
    return rows.astype(np.int64), np.repeat(which, lengths).astype(np.int64)


@dataclass(frozen=True, slots=True)
class _Initial:
    """What a replay starts from: each slot's last reading, last tick and watch start. Of
    equal ticks only the first can count (the others are not later): ``first_k`` are their
    indices, ``times`` the distinct ticks; each slot the ticks visit counts those after its
    last tick, ``times[skip:]``: ``n_ticks`` of them (0 for the others), from
    ``first_tick``."""

    heard: Ints
    ticked_at: Ints
    watch_since: Ints
    ticks: Ints
    first_k: Ints
    times: Ints
    skip: Ints
    n_ticks: Ints
    first_tick: Ints
    watch: Ints
    """The watch start once ticked (the first tick starts it if none had)."""

    @classmethod
    def of(cls, lane: OfflineLane, ticks: Ints, slots: Bools | None) -> _Initial:
        count = len(lane.rules)
        fresh = np.ones(len(ticks), np.bool_)
        fresh[1:] = ticks[1:] != ticks[:-1]
        first_k = np.flatnonzero(fresh).astype(np.int64)
        times = ticks[first_k]
        ticked_at = lane.last_tick_ms.copy()
        skip = np.searchsorted(times, ticked_at, side="right").astype(np.int64)
        n_ticks = len(times) - skip
        if slots is not None:
            n_ticks = np.where(slots, n_ticks, 0)
        first_tick = np.full(count, NONE, np.int64)
        due = n_ticks > 0
        first_tick[due] = times[skip[due]]
        watch_since = lane.watch_since_ms.copy()
        watch = np.where(watch_since != NONE, watch_since, first_tick)
        return cls(
            lane.latch.last_ts_ms.copy(), ticked_at, watch_since, ticks, first_k, times, skip,
            n_ticks, first_tick, watch,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Grouped:
    """A replay's observations grouped by slot, time order kept: slot ``s`` has the rows
    ``starts[s]`` to ``starts[s] + sizes[s] - 1``; ``order`` gives each row's position in the
    batch. ``steps``: each row's time since the slot's row before (:data:`NONE` for the
    first), so a row of step 0 is a stale duplicate; per slot the first and last time, how
    many rows are ``new`` (not duplicates) and the widest step (:data:`NONE` for a slot with
    at most one row)."""

    order: Ints
    ts: Ints
    steps: Ints
    starts: Ints
    sizes: Ints
    seen: Bools
    first_ts: Ints
    last_ts: Ints
    n_new: Ints
    widest: Ints

    @classmethod
    def of(cls, batch: Batch, count: int) -> _Grouped:
        n = len(batch)
        if batch.grouping is not None:  # the caller sorted it already
            order = batch.grouping
        else:
            # A stable sort of small integers is a radix sort in numpy.
            keys = batch.slot.astype(np.uint16) if count <= 2**16 else batch.slot
            order = np.argsort(keys, kind="stable").astype(np.int64, copy=False)
        sizes = np.bincount(batch.slot, minlength=count).astype(np.int64, copy=False)
        starts = np.cumsum(sizes) - sizes
        seen = sizes > 0
        heads = starts[seen]
        ts = batch.ts[order]
        steps = np.empty(n, np.int64)
        if n:
            steps[0] = NONE
            np.subtract(ts[1:], ts[:-1], out=steps[1:])
            steps[heads] = NONE
        first_ts = np.full(count, NONE, np.int64)
        last_ts = np.full(count, NONE, np.int64)
        n_new = np.zeros(count, np.int64)
        widest = np.full(count, NONE, np.int64)
        if n:
            first_ts[seen] = ts[heads]
            last_ts[seen] = ts[heads + sizes[seen] - 1]
            repeated = np.flatnonzero(steps == 0)
            owner = np.searchsorted(starts, repeated, side="right") - 1
            n_new = sizes - np.bincount(owner, minlength=count)
            widest[seen] = np.maximum.reduceat(steps, heads)
        return cls(order, ts, steps, starts, sizes, seen, first_ts, last_ts, n_new, widest)
