"""Spike rules as columns: the median/MAD window of every slot, judged in rounds.

The reference is :mod:`rules.spike`. Whether a reading enters its slot's window depends on the
verdicts on the readings before it (outliers are held out, a level shift is taken in), so a
slot's readings cannot be judged all at once. Different slots do not depend on each other,
though: the batch is cut into *rounds*, round ``r`` taking the ``r``-th reading of every slot
that has one, and each round is judged for all its slots with a few array operations over a
``slots × window_points`` table. The Python loop therefore runs as many times as the busiest
slot has readings in the batch — once for a streaming micro-batch of one reading per sensor —
not once per reading. When only a few slots are left with readings (one sensor's long history),
an array round costs more than judging those readings one by one, so the rest of them go
through the reference's own arithmetic (:meth:`rules.spike.SpikeRule.spread`) instead.

Exactness. Each window is a ring buffer (oldest at ``head``) padded with NaN, which ``sort``
puts after every number; the median is then read from the sorted row at the positions
:func:`statistics.median` uses — the middle value, or ``(a + b) / 2`` of the two middle ones —
and the MAD the same way from the absolute deviations (sorted, or, when every row of the round
holds the same number of values, picked from the sorted row without a second sort: see
:func:`_uniform`), with the reference's operations in the reference's order, so every verdict,
median and reach is the reference's bit for bit (a zero's sign aside, which no result shows).
The latch does not depend on the window: once every reading has its verdict, the levels go
through :meth:`LatchColumns.advance` for the whole batch at once.

Takes spike rules without off-delay (the level is then the verdict itself) whose state the
reference could have produced: a latch that fits in columns, a window no longer than the rule's
``window_points``, finite values.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from rules.base import Rule
from rules.events import with_flapping
from rules.lanes.base import Batch, Emitted
from rules.lanes.columns import Bools, Floats, Ints, LatchColumns, Segments, newer
from rules.latch import Transition

# The reference's event builder, so the lane's events cannot drift from the reference's.
from rules.spike import MAD_TO_SIGMA, SpikeRule, SpikeState, _event


def fits(rule: SpikeRule, state: SpikeState) -> bool:
    """No off-delay; a latch with nothing pending whose start agrees with its level (the
    columns keep no start for level 0); a window within ``window_points`` of finite values and
    a non-negative run, as every state the reference produces has them."""
    latch = state.latch
    return (
        rule.off_delay_ms == 0
        and LatchColumns.fits(latch)
        and (latch.level != 0 or latch.start_ms is None)
        and len(state.window) <= rule.window_points
        and state.run >= 0
        and all(math.isfinite(v) for v in (*state.window, *state.held))
    )


@dataclass(frozen=True, slots=True)
class Verdicts:
    """Per observation of a batch (grouped order): whether it was judged (enough points),
    whether it is an outlier, and the window's median and ``k × scale`` before it."""

    judged: Bools
    outlier: Bools
    median: Floats
    reach: Floats


@dataclass(frozen=True, slots=True)
class Scratch:
    """Work tables for :meth:`Windows.spread`, allocated once per batch (a fresh table per
    round costs more in page faults than the arithmetic on it)."""

    ordered: Floats
    deviations: Floats
    negated: Floats
    rows: Ints

    @classmethod
    def of(cls, shape: tuple[int, ...]) -> Scratch:
        """Tables for up to ``shape[0]`` rows of ``shape[1]`` cells."""
        return cls(np.empty(shape), np.empty(shape), np.empty(shape), np.arange(shape[0]))


def _uniform(ordered: Floats, c: int, scratch: Scratch, m: int) -> tuple[Floats, Floats]:
    """Median and MAD of ``m`` sorted rows that all hold ``c`` values (the steady state).

    The median is read at the middle column(s). The MAD needs no second sort: with ``d = x −
    median`` ascending along a sorted row (rounded subtraction is monotone), the ``t``
    smallest ``|d|`` are ``t`` neighbours, and the largest ``|d|`` of neighbours
    ``i..i+t−1`` is ``max(−d[i], d[i+t−1])``; so the ``t``-th smallest ``|d|`` is the smallest
    such maximum over ``i`` — the same rounded values the reference sorts, picked exactly.
    """
    lower, upper = (c - 1) // 2, c // 2
    odd = c % 2 == 1
    # A copy even for odd counts: the table is reused for the MAD below.
    median = ordered[:, upper].copy() if odd else (ordered[:, lower] + ordered[:, upper]) / 2
    d = scratch.deviations[:m, :c]
    np.subtract(ordered[:, :c], median[:, None], out=d)
    negated = scratch.negated[:m, :c]
    np.negative(d, out=negated)

    def smallest(t: int) -> Floats:
        """The ``t``-th smallest ``|d|`` of each row."""
        span = c - t + 1
        ends = np.maximum(negated[:, :span], d[:, t - 1 :], out=scratch.ordered[:m, :span])
        least: Floats = ends.min(axis=1)
        return least

    high = smallest(upper + 1)
    mad = high if odd else (smallest(lower + 1) + high) / 2
    return median, mad


def _ragged(ordered: Floats, count: Ints, scratch: Scratch, m: int) -> tuple[Floats, Floats]:
    """Median and MAD of ``m`` sorted rows holding ``count`` values each (NaN after them):
    the middle cells of each row, then the same of its sorted absolute deviations."""
    rows = scratch.rows[:m]
    lower, upper = np.maximum((count - 1) // 2, 0), count // 2
    odd = count % 2 == 1
    median = np.where(odd, ordered[rows, upper], (ordered[rows, lower] + ordered[rows, upper]) / 2)
    d = scratch.deviations[:m]
    np.subtract(ordered, median[:, None], out=d)
    np.abs(d, out=d)
    d.sort(axis=1)
    mad = np.where(odd, d[rows, upper], (d[rows, lower] + d[rows, upper]) / 2)
    return median, mad


class Windows:
    """The windows, held outliers and runs of a set of slots, with each slot's parameters.

    ``values[s]`` is a ring of ``points[s]`` cells, oldest at ``head[s]``; ``count[s]`` cells
    are in use and every other cell is NaN (a non-full window starts at cell 0), so sorting a
    row puts the window's values first. ``held[s]`` starts with the ``nheld[s]`` outliers held
    out (the cells after them mean nothing). Rows beyond ``len(self)`` are spare capacity,
    so adding slots one by one does not copy the tables each time.
    """

    def __init__(self, width: int = 0, held_width: int = 1) -> None:
        self.size = 0
        self.values: Floats = np.full((0, width), np.nan)
        self.head = np.zeros(0, np.int64)
        self.count = np.zeros(0, np.int64)
        self.held: Floats = np.full((0, held_width), np.nan)
        self.nheld = np.zeros(0, np.int64)
        self.run = np.zeros(0, np.int64)
        self.points = np.zeros(0, np.int64)
        self.min_points = np.zeros(0, np.int64)
        self.shift = np.zeros(0, np.int64)
        self.k = np.zeros(0, np.float64)
        self.min_scale = np.zeros(0, np.float64)
        self.level = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return self.size

    _COLUMNS = (
        "head", "count", "nheld", "run", "points", "min_points", "shift", "k", "min_scale",
        "level",
    )  # fmt: skip

    def _reserve(self, rows: int, width: int, held_width: int) -> None:
        """Room for ``rows`` slots, ``width`` window cells and ``held_width`` held values."""
        capacity = len(self.head)
        grow = rows > capacity
        new_rows = max(rows, 2 * capacity, 16) if grow else capacity
        if grow or width > self.values.shape[1]:
            table = np.full((new_rows, max(width, self.values.shape[1])), np.nan)
            table[:capacity, : self.values.shape[1]] = self.values
            self.values = table
        if grow or held_width > self.held.shape[1]:
            table = np.full((new_rows, max(held_width, self.held.shape[1])), np.nan)
            table[:capacity, : self.held.shape[1]] = self.held
            self.held = table
        if grow:
            for name in self._COLUMNS:
                old = getattr(self, name)
                new = np.zeros(new_rows, old.dtype)
                new[:capacity] = old
                setattr(self, name, new)

    def append(self, rule: SpikeRule, state: SpikeState) -> int:
        """Add a slot for ``rule`` holding ``state``; return its row."""
        row = self.size
        # Held outliers grow by at most consecutive_shift − 1 before the run is taken in.
        self._reserve(row + 1, rule.window_points, len(state.held) + rule.consecutive_shift - 1)
        self.size = row + 1
        self.points[row] = rule.window_points
        self.min_points[row] = rule.min_points
        self.shift[row] = rule.consecutive_shift
        self.k[row] = rule.k
        self.min_scale[row] = rule.min_scale
        self.level[row] = int(rule.level)
        self.values[row] = np.nan
        self.values[row, : len(state.window)] = state.window
        self.head[row] = 0
        self.count[row] = len(state.window)
        self.held[row] = np.nan
        self.held[row, : len(state.held)] = state.held
        self.nheld[row] = len(state.held)
        self.run[row] = state.run
        return row

    def window(self, row: int) -> tuple[float, ...]:
        """The row's window, oldest first."""
        head, count = int(self.head[row]), int(self.count[row])
        cells: list[float] = self.values[row, : int(self.points[row])].tolist()
        return tuple((cells[head:] + cells[:head])[:count])

    def held_values(self, row: int) -> tuple[float, ...]:
        """The row's held outliers, in arrival order."""
        cells: list[float] = self.held[row, : int(self.nheld[row])].tolist()
        return tuple(cells)

    def take(self, rows: Ints) -> Windows:
        """A copy of ``rows`` (in that order) to work on."""
        out = Windows()
        out.size = len(rows)
        out.values = self.values[rows]
        out.held = self.held[rows]
        for name in self._COLUMNS:
            setattr(out, name, getattr(self, name)[rows])
        return out

    def put(self, rows: Ints, part: Windows) -> None:
        """Write back what :meth:`take` gave for ``rows``."""
        self.values[rows] = part.values
        self.held[rows] = part.held
        for name in self._COLUMNS:
            getattr(self, name)[rows] = getattr(part, name)

    def push(self, rows: Ints, values: Floats) -> None:
        """Append one value to each of ``rows`` (distinct), dropping the oldest of a full
        window — ``(*window, value)[-window_points:]`` of the reference."""
        count, head, points = self.count[rows], self.head[rows], self.points[rows]
        full = count >= points
        self.values[rows, np.where(full, head, count)] = values
        after = head + 1
        self.head[rows] = np.where(full, np.where(after == points, 0, after), head)
        self.count[rows] = np.where(full, count, count + 1)

    def spread(self, m: int, scratch: Scratch) -> tuple[Bools, Floats, Floats]:
        """``judged``, median and ``k × scale`` of rows ``0..m-1``: ``SpikeRule.spread`` of each
        window (``statistics.median`` of the values, then of their absolute deviations)."""
        count = self.count[:m]
        ordered = scratch.ordered[:m]
        np.copyto(ordered, self.values[:m])
        ordered.sort(axis=1)
        c = int(count[0])
        with np.errstate(all="ignore"):  # Python floats overflow to inf silently, as here
            if c > 0 and not (count != c).any():
                median, mad = _uniform(ordered, c, scratch, m)
            else:
                median, mad = _ragged(ordered, count, scratch, m)
            reach = self.k[:m] * np.maximum(MAD_TO_SIGMA * mad, self.min_scale[:m])
        return count >= self.min_points[:m], median, reach

    def absorb(self, m: int, values: Floats, outlier: Bools) -> None:
        """Take each of rows ``0..m-1``'s new reading in or hold it out, as the reference."""
        if not outlier.any():
            rows = np.arange(m)
            self.push(rows, values)
            self.run[:m] = 0
            self.nheld[:m] = 0
            return
        run, shift = self.run[:m], self.shift[:m]
        shifted = outlier & (run + 1 >= shift)
        held = outlier & ~shifted
        if shifted.any():
            rows = np.flatnonzero(shifted)
            nheld = self.nheld[rows]
            for j in range(int(nheld.max())):
                some = rows[nheld > j]
                self.push(some, self.held[some, j])
        into = np.flatnonzero(~held)
        self.push(into, values[into])
        if held.any():
            rows = np.flatnonzero(held)
            self.held[rows, self.nheld[rows]] = values[rows]
        self.nheld[:m] = np.where(held, self.nheld[:m] + 1, 0)
        self.run[:m] = np.where(held, run + 1, np.where(shifted, shift, 0))

    def replay(
        self, row: int, rule: SpikeRule, values: list[float], verdicts: Verdicts, at: int
    ) -> None:
        """Judge ``values`` one by one for ``row`` with the reference's arithmetic, writing
        the verdicts from grouped position ``at`` on (for the few slots left at the end)."""
        window = deque(self.window(row), maxlen=rule.window_points)
        held = list(self.held_values(row))
        run = int(self.run[row])
        for i, value in enumerate(values, start=at):
            spread = rule.spread(window)
            outlier = spread is not None and abs(value - spread[0]) > spread[1]
            if spread is not None:
                verdicts.judged[i] = True
                verdicts.median[i], verdicts.reach[i] = spread
            verdicts.outlier[i] = outlier
            if not outlier:
                window.append(value)
                held, run = [], 0
            elif run + 1 >= rule.consecutive_shift:
                window.extend((*held, value))
                held, run = [], rule.consecutive_shift
            else:
                held.append(value)
                run += 1
        self.values[row] = np.nan
        self.values[row, : len(window)] = list(window)
        self.head[row], self.count[row] = 0, len(window)
        self.held[row] = np.nan
        self.held[row, : len(held)] = held
        self.nheld[row], self.run[row] = len(held), run


class SpikeLane:
    """Every column-friendly spike rule of a fleet."""

    kind = "spike"

    python_below = 10
    """Below this many slots left with readings, the rest are judged one by one: an array
    round costs about as much as nine readings judged in Python (measured: ~50 µs a round,
    ~5.6 µs a reading)."""

    def __init__(self) -> None:
        self.rules: list[SpikeRule] = []
        self.latch = LatchColumns()
        self.windows = Windows()

    def accepts(self, rule: Rule, state: Any) -> bool:
        """Spike rules and states that :func:`fits` allows."""
        return isinstance(rule, SpikeRule) and isinstance(state, SpikeState) and fits(rule, state)

    def add(self, rule: Rule, state: Any) -> int:
        """Take the rule and its state; return the slot."""
        if not isinstance(rule, SpikeRule) or not isinstance(state, SpikeState):
            msg = f"the spike lane cannot take a {rule.kind} rule with a {type(state).__name__}"
            raise TypeError(msg)
        if not fits(rule, state):
            msg = f"rule {rule.rule_id!r}: this spike rule and state cannot be held in columns"
            raise ValueError(msg)
        slot = self.latch.grow(rule.delays)
        self.latch.put(slot, state.latch)
        self.windows.append(rule, state)
        self.rules.append(rule)
        return slot

    def get(self, slot: int) -> SpikeState:
        """The slot's state as the reference value."""
        windows = self.windows
        return SpikeState(
            latch=self.latch.get(slot),
            window=windows.window(slot),
            held=windows.held_values(slot),
            run=int(windows.run[slot]),
        )

    def level(self, slots: Ints) -> Ints:
        """Current levels."""
        return self.latch.level[slots]

    def evaluate(self, batch: Batch) -> Emitted:
        """As :func:`rules.spike.evaluate` reading by reading: NaN, infinity and stale
        readings change nothing."""
        seg = Segments.of(batch.slot)
        ts, values = batch.ts[seg.order], batch.value[seg.order]
        keep = newer(seg, ts, np.isfinite(values), self.latch.last_ts_ms)
        if not keep.any():
            return []
        sub = seg.take(keep) if not keep.all() else seg
        ts, values = batch.ts[sub.order], batch.value[sub.order]
        verdicts = self.judge(sub, values)
        level = np.where(verdicts.outlier, self.windows.level[sub.slot], 0)
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
            spread = (
                (float(verdicts.median[at]), float(verdicts.reach[at]))
                if verdicts.judged[at]
                else None
            )
            event = _event(rule, moved, float(values[at]), spread, int(ts[at]))
            emitted.append((int(sub.order[at]), with_flapping(event, moved.flapping)))
        emitted.sort(key=lambda e: e[0])
        return emitted

    def judge(self, seg: Segments, values: Floats) -> Verdicts:
        """The verdict on every observation of ``seg`` (all evaluated, in grouped order), the
        windows moved past them.

        The segments are ordered busiest first, so the slots still having an ``r``-th reading
        are a prefix of the working copy and each round works on views, not gathered copies.
        Once fewer than :attr:`python_below` slots are left, their remaining readings are
        replayed one by one (:meth:`Windows.replay`).
        """
        n = len(values)
        verdicts = Verdicts(np.zeros(n, np.bool_), np.zeros(n, np.bool_), np.zeros(n), np.zeros(n))
        lengths = seg.last - seg.first + 1
        busiest = np.argsort(-lengths, kind="stable")
        slots, first, lengths = seg.seg_slot[busiest], seg.first[busiest], lengths[busiest]
        # A streaming batch often has one reading of every slot, in slot order: then the rows
        # are the lane's own and need no working copy.
        whole = len(slots) == len(self.windows) and bool((slots == np.arange(len(slots))).all())
        work = self.windows if whole else self.windows.take(slots)
        rounds = int(lengths[0])
        active = np.searchsorted(-lengths, -np.arange(rounds + 1), side="left")
        # The array rounds: while enough slots still have readings. Their observations are
        # laid out round after round, so each round reads and writes slices, not scattered
        # positions; the verdicts go to their grouped positions in one scatter at the end.
        vector = int(np.count_nonzero(active[:rounds] >= max(self.python_below, 1)))
        if vector:
            sizes = active[:vector]
            bounds = np.zeros(vector + 1, np.int64)
            np.cumsum(sizes, out=bounds[1:])
            total = int(bounds[-1])
            rounds_of = np.repeat(np.arange(vector, dtype=np.int64), sizes)
            at = first[np.arange(total, dtype=np.int64) - bounds[rounds_of]] + rounds_of
            current = values[at]
            judged, outlier = np.zeros(total, np.bool_), np.zeros(total, np.bool_)
            median, reach = np.zeros(total), np.zeros(total)
            scratch = Scratch.of((int(sizes[0]), work.values.shape[1]))
            for r in range(vector):
                a, b = int(bounds[r]), int(bounds[r + 1])
                m = b - a
                j, med, rch = work.spread(m, scratch)
                out = j & (np.abs(current[a:b] - med) > rch)
                judged[a:b], outlier[a:b], median[a:b], reach[a:b] = j, out, med, rch
                work.absorb(m, current[a:b], out)
            verdicts.judged[at], verdicts.outlier[at] = judged, outlier
            verdicts.median[at], verdicts.reach[at] = median, reach
        if vector < rounds:
            listed: list[float] = values.tolist()
            for row in range(int(active[vector])):
                start, end = int(first[row]) + vector, int(first[row] + lengths[row])
                rule = self.rules[int(slots[row])]
                work.replay(row, rule, listed[start:end], verdicts, start)
        if not whole:
            self.windows.put(slots, work)
        return verdicts

    def tick(self, now_ms: int, slots: Bools | None = None) -> Emitted:
        """Spike rules act on readings only."""
        return []
