"""Accumulation rules as columns: every rain gauge's rolling sums for a whole batch at once.

The reference is :mod:`rules.accumulation`: each reading shifts the slot's buckets on to the
reading's bucket, adds its increment (spread evenly over the buckets since the previous
reading, the remainder to the newest ones), then compares the window sums with the levels'
set-points. Reading by reading that is a Python loop over up to 288 buckets per reading.

Here the buckets are never shifted per reading. Within a batch a slot's rain is a step
function of the (absolute) bucket number. The rain of a reading's window is the stored buckets
newer than the window's start, plus the increments of the batch's readings from the first one
after the start up to this one, less the part of that first one's spread that falls at or
before the start (its oldest ``m`` buckets: ``m·base``, and one more for each of them among
the ``extra`` newest). That is one ``searchsorted`` per (reading, window) on the batch's
buckets, running totals and a few gathers, all in exact int64. A spread that reaches back
beyond the horizon is counted whole: its far part lies in buckets that no window can see
again, so the sums are the reference's, which drops it. After the batch each slot's buckets
are its stored ones moved on, plus every reading's spread laid out with a difference array.

The latch is :func:`~rules.lanes.columns.hysteresis_count`, which is exact only when being
reached (and being held) is monotone across levels for *every* sum the gauge can produce; see
:func:`nested` for the condition this lane checks, and :func:`undelayed`.

Int64 must hold every sum exactly. Readings beyond :data:`LIMIT`, counters that run backwards
past ``counter_max`` (a negative increment, so window sums no longer grow with the window and
the monotonicity argument fails) and slots whose batch would total :data:`TOTAL` or more are
evaluated for that batch with the reference itself (:attr:`AccumulationLane.objects`); the
slot returns to the columns once its state fits again. Real gauges never go there.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rules.accumulation import (
    MICRO,
    AccumulationRule,
    AccumulationState,
    Mode,
    _event,  # the reference's event builder: the lane's events cannot drift from it
)
from rules.base import Rule
from rules.events import with_flapping
from rules.lanes.base import Batch, Emitted
from rules.lanes.columns import (
    NONE,
    Bools,
    Floats,
    Ints,
    LatchColumns,
    Segments,
    Spare,
    hysteresis_count,
    newer,
)
from rules.latch import Transition

WIDTH = 4
"""At most one entry per level: blue, yellow, orange, red."""

LIMIT = 2**52
"""Readings, counter values and ``counter_max`` up to this many micro-units (4.5·10⁹ mm) are
evaluated in columns: ``rint`` of such a float is exact and converts to int64 exactly."""

TOTAL = 2**61
"""A slot stays in columns for a batch while its stored buckets plus the batch's increments
stay below this: every sum and difference then fits int64 with room to spare."""

NEVER = 2**62
"""A set-point no sum reaches: padding, and set-points beyond :data:`TOTAL`."""

COLUMNWISE = 4096
"""From this many readings in a batch, window sums and set-points are compared one window and
one level at a time (less memory traffic); below, in a few (readings × …) arrays (fewer calls)."""

Table = list[list[tuple[int, int, int]]]
""":meth:`AccumulationRule.limits`: per level, per window, (buckets, set, clear) in micro."""


def undelayed(rule: AccumulationRule) -> bool:
    """No on-delay, off-delay or consecutive count: the latch follows each reading at once."""
    return rule.on_delay_ms == 0 and rule.off_delay_ms == 0 and rule.consecutive == 1


def nested(table: Table) -> bool:
    """Whether every sum that reaches (holds) a level also reaches (holds) the level below.

    Then the reached levels, and the held ones, are always the lowest few, so each level can
    latch on its own and the count of latched levels is the alarm level
    (:func:`~rules.lanes.columns.hysteresis_count`), exactly as :func:`rules.latch.step`.

    The condition, for each pair of adjacent levels and for set and clear alike: every window
    ``(n', v')`` of the upper level has a window ``(n, v)`` of the lower one with ``n ≥ n'``
    and ``v ≤ v'``. Sufficient: bucket sums are never negative, so a window's sum only grows
    with its length; the upper window at ``v'`` puts the longer lower window at ``v'`` or more.
    Necessary: rain of exactly ``v'`` in the oldest bucket of that window and none elsewhere
    (a reading of ``v'``, then ``n' − 1`` dry ones a bucket apart) reaches the upper window,
    while every lower window shorter than ``n'`` sees nothing and every other one sees ``v'`` —
    so without such a window the lower level is not reached. (CMA signals pass:
    a longer window with the same 50 mm below each; flash-flood tables pass when each window's
    values grow with the level.) Compared in micro-units, as the reference compares.
    """
    for lower, upper in itertools.pairwise(table):
        for n_up, set_up, clear_up in upper:
            if not any(n >= n_up and s <= set_up for n, s, _ in lower):
                return False
            if not any(n >= n_up and c <= clear_up for n, _, c in lower):
                return False
    return True


def columnar(rule: AccumulationRule) -> bool:
    """Rules the lane evaluates: :func:`undelayed`, :func:`nested`, ``counter_max`` in range."""
    cmax = 0 if rule.counter_max is None else _micro(rule.counter_max)
    return undelayed(rule) and nested(rule.limits()) and cmax <= LIMIT


def fits(rule: AccumulationRule, state: AccumulationState) -> bool:
    """States the columns hold exactly: a latch with nothing pending at one of the rule's
    levels (or none; the reference cannot report leaving any other) whose start agrees with
    its level (as every state the reference produces: the columns keep no start at level 0);
    buckets as :func:`rules.accumulation.add` leaves them (at most ``horizon``, no leading
    zero, none negative) that total under :data:`TOTAL`; a finite counter within
    :data:`LIMIT`."""
    latch, amounts, last = state.latch, state.amounts, state.last_value
    return (
        LatchColumns.fits(latch)
        and (latch.level in rule.level_numbers or (latch.level == 0 and latch.start_ms is None))
        and len(amounts) <= rule.horizon
        and (not amounts or amounts[0] != 0)
        and all(a >= 0 for a in amounts)
        and sum(amounts) < TOTAL
        and (last is None or (math.isfinite(last) and abs(last * MICRO) <= LIMIT))
    )


@dataclass(frozen=True, slots=True)
class _Spec:
    """One slot's rule as table rows (built once per rule, stacked on demand)."""

    bucket_ms: int
    horizon: int
    cumulative: bool
    counter_max: int
    """In micro-units; -1 without one."""
    counter_top: float
    """The reading above which a counter is refused (infinity without ``counter_max``)."""
    windows: tuple[int, ...]
    """The rule's distinct window lengths in buckets, ascending."""
    sets: tuple[tuple[int, ...], ...]
    """Per level, per distinct window: the set-point, :data:`NEVER` where the level has no
    such window."""
    clears: tuple[tuple[int, ...], ...]
    levels: tuple[int, ...]
    index: tuple[tuple[int, ...], ...]
    """Per level, the distinct-window index of each of its windows (the reference's order)."""
    table: Table
    """:meth:`AccumulationRule.limits`, for the events."""


def _spec(rule: AccumulationRule) -> _Spec:
    table = rule.limits()
    windows = tuple(sorted({n for level in table for n, _, _ in level}))
    at = {n: d for d, n in enumerate(windows)}
    sets, clears = [], []
    for level in table:
        row_set, row_clear = [NEVER] * len(windows), [NEVER] * len(windows)
        for n, s, c in level:
            row_set[at[n]], row_clear[at[n]] = min(s, NEVER), min(c, NEVER)
        sets.append(tuple(row_set))
        clears.append(tuple(row_clear))
    return _Spec(
        bucket_ms=rule.bucket_ms,
        horizon=rule.horizon,
        cumulative=rule.mode is Mode.CUMULATIVE,
        counter_max=-1 if rule.counter_max is None else _micro(rule.counter_max),
        counter_top=math.inf if rule.counter_max is None else rule.counter_max,
        windows=windows,
        sets=tuple(sets),
        clears=tuple(clears),
        levels=rule.level_numbers,
        index=tuple(tuple(at[n] for n, _, _ in level) for level in table),
        table=table,
    )


@dataclass(frozen=True, slots=True)
class _Rain:
    """A batch's kept readings (grouped by slot) as rain over the buckets.

    Reading ``i`` spreads its increment over the ``spread`` buckets after ``prior`` up to its
    own (the newest only, when ``prior`` is its own bucket): ``base`` each, one more for the
    newest ``spread − lead`` of them. ``total`` holds the running sums of the increments,
    ``near`` the buckets renumbered for searching.
    """

    prior: Ints
    spread: Ints
    base: Ints
    lead: Ints
    near: Ints
    total: Ints
    bucket: Ints
    sub: Segments

    @classmethod
    def of(cls, sub: Segments, bucket: Ints, newest: Ints, amount: Ints, width: int) -> _Rain:
        """The readings' spreads; ``newest`` is each segment's stored newest bucket."""
        prior = np.empty_like(bucket)
        prior[1:] = bucket[:-1]
        prior[sub.first] = newest
        step = bucket - prior
        spread = np.maximum(step, 1)
        base, extra = np.divmod(amount, spread)
        # Gaps longer than any window shrink to width + 1 and segments lie width + 2 apart:
        # the same order for every query (none reaches further back than width), in a range
        # that cannot overflow however far apart the readings are.
        gap = np.minimum(step, width + 1)
        gap[sub.first] = width + 2
        # The running totals may wrap round int64 across segments; only differences within a
        # segment are used, and those fit (see TOTAL), so they are exact.
        total = np.zeros(len(amount) + 1, np.int64)
        np.cumsum(amount, out=total[1:])
        return cls(prior, spread, base, spread - extra, np.cumsum(gap), total, bucket, sub)

    def straddle(self, x: Ints, x_near: Ints) -> tuple[Ints, Ints]:
        """For buckets ``x`` (``x_near`` renumbered) before the bucket of a later reading of
        their segment: the first reading after ``x`` (grouped position) and the part of its
        increment in the buckets up to ``x``; readings before it lie wholly up to ``x``."""
        j = np.minimum(np.searchsorted(self.near, x_near, side="right"), len(self.prior) - 1)
        m = np.maximum(x - self.prior[j], 0)
        part: Ints = m * self.base[j] + np.maximum(m - self.lead[j], 0)
        return j, part

    def rows(self, kept: Ints, shift: Ints, horizon: Ints) -> Ints:
        """The segments' buckets after the batch (right-aligned like ``kept``, their buckets
        before it): the stored ones moved ``shift`` buckets on plus each reading's spread,
        of which only the newest ``horizon`` buckets are kept, as the reference keeps them."""
        count, width = kept.shape
        padded = np.zeros((count, 2 * width), np.int64)  # zeros where the shift runs off the row
        padded[:, :width] = kept
        cols = np.arange(width, dtype=np.int64)
        at = (np.arange(count, dtype=np.int64) * 2 * width + np.minimum(shift, width))[:, None]
        rows: Ints = padded.ravel()[at + cols]
        # Each reading's spread as runs of columns of its segment's new row, summed through a
        # difference array: ``base`` from its oldest bucket, one more from its newest ``extra``,
        # both up to its own bucket (column ``own``); runs are cut at the row's oldest column.
        seg = self.sub.seg_of
        own = width - 1 - (self.bucket[self.sub.last][seg] - self.bucket)
        on = np.flatnonzero(own >= 0)
        own, spread, base, lead = own[on], self.spread[on], self.base[on], self.lead[on]
        at = seg[on] * (width + 1)
        steps = np.zeros((count, width + 1), np.int64)
        np.add.at(
            steps.ravel(),
            np.concatenate(
                (
                    at + np.maximum(own - spread + 1, 0),
                    at + np.maximum(own - spread + lead + 1, 0),
                    at + own + 1,
                )
            ),
            np.concatenate((base, np.ones_like(base), -base - 1)),
        )
        rows += np.cumsum(steps[:, :width], axis=1)
        if (horizon < width).any():
            rows[cols[None, :] < (width - horizon)[:, None]] = 0
        return rows


class AccumulationLane:
    """Every column-friendly accumulation rule of a fleet.

    ``amounts[slot]`` holds the slot's buckets right-aligned (the newest, that of
    ``latch.last_ts_ms``, in the last column; zeros before the oldest), ``last_value`` the
    cumulative counter's previous reading (NaN: none).
    """

    kind = "accumulation"

    _COLUMNS = (
        "amounts", "last_value", "bucket_ms", "horizon", "cumulative", "counter_max",
        "counter_top", "windows", "sets", "clears", "levels", "by_count",
    )  # fmt: skip

    def __init__(self) -> None:
        self.rules: list[AccumulationRule] = []
        self.specs: list[_Spec] = []
        self.latch = LatchColumns()
        self._spare = Spare()
        self.objects: dict[int, AccumulationState] = {}
        """Slots whose sums outgrew the columns for now (see the module text)."""
        self.width = 1
        self.amounts = np.zeros((0, 1), np.int64)
        self.last_value = np.zeros(0, np.float64)
        self._waiting: list[AccumulationState] = []
        self._built = 0
        self.bucket_ms = np.zeros(0, np.int64)
        self.horizon = np.zeros(0, np.int64)
        self.cumulative = np.zeros(0, np.bool_)
        self.counter_max = np.zeros(0, np.int64)
        self.counter_top = np.zeros(0, np.float64)
        self.windows = np.zeros((0, 1), np.int64)
        self.sets = np.zeros((0, WIDTH, 1), np.int64)
        self.clears = np.zeros((0, WIDTH, 1), np.int64)
        self.levels = np.zeros((0, WIDTH), np.int64)
        self.by_count = np.zeros((0, WIDTH + 1), np.int64)

    def accepts(self, rule: Rule, state: Any) -> bool:
        """Accumulation rules that :func:`columnar` allows, with a state that :func:`fits`."""
        return (
            isinstance(rule, AccumulationRule)
            and columnar(rule)
            and isinstance(state, AccumulationState)
            and fits(rule, state)
        )

    def add(self, rule: Rule, state: Any) -> int:
        """Take the rule and its state; return the slot. ``TypeError`` for another kind,
        ``ValueError`` for a rule or state the lane cannot hold."""
        if not isinstance(rule, AccumulationRule) or not isinstance(state, AccumulationState):
            msg = f"the accumulation lane cannot take a {rule.kind} rule with {type(state)}"
            raise TypeError(msg)
        if not (columnar(rule) and fits(rule, state)):
            msg = (
                f"rule {rule.rule_id!r}: delays, unnested levels or this state need the object lane"
            )
            raise ValueError(msg)
        slot = self.latch.grow(rule.delays)
        self.latch.put(slot, state.latch)
        self.rules.append(rule)
        self.specs.append(_spec(rule))
        self._waiting.append(state)
        return slot

    def get(self, slot: int) -> AccumulationState:
        """The slot's state as the reference value."""
        self._build()
        if slot in self.objects:
            return self.objects[slot]
        row = self.amounts[slot, self.width - self.specs[slot].horizon :]
        filled = np.flatnonzero(row)
        amounts = tuple(row[filled[0] :].tolist()) if len(filled) else ()
        last = float(self.last_value[slot])
        return AccumulationState(self.latch.get(slot), amounts, None if math.isnan(last) else last)

    def level(self, slots: Ints) -> Ints:
        """Current levels."""
        return self.latch.level[slots]

    def tick(self, now_ms: int, slots: Bools | None = None) -> Emitted:
        """Nothing happens between readings."""
        return []

    def evaluate(self, batch: Batch) -> Emitted:
        """As :func:`rules.accumulation.evaluate` reading by reading: stale, NaN, infinite and
        negative readings, and counters above ``counter_max``, change nothing; every other
        reading is one latch evaluation."""
        self._build()
        seg = Segments.of(batch.slot)
        ts, values = seg.gather(batch.ts), seg.gather(batch.value)
        counts = np.isfinite(values) & (values >= 0) & (values <= self.counter_top[seg.slot])
        keep = newer(seg, ts, counts, self.latch.last_ts_ms)
        if not keep.any():
            return []
        sub = seg
        if not keep.all():
            sub, ts, values = seg.take(keep), ts[keep], values[keep]
        kept = self.amounts[sub.seg_slot]  # the segments' stored buckets
        amount, bad = self._increments(sub, values, kept)
        emitted: Emitted = []
        if bad.any():
            emitted += self._by_reference(sub, bad, batch)
            good = ~bad[sub.seg_of]
            if not good.any():
                emitted.sort(key=lambda e: e[0])
                return emitted
            sub, kept = sub.take(good), kept[~bad]
            amount, ts, values = amount[good], ts[good], values[good]
        emitted += self._columns(sub, ts, values, amount, kept)
        emitted.sort(key=lambda e: e[0])
        return emitted

    def _increments(self, sub: Segments, values: Floats, kept: Ints) -> tuple[Ints, Bools]:
        """Each kept reading's increment in micro-units (as :func:`rules.accumulation.increment`
        with the previous kept reading as the counter's baseline), and per segment whether the
        columns cannot take it exactly (see the module text)."""
        big = values > LIMIT / MICRO
        amount: Ints = np.rint(np.where(big, 0.0, values) * MICRO).astype(np.int64)
        cumulative = self.cumulative[sub.slot]
        if cumulative.any():
            now = amount
            previous = np.empty_like(values)
            previous[1:] = np.where(big[:-1], 0.0, values[:-1])  # a big one makes its slot bad
            previous[sub.first] = self.last_value[sub.seg_slot]
            baseline = np.isfinite(previous)
            before = np.rint(np.where(baseline, previous, 0.0) * MICRO).astype(np.int64)
            cmax = self.counter_max[sub.slot]
            wrap = np.where(cmax < 0, now, now + cmax - before)
            rise = np.where(now >= before, now - before, wrap)
            amount = np.where(cumulative, np.where(baseline, rise, 0), now)
        first = sub.first
        bad = np.logical_or.reduceat(big | (amount < 0), first)
        stored = kept.sum(axis=1).astype(np.float64)
        bad |= stored + np.add.reduceat(amount.astype(np.float64), first) >= TOTAL
        if self.objects:
            bad |= np.isin(sub.seg_slot, list(self.objects))
        return amount, bad

    def _by_reference(self, sub: Segments, bad: Bools, batch: Batch) -> Emitted:
        """Evaluate the kept readings of the ``bad`` segments with the reference, then keep each
        state in the columns if it :func:`fits` again, else in :attr:`objects`."""
        emitted: Emitted = []
        ts, values = batch.ts.tolist(), batch.value.tolist()
        for s in np.flatnonzero(bad).tolist():
            slot = int(sub.seg_slot[s])
            rule = self.rules[slot]
            state = self.get(slot)
            for pos in sub.order[sub.first[s] : sub.last[s] + 1].tolist():
                state, event = rule.evaluate(state, ts[pos], values[pos])
                if event is not None:
                    emitted.append((pos, with_flapping(event, state.latch.flapping)))
            self.latch.put(slot, state.latch)
            if fits(rule, state):
                self.objects.pop(slot, None)
                self._put(slot, state)
            else:
                self.objects[slot] = state
        return emitted

    def _columns(
        self, sub: Segments, ts: Ints, values: Floats, amount: Ints, kept: Ints
    ) -> Emitted:
        """The column path: window sums per reading, the latch, the new buckets, the events.
        ``kept`` holds the segments' stored buckets."""
        width, slot, slots = self.width, sub.slot, sub.seg_slot
        bms = self.bucket_ms[slot]
        bucket = ts // bms
        seen = self.latch.last_ts_ms[slots]
        newest = np.where(seen == NONE, bucket[sub.first], seen // bms[sub.first])
        rain = _Rain.of(sub, bucket, newest, amount, width)
        stored = np.zeros((len(slots), width + 1), np.int64)
        np.cumsum(kept, axis=1, out=stored[:, 1:])

        # Window sums: the stored buckets newer than the window's start, plus the readings from
        # the first after it up to this one, less the part of that first one before the start.
        counts = sub.last - sub.first + 1
        windows = self.windows[slots]  # padded with one-bucket windows that no set-point uses
        flat = stored.ravel()
        end = sub.seg_of * (width + 1) + width
        stored_newest = np.repeat(newest, counts)
        if len(slot) < COLUMNWISE:  # few readings: fewer, wider operations
            window = np.repeat(windows, counts, axis=0)
            start = bucket[:, None] - window
            j, part = rain.straddle(start, rain.near[:, None] - window)
            tail = np.minimum(np.maximum(stored_newest[:, None] - start, 0), width)
            ends = end[:, None]
            sums = (flat[ends] - flat[ends - tail]) + (rain.total[1:, None] - rain.total[j]) - part
            sets = np.repeat(self.sets[slots], counts, axis=0)
            clears = np.repeat(self.clears[slots], counts, axis=0)
            reached: Bools = np.any(sums[:, None, :] >= sets, axis=2)
            held: Bools = np.any(sums[:, None, :] >= clears, axis=2)
        else:  # a long batch: one-dimensional passes are twice as fast
            sums = np.empty((len(slot), windows.shape[1]), np.int64)
            for k in range(windows.shape[1]):
                window = np.repeat(windows[:, k], counts)
                start = bucket - window
                j, part = rain.straddle(start, rain.near - window)
                tail = np.minimum(np.maximum(stored_newest - start, 0), width)
                sums[:, k] = (
                    (flat[end] - flat[end - tail]) + (rain.total[1:] - rain.total[j]) - part
                )
            reached = _any_at_or_above(sums, self.sets[slots], counts)
            held = _any_at_or_above(sums, self.clears[slots], counts)
        before = (self.levels > 0) & (self.latch.level[:, None] >= self.levels)
        count = hysteresis_count(sub, reached, held, before)
        level = self.by_count[slot, count]
        moves = self.latch.advance(sub, ts, level)

        last = sub.last
        self.amounts[slots] = rain.rows(kept, bucket[last] - newest, self.horizon[slots])
        self.last_value[slots] = np.where(self.cumulative[slots], values[last], np.nan)
        self.latch.last_ts_ms[slots] = ts[last]

        emitted: Emitted = []
        changes = zip(
            moves.at.tolist(),
            moves.changes(),
            moves.old.tolist(),
            moves.new.tolist(),
            moves.start_ms.tolist(),
            moves.flapping.tolist(),
            sums[moves.at].tolist(),
            strict=True,
        )
        for at, change, old, new, start_ms, flapping, row in changes:
            s = int(slot[at])
            spec = self.specs[s]
            moved = Transition(change, old, new, start_ms, flapping)
            per_level = [[row[k] for k in ks] for ks in spec.index]
            event = _event(self.rules[s], moved, per_level, spec.table, int(ts[at]))
            emitted.append((int(sub.order[at]), with_flapping(event, flapping)))
        return emitted

    def _put(self, slot: int, state: AccumulationState) -> None:
        """Store a state that :func:`fits` into the slot's bucket and counter columns."""
        self.amounts[slot] = 0
        if state.amounts:
            self.amounts[slot, self.width - len(state.amounts) :] = state.amounts
        self.last_value[slot] = np.nan if state.last_value is None else state.last_value

    def settle(self) -> None:
        """Lay out the tables of every slot added so far (see :meth:`FleetEngine.settle`)."""
        self._build()

    def _build(self) -> None:
        """Lay out the tables of the slots added since the last build (laying out one slot at
        a time would cost a call per column each time), in rows of spare room
        (:class:`~rules.lanes.columns.Spare`): adding slots between evaluations copies no
        table, except to widen it for a rule with a longer horizon or more windows."""
        start, stop = self._built, len(self.specs)
        if start == stop:
            return
        new = self.specs[start:]
        width = max(self.width, *(sp.horizon for sp in new))
        if width > self.width:
            self.amounts = _widen(self.amounts, width, 0, left=True)
            self.width = width
        d = max(self.windows.shape[1], *(len(sp.windows) for sp in new))
        self.windows = _widen(self.windows, d, 1)
        self.sets = _widen(self.sets, d, NEVER)
        self.clears = _widen(self.clears, d, NEVER)
        self._spare.grow(self, self._COLUMNS, stop)
        windows = np.ones((len(new), d), np.int64)
        sets = np.full((len(new), WIDTH, d), NEVER, np.int64)
        clears = np.full((len(new), WIDTH, d), NEVER, np.int64)
        levels = np.zeros((len(new), WIDTH), np.int64)
        for s, sp in enumerate(new):
            windows[s, : len(sp.windows)] = sp.windows
            sets[s, : len(sp.levels), : len(sp.windows)] = sp.sets
            clears[s, : len(sp.levels), : len(sp.windows)] = sp.clears
            levels[s, : len(sp.levels)] = sp.levels
        self.windows[start:] = windows
        self.sets[start:] = sets
        self.clears[start:] = clears
        self.levels[start:] = levels
        self.by_count[start:, 0] = 0
        self.by_count[start:, 1:] = levels
        self.bucket_ms[start:] = [sp.bucket_ms for sp in new]
        self.horizon[start:] = [sp.horizon for sp in new]
        self.cumulative[start:] = [sp.cumulative for sp in new]
        self.counter_max[start:] = [sp.counter_max for sp in new]
        self.counter_top[start:] = [sp.counter_top for sp in new]
        for i, state in enumerate(self._waiting):
            self._put(start + i, state)
        self._waiting = []
        self._built = stop


def _any_at_or_above(sums: Ints, limits: Ints, counts: Ints) -> Bools:
    """Per reading and level, whether any window's sum is at or above the level's limit for
    it; ``limits`` per segment (levels × windows), ``counts`` its readings."""
    out = np.zeros((len(sums), WIDTH), np.bool_)
    for level in range(WIDTH):
        for k in range(limits.shape[2]):
            limit = limits[:, level, k]
            if (limit < NEVER).any():
                out[:, level] |= sums[:, k] >= np.repeat(limit, counts)
    return out


def _widen(table: Ints, width: int, pad: int, *, left: bool = False) -> Ints:
    """``table`` with its last axis padded to ``width`` (on the left: the buckets' old end)."""
    missing = width - table.shape[-1]
    if missing <= 0:
        return table
    extra = np.full((*table.shape[:-1], missing), pad, dtype=table.dtype)
    return np.concatenate((extra, table) if left else (table, extra), axis=-1)


def _micro(value: float) -> int:
    """As the reference rounds: to the nearest micro-unit, ties to even."""
    return round(value * MICRO)
