"""Spike rules as columns: the median/MAD window of every slot, judged in steps.

The reference is :mod:`rules.spike`. Whether a reading enters its slot's window depends on the
verdicts on the readings before it (outliers are held out, a level shift is taken in), so a
slot's readings cannot all be judged at once. Different slots do not depend on each other,
though, and most readings are nowhere near being outliers. Each slot keeps a *cursor* (its next
reading in the batch), and each step of the loop in :meth:`SpikeLane.judge` moves the cursors
of all the slots at once, by two means:

* **Fast path** (:meth:`SpikeLane._take_quiet`). A slot takes in, in one go, as many of its next
  readings as are certainly not outliers, up to the first one in doubt.
* **Exact path** (:meth:`SpikeLane._judge_exactly`). A slot whose next reading is in doubt, or
  follows an outlier (the alarm may clear there, and its event needs the median and reach),
  has its next readings judged against the median and MAD of their windows: one table of
  ``window_points`` cells per reading, sorted.

*Certainly not an outlier.* The reach ``k × max(1.4826 × MAD, min_scale)`` is never below the
*floor* ``k × min_scale`` (rounded multiplication by ``k > 0`` is monotone), and the median of a
window lies between the window's smallest and largest value — also as rounded, since
``(a + b) / 2`` stays within ``[a, b]`` unless ``a + b`` overflows; and then the median is
infinite, so are every deviation from it, the MAD and the reach, and nothing is an outlier
(``inf > inf`` is false). As rounded subtraction is monotone too, a reading ``v`` with
``v − max ≥ −floor`` and ``v − min ≤ floor`` (both rounded) has ``|v − median| ≤ floor ≤
reach`` for a finite median: not an outlier, whatever the MAD. The fast path checks that,
first for all of a slot's remaining readings against the smallest and largest of its window
and those readings together (if all of them are taken in, every window along the way holds
only such values) — which settles a slot of steady noise in a single step —, otherwise
reading by reading against the exact smallest and largest of each reading's window (a sliding
minimum and maximum over the window followed by the readings), up to the first reading in
doubt. Readings too early to be judged (fewer than ``min_points`` in the window) are taken in
regardless.

*Several exact verdicts per step.* The exact path judges a slot's next few readings (a
*spell*) each against the window it has if every reading before it was taken in. That is so
up to the first outlier that is not taken in by itself — one held out, or one completing a
level shift with held ones — whose own window is therefore right as well: every verdict up to
and including it is exact. Once a shift is taken in, further outliers of the run go in too, so
a leak's ramp is judged a spell at a time. With the exact median, the floor settles most
readings again (``|v − median| ≤ floor``); the MAD is worked out only for the others and for
the readings after an outlier, whose events show the reach.

The fast path gives no median or reach; none is needed, as an event only comes with a change
of level, i.e. at an outlier or at the reading after one (or the first reading while the
alarm is up), and those are always judged exactly.

A step costs a few plain rounds (one reading per slot, judged exactly in one table). Where
outliers come thick and fast (tiny windows, quantised readings with a MAD of 0) it takes the
slots no further than a few rounds would, and the loop falls back to plain rounds for a while
(see :attr:`SpikeLane.worth`). When only a few slots are left with readings (one sensor's long
history), an array step costs more than judging those readings one by one, so the rest of them
go through the reference's own arithmetic (:meth:`rules.spike.SpikeRule.spread`, with the fast
path's test before it) instead.

Exactness. Each window is a ring buffer (oldest at ``head``) padded with NaN, which ``sort``
puts after every number; the median is then read from the sorted row at the positions
:func:`statistics.median` uses — the middle value, or ``(a + b) / 2`` of the two middle ones —
and the MAD the same way from the absolute deviations (sorted, or, when every row holds the
same number of values, picked from the sorted row without a second sort: see :func:`_mad`),
with the reference's operations in the reference's order, so every verdict, median and reach is
the reference's bit for bit (a zero's sign aside, which no result shows). The latch does not
depend on the window: once every reading has its verdict, the levels go through
:meth:`LatchColumns.advance` for the whole batch at once.

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
    """Per observation of a batch (grouped order): whether it is an outlier; whether it was
    judged (enough points) with the window's median and ``k × scale`` before it — those three
    are only sure where the level can change (outliers, the reading after one, the first
    reading while the alarm is up); elsewhere they may be left ``False``, 0 and 0 or NaN."""

    judged: Bools
    outlier: Bools
    median: Floats
    reach: Floats


def _median(ordered: Floats, count: Ints) -> Floats:
    """:func:`statistics.median` of each sorted row's ``count`` values (NaN after them)."""
    c = int(count[0])
    if c > 0 and not (count != c).any():
        lower, upper = (c - 1) // 2, c // 2
        middle: Floats = ordered[:, upper] if c % 2 else (ordered[:, lower] + ordered[:, upper]) / 2
        return middle
    rows = np.arange(len(count))
    lower_at, upper_at = np.maximum((count - 1) // 2, 0), count // 2
    high = ordered[rows, upper_at]
    return np.where(count % 2 == 1, high, (ordered[rows, lower_at] + high) / 2)


def _mad(ordered: Floats, median: Floats, count: Ints) -> Floats:
    """:func:`statistics.median` of the absolute deviations from ``median`` of each sorted
    row's ``count`` values.

    When every row holds the same number ``c`` of values (the steady state), no second sort is
    needed: with ``d = x − median`` ascending along a sorted row (rounded subtraction is
    monotone), the ``t`` smallest ``|d|`` are ``t`` neighbours, and the largest ``|d|`` of
    neighbours ``i..i+t−1`` is ``max(−d[i], d[i+t−1])``; so the ``t``-th smallest ``|d|`` is
    the smallest such maximum over ``i`` — the same rounded values the reference sorts, picked
    exactly. The columns are worked on as lines (a transposed copy), so that every step runs
    over contiguous memory. Otherwise the deviations are sorted.
    """
    c = int(count[0])
    if c > 0 and not (count != c).any():
        lower, upper = (c - 1) // 2, c // 2
        d = np.ascontiguousarray(ordered[:, :c].T) - median
        negated = -d

        def smallest(t: int) -> Floats:
            """The ``t``-th smallest ``|d|`` of each row."""
            span = c - t + 1
            least: Floats = np.minimum.reduce(np.maximum(negated[:span], d[t - 1 :]), axis=0)
            return least

        high = smallest(upper + 1)
        return high if c % 2 else (smallest(lower + 1) + high) / 2
    rows = np.arange(len(count))
    lower_at, upper_at = np.maximum((count - 1) // 2, 0), count // 2
    deviations = np.abs(ordered - median[:, None])
    deviations.sort(axis=1)
    high = deviations[rows, upper_at]
    return np.where(count % 2 == 1, high, (deviations[rows, lower_at] + high) / 2)


def segment_range(values: Floats, start: Ints, stop: Ints) -> tuple[Floats, Floats]:
    """The smallest and largest of ``values[start[i]:stop[i]]`` for each ``i`` (non-empty,
    disjoint ranges in increasing order)."""
    if (stop[:-1] == start[1:]).all():  # back to back, as on a batch's first step
        part, at = values[int(start[0]) : int(stop[-1])], start - start[0]
    else:
        lengths = stop - start
        at = np.zeros(len(start), np.int64)
        np.cumsum(lengths[:-1], out=at[1:])
        total = int(at[-1] + lengths[-1])
        part = values[np.repeat(start - at, lengths) + np.arange(total, dtype=np.int64)]
    return np.minimum.reduceat(part, at), np.maximum.reduceat(part, at)


def sliding_range(table: Floats, points: int, h: int) -> tuple[Floats, Floats]:
    """The smallest and largest of ``table[t : t + points]`` (along axis 0) for ``t < h``:
    minima and maxima of runs doubling in length, then two overlapping runs per window."""
    low, high, span = table, table, 1
    while 2 * span <= points:
        low = np.minimum(low[:-span], low[span:])
        high = np.maximum(high[:-span], high[span:])
        span *= 2
    other = points - span  # the second run ends where the window does; it overlaps the first
    return (
        np.minimum(low[:h], low[other : other + h]),
        np.maximum(high[:h], high[other : other + h]),
    )


class Windows:
    """The windows, held outliers and runs of a set of slots, with each slot's parameters.

    ``values[s]`` is a ring of ``points[s]`` cells, oldest at ``head[s]``; ``count[s]`` cells
    are in use and every other cell is NaN (a non-full window starts at cell 0), so sorting a
    row puts the window's values first. ``held[s]`` starts with the ``nheld[s]`` outliers held
    out (the cells after them mean nothing). ``floor[s]`` is ``k × min_scale``, the least
    reach. Rows beyond ``len(self)`` are spare capacity, so adding slots one by one does not
    copy the tables each time.
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
        self.floor = np.zeros(0, np.float64)
        self.level = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return self.size

    _COLUMNS = (
        "head", "count", "nheld", "run", "points", "min_points", "shift", "k", "min_scale",
        "floor", "level",
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
        self.floor[row] = rule.k * rule.min_scale
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

    def settle(self, rows: Ints, taken: Ints, start: Ints, values: Floats) -> None:
        """Take ``values[start[i] : start[i] + taken[i]]`` (at least one) into each of ``rows``
        (distinct), each reading by itself: the window becomes
        ``(*window, *readings)[-window_points:]``, nothing is held, the run is over."""
        self.nheld[rows] = 0
        self.run[rows] = 0
        if int(taken.max()) == 1:
            self.push(rows, values[start])
            return
        full = self.count[rows] == self.points[rows]
        if full.any():
            self._rotate(rows[full], taken[full], start[full], values)
        if not full.all():
            short = ~full
            self._rewrite(rows[short], taken[short], start[short], values)

    def _rotate(self, rows: Ints, taken: Ints, start: Ints, values: Floats) -> None:
        """:meth:`settle` for full windows: the ring's oldest cells take the last readings
        (as many as fit), its head moves on past them."""
        points, head = self.points[rows], self.head[rows]
        fit = np.minimum(taken, points)
        j = np.arange(int(fit.max()), dtype=np.int64)
        which = (taken - fit)[:, None] + j  # the reading of the run going in
        cell = (head[:, None] + which) % points[:, None]
        source = start[:, None] + which
        if (fit == fit[0]).all():
            self.values[rows[:, None], cell] = values[source]
        else:
            use = j < fit[:, None]
            target = np.broadcast_to(rows[:, None], use.shape)[use]
            self.values[target, cell[use]] = values[source[use]]
        self.head[rows] = (head + taken) % points

    def _rewrite(self, rows: Ints, taken: Ints, start: Ints, values: Floats) -> None:
        """:meth:`settle` for windows not full yet: the rows are rewritten oldest first from
        cell 0 up to the longest new window (cells after a window were NaN already, as a
        window never shrinks)."""
        points, count, head = self.points[rows], self.count[rows], self.head[rows]
        new = np.minimum(count + taken, points)
        j = np.arange(int(new.max()), dtype=np.int64)
        place = (count + taken - new)[:, None] + j  # in (*window, *readings)
        cell = (head[:, None] + place) % points[:, None]
        kept = self.values[rows[:, None], cell]
        read = values[np.clip(start[:, None] + place - count[:, None], 0, len(values) - 1)]
        cells = np.where(place < count[:, None], kept, read)
        self.values[rows, : len(j)] = np.where(j < new[:, None], cells, np.nan)
        self.head[rows] = 0
        self.count[rows] = new

    def absorb(self, rows: Ints, values: Floats, outlier: Bools) -> None:
        """Take each of ``rows``' (distinct) new reading in or hold it out, as the reference."""
        if not outlier.any():
            self.push(rows, values)
            self.run[rows] = 0
            self.nheld[rows] = 0
            return
        run, shift, nheld = self.run[rows], self.shift[rows], self.nheld[rows]
        shifted = outlier & (run + 1 >= shift)
        held = outlier & ~shifted
        if shifted.any():
            some, count = rows[shifted], nheld[shifted]
            for j in range(int(count.max())):
                these = some[count > j]
                self.push(these, self.held[these, j])
        self.push(rows[~held], values[~held])
        if held.any():
            these = rows[held]
            self.held[these, nheld[held]] = values[held]
        self.nheld[rows] = np.where(held, nheld + 1, 0)
        self.run[rows] = np.where(held, run + 1, np.where(shifted, shift, 0))

    def judge_lines(
        self, who: Ints, ordered: Floats, count: Ints, values: Floats, also: Bools | None = None
    ) -> tuple[Bools, Floats, Floats, Bools]:
        """Whether each of ``values`` is judged, the median and reach it is judged against and
        whether it is an outlier, each against a sorted window (``ordered``, a line of
        ``count`` values each) of a rule of row ``who``.

        The reach is only worked out where the median leaves doubt (further than the floor
        from the value) and where ``also``; it is NaN elsewhere (see :meth:`fill_reach`)."""
        judged = count >= self.min_points[who]
        reach = np.full(len(values), np.nan)
        with np.errstate(all="ignore"):  # Python floats overflow to inf silently, as here
            median = _median(ordered, count)
            off = np.abs(values - median)
            doubt = judged & ~(off <= self.floor[who])
            need = doubt if also is None else doubt | (also & judged)
            self.fill_reach(who, ordered, count, median, need, reach)
            outlier = doubt & (off > reach)
        return judged, median, reach, outlier

    def fill_reach(
        self, who: Ints, ordered: Floats, count: Ints, median: Floats, need: Bools, reach: Floats
    ) -> None:
        """``k × max(1.4826 × MAD, min_scale)`` into ``reach`` where ``need``, for the lines of
        :meth:`judge_lines`."""
        at = np.flatnonzero(need)
        if not len(at):
            return
        with np.errstate(all="ignore"):
            if len(at) == len(need):  # every line: no copies to make
                mad = _mad(ordered, median, count)
                reach[:] = self.k[who] * np.maximum(MAD_TO_SIGMA * mad, self.min_scale[who])
                return
            rows = who[at]
            mad = _mad(ordered[at], median[at], count[at])
            reach[at] = self.k[rows] * np.maximum(MAD_TO_SIGMA * mad, self.min_scale[rows])

    def replay(
        self,
        row: int,
        rule: SpikeRule,
        values: list[float],
        verdicts: Verdicts,
        at: int,
        *,
        after: bool,
        quick: bool,
    ) -> None:
        """Judge ``values`` one by one for ``row`` with the reference's arithmetic, writing
        the verdicts from grouped position ``at`` on (for the few slots left at the end).

        With ``quick``, a reading that is certainly not an outlier (the fast path's test, on
        the window's smallest and largest value) is taken in without its spread, unless it
        follows an outlier (the alarm may clear there; ``after``: the one before the first)."""
        window = deque(self.window(row), maxlen=rule.window_points)
        held = list(self.held_values(row))
        run = int(self.run[row])
        floor = float(self.floor[row])
        min_points = rule.min_points
        outlier = after
        for i, value in enumerate(values, start=at):
            if quick and not outlier and len(window) >= min_points:
                low, high = min(window), max(window)
                if value - high >= -floor and value - low <= floor:
                    window.append(value)
                    held, run = [], 0
                    continue
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


@dataclass(frozen=True, slots=True)
class Cursors:
    """Where each working row of :meth:`SpikeLane.judge` stands in its readings.

    ``at`` is the next reading (grouped position), ``end`` one past the last. ``exact``: the
    next reading goes to the exact path; ``after``: the reading before it was an outlier (or,
    before the first, the alarm is up), so the next one may clear the alarm. ``ahead`` and
    ``spell`` are how many readings the next fast and exact step take on at most.
    """

    at: Ints
    end: Ints
    exact: Bools
    after: Bools
    ahead: Ints
    spell: Ints


class SpikeLane:
    """Every column-friendly spike rule of a fleet."""

    kind = "spike"

    python_below = 10
    """Below this many slots left with readings, the rest are judged one by one: an array
    step costs several hundred microseconds, a reading judged in Python a few."""

    horizon = 256
    """A slot on the fast path takes on all its remaining readings at first; after a reading
    in doubt, :attr:`restart` of them, then twice as many at each step while none is in doubt,
    up to this many (and then all again). 0 turns the fast path off, so that every reading
    goes through the exact path."""

    restart = 8
    """See :attr:`horizon`: a slot in a leak episode has a reading in doubt every few
    readings, and a long table for it would be wasted."""

    spell = 8
    """At most this many readings per slot are judged in one exact step (see
    :meth:`_judge_exactly`): as many as came before the outlier that ended the last spell
    (at least one), twice as many after a spell without one. 1 judges every reading alone."""

    lines = 4096
    """At most about this many windows are sorted in one exact step: spells are shortened
    when many slots take part (down to one reading each, a table of a window per slot), as a
    larger table outgrows the caches and costs more per window than the steps it saves."""

    worth = 8
    """A step (fast and exact paths) is worth its cost if it takes the slots this many
    readings further on average. After one that does not (outliers come thick and fast), the
    next 8 steps are plain rounds — one reading per slot, judged exactly in one table — and
    twice as many after each further step that does not (up to 128)."""

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
        ts, values = seg.gather(batch.ts), seg.gather(batch.value)
        keep = newer(seg, ts, np.isfinite(values), self.latch.last_ts_ms)
        if not keep.any():
            return []
        sub = seg
        if not keep.all():
            sub, ts, values = seg.take(keep), ts[keep], values[keep]
        verdicts = self.judge(sub, values)
        level = np.zeros(len(values), np.int64)
        outliers = np.flatnonzero(verdicts.outlier)
        level[outliers] = self.windows.level[sub.slot[outliers]]
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

        Step after step (:meth:`_step`), the slots not marked ``exact`` go down the fast path,
        which stops a slot at its first reading in doubt and marks it; then the marked ones go
        down the exact path (the reading in doubt, the reading after an outlier, the first
        reading while the alarm is up, a reading whose window is wide). Steps that do not pay
        give way to plain rounds for a while (:attr:`worth`). Once fewer than
        :attr:`python_below` slots are left, their remaining readings are replayed one by one
        (:meth:`Windows.replay`).
        """
        n = len(values)
        verdicts = Verdicts(np.zeros(n, np.bool_), np.zeros(n, np.bool_), np.zeros(n), np.zeros(n))
        slots = seg.seg_slot
        # A streaming batch often has one reading of every slot, in slot order: then the rows
        # are the lane's own and need no working copy.
        whole = len(slots) == len(self.windows) and bool((slots == np.arange(len(slots))).all())
        work = self.windows if whole else self.windows.take(slots)
        m = len(slots)
        after = self.latch.level[slots] != 0
        cursors = Cursors(
            at=seg.first.copy(),
            end=seg.last + 1,
            exact=after.copy(),
            after=after,
            ahead=np.full(m, max(self.horizon, 1), np.int64),
            spell=np.full(m, max(self.spell, 1), np.int64),
        )
        at, end = cursors.at, cursors.end
        rows = np.arange(m, dtype=np.int64)
        rounds, backoff = 0, 8
        while len(rows) and len(rows) >= self.python_below:
            if rounds:
                # Plain rounds: every slot's next reading judged exactly, in one table.
                self._judge_round(work, rows, cursors, values, verdicts)
                rounds -= 1
            else:
                moved = int(at[rows].sum())
                self._step(work, rows, cursors, values, verdicts)
                # A step costs several plain rounds; it must take slots further to pay. When
                # it does not (outliers come thick and fast), plain rounds for a while.
                if int(at[rows].sum()) - moved < self.worth * len(rows):
                    rounds, backoff = backoff, min(2 * backoff, 128)
                else:
                    backoff = 8
            rows = rows[at[rows] < end[rows]]
        for row in rows.tolist():
            start, stop = int(at[row]), int(end[row])
            rule = self.rules[int(slots[row])]
            listed: list[float] = values[start:stop].tolist()
            work.replay(
                row,
                rule,
                listed,
                verdicts,
                start,
                after=bool(cursors.after[row]),
                quick=self.horizon > 0,
            )
        if not whole:
            self.windows.put(slots, work)
        return verdicts

    def _step(
        self, work: Windows, rows: Ints, cursors: Cursors, values: Floats, verdicts: Verdicts
    ) -> None:
        """The fast path for the slots not marked ``exact``, then the exact path for the
        marked ones."""
        at, end, exact = cursors.at, cursors.end, cursors.exact
        # A fast step has its cost whatever it does: for a slot's last reading (all of a
        # streaming batch), or for a few slots beside many on the exact path, it costs more
        # than judging their next readings exactly too.
        exact[rows[at[rows] + 1 == end[rows]]] = True
        free = rows[~exact[rows]]
        if len(free):
            if self.horizon > 0 and 8 * len(free) >= len(rows) - len(free):
                self._take_quiet(work, free, cursors, values)
            else:
                exact[free] = True
        due = rows[exact[rows] & (at[rows] < end[rows])]
        if len(due):
            self._judge_exactly(work, due, cursors, values, verdicts)

    def _judge_round(
        self, work: Windows, rows: Ints, cursors: Cursors, values: Floats, verdicts: Verdicts
    ) -> None:
        """Judge every one of ``rows``' next reading exactly, in one table."""
        at = cursors.at
        outlier, wide = self._judge_one(work, rows, at[rows], values, verdicts, cursors.after[rows])
        at[rows] += 1
        cursors.after[rows] = outlier
        cursors.exact[rows] = outlier | wide

    def _judge_exactly(
        self, work: Windows, rows: Ints, cursors: Cursors, values: Floats, verdicts: Verdicts
    ) -> None:
        """Judge each of ``rows``' next readings against its window's median and MAD, a spell
        of them (see :meth:`_spell`), and take them in or hold the outlier out. A row stays
        on the exact path after an outlier (the next reading may clear the alarm), and while
        its window is too wide for the fast path to settle much (more than the floor between
        its smallest and largest value, as in a leak's wake). Rows with a single
        reading to judge are judged in one table, their windows as they are (a ring sorts
        like the window it holds)."""
        at, spells = cursors.at, cursors.spell
        # Many rows at a time are judged a reading at a time: a larger table would outgrow the
        # caches, and cost more per window than the steps it saves.
        most = max(self.lines // len(rows), 1)
        limit = np.minimum(np.minimum(cursors.end[rows] - at[rows], spells[rows]), most)
        single = limit == 1
        if 2 * np.count_nonzero(single) >= len(rows):
            # Mostly single readings (outliers come thick and fast): one table for all.
            single[:] = True
        if single.any():
            one = rows[single]
            outlier, wide = self._judge_one(
                work, one, at[one], values, verdicts, cursors.after[one]
            )
            at[one] += 1
            cursors.after[one] = outlier
            cursors.exact[one] = outlier | wide
            spells[one] = np.where(outlier, 1, np.minimum(2 * spells[one], self.spell))
        rows, limit = rows[~single], limit[~single]
        if not len(rows):
            return
        taken, stop, shifted, wide = self._spell(work, rows, cursors, limit, values, verdicts)
        moved = taken > 0
        if moved.any():
            work.settle(rows[moved], taken[moved], at[rows[moved]], values)
            work.run[rows[shifted]] = work.shift[rows[shifted]]
        at[rows] += taken
        if stop.any():
            these = rows[stop]
            work.absorb(these, values[at[these]], np.ones(len(these), np.bool_))
            at[these] += 1
        cursors.after[rows] = stop | shifted
        cursors.exact[rows] = stop | shifted | wide
        # Outliers held out come in bursts (the start of a leak): the next spell is as long
        # as the readings before the one that ended this spell (one at least), twice as long
        # after a spell without one.
        spell = spells[rows]
        spells[rows] = np.where(stop, np.maximum(taken, 1), np.minimum(2 * spell, self.spell))

    @staticmethod
    def _judge_one(
        work: Windows, rows: Ints, at: Ints, values: Floats, verdicts: Verdicts, after: Bools
    ) -> tuple[Bools, Bools]:
        """Judge the reading at ``at`` of each of ``rows`` against its window, take it in or
        hold it out; return which were outliers, and which windows span more than the floor.
        ``after``: the reading before was an outlier."""
        ordered = work.values[rows]
        ordered.sort(axis=1)
        count = work.count[rows]
        current = values[at]
        judged, median, reach, outlier = work.judge_lines(rows, ordered, count, current, after)
        verdicts.judged[at], verdicts.outlier[at] = judged, outlier
        verdicts.median[at], verdicts.reach[at] = median, reach
        work.absorb(rows, current, outlier)
        with np.errstate(over="ignore", invalid="ignore"):
            span = ordered[np.arange(len(rows)), np.maximum(count - 1, 0)] - ordered[:, 0]
            return outlier, span > work.floor[rows]

    @staticmethod
    def _spell(
        work: Windows,
        rows: Ints,
        cursors: Cursors,
        limit: Ints,
        values: Floats,
        verdicts: Verdicts,
    ) -> tuple[Ints, Bools, Bools, Bools]:
        """The verdicts on ``rows``' next ``limit`` readings, each against the window it would
        have if those before it were taken in, one by one. That holds up to the first outlier
        that is *not* taken in by itself — one held out, or one completing a level shift with
        held ones: the verdicts up to it are written to ``verdicts``. Returns how many
        readings come before it, whether there is one, whether the last of those before it
        was an outlier (of a level shift already taken in: the run stands at
        ``consecutive_shift``), and whether the last window judged spans more than the floor.

        The windows are the runs of ``points`` cells (the largest window size of the rows) of
        a table with a column per row: the window oldest first (NaN above a short one), then
        the readings; in each, the cells older than its row's window size are made NaN.
        Sorted, each puts its NaN last and has its median and MAD read as in the reference."""
        m = len(rows)
        h = int(limit.max())
        count, head, sizes = work.count[rows], work.head[rows], work.points[rows]
        points = int(sizes.max())
        place = np.arange(points, dtype=np.int64)[:, None] - (points - count)
        window = work.values[rows, (head + place) % sizes]
        window[place < 0] = np.nan
        t = np.arange(h, dtype=np.int64)[:, None]
        at = cursors.at[rows] + np.minimum(t, limit - 1)
        readings = values[at]
        table = np.concatenate((window, readings))
        # Window ``t`` is table[t : t + points]; laid out one per line, reading t's after
        # reading t − 1's of every row.
        lines = np.empty((h, m, points))
        np.copyto(lines, np.lib.stride_tricks.sliding_window_view(table, points, axis=0)[:h])
        smaller = sizes < points
        if smaller.any():
            lines[:, np.arange(points) < (points - sizes)[:, None]] = np.nan
        ordered = lines.reshape(h * m, points)
        ordered.sort(axis=1)
        counts = np.minimum(count + t, sizes).ravel()
        who = np.tile(rows, h)
        flat = work.judge_lines(who, ordered, counts, readings.ravel())
        judged, median, reach = flat[0].reshape(h, m), flat[1].reshape(h, m), flat[2]
        outlier = flat[3].reshape(h, m) & (t < limit)
        # The run before each reading (as the reference counts it, up to the shift): the
        # outliers since the last reading that was not one, on top of the stored run if none.
        shift = work.shift[rows]
        last = np.maximum.accumulate(np.where(outlier, -1, t), axis=0)
        previous = np.empty_like(last)
        previous[0] = -1
        previous[1:] = last[:-1]
        run = np.minimum(np.where(previous < 0, work.run[rows] + t, t - previous - 1), shift)
        # An outlier goes into the window by itself once the run has reached the shift (its
        # held ones went in with it), or straight away with a shift of 1.
        stop = outlier & (run < shift) & (shift > 1)
        found: Bools = np.logical_or.reduce(stop, axis=0)
        taken: Ints = np.where(found, stop.argmax(axis=0), limit)
        upto = t <= np.where(found, taken, limit - 1)
        # A reading after an outlier may clear the alarm: its event shows the reach.
        follows = np.empty_like(outlier)
        follows[0] = cursors.after[rows]
        follows[1:] = outlier[:-1]
        need = (upto & follows & judged).ravel() & np.isnan(reach)
        work.fill_reach(who, ordered, counts, flat[1], need, reach)
        where = at[upto]
        verdicts.judged[where], verdicts.outlier[where] = judged[upto], outlier[upto]
        verdicts.median[where], verdicts.reach[where] = median[upto], reach.reshape(h, m)[upto]
        columns = np.arange(m)
        before = outlier[np.maximum(taken - 1, 0), columns] & (taken > 0)
        final = (limit - 1) * m + columns
        with np.errstate(over="ignore", invalid="ignore"):
            span = ordered[final, counts[final] - 1] - ordered[final, 0]
            wide: Bools = span > work.floor[rows]
        return taken, found, before, wide

    def _take_quiet(self, work: Windows, rows: Ints, cursors: Cursors, values: Floats) -> None:
        """Take in each of ``rows``' next readings that are certainly not outliers, up to its
        first reading in doubt (marked ``exact``) or ``ahead`` readings (all of them once
        ``ahead`` has reached the :attr:`horizon`)."""
        at, end = cursors.at, cursors.end
        start, left = at[rows], end[rows] - at[rows]
        count, floor = work.count[rows], work.floor[rows]
        cells = work.values[rows]
        ahead = cursors.ahead[rows]
        chunk = np.where(ahead >= self.horizon, left, np.minimum(ahead, left))
        # The chunk at once, against everything its windows can hold.
        low, high = segment_range(values, start, start + chunk)
        lo = np.fmin(np.fmin.reduce(cells, axis=1), low)
        hi = np.fmax(np.fmax.reduce(cells, axis=1), high)
        with np.errstate(over="ignore", invalid="ignore"):
            quiet = (count + chunk <= work.min_points[rows]) | (
                (high - lo <= floor) & (low - hi >= -floor)
            )
        grown = np.minimum(2 * ahead, max(self.horizon, 1))
        done = rows[quiet]
        if len(done):
            work.settle(done, chunk[quiet], start[quiet], values)
            at[done] += chunk[quiet]
            cursors.ahead[done] = grown[quiet]
        # A single reading is in doubt if that failed (it is judged, its bounds are the same);
        # longer chunks are checked reading by reading.
        alone = ~quiet & (chunk == 1)
        cursors.exact[rows[alone]] = True
        cursors.ahead[rows[alone]] = self.restart
        longer = ~quiet & (chunk > 1)
        if not longer.any():
            return
        rows, start, chunk, grown = rows[longer], start[longer], chunk[longer], grown[longer]
        # One table per window size; short chunks (after a doubt) apart from long ones, so
        # that a few long ones do not make a tall table for all.
        points = work.points[rows]
        kind = points * 2 + (chunk > self.restart)
        for key in np.unique(kind).tolist():
            group = kind == key
            some, p = rows[group], key // 2
            taken, doubt = self._quiet_run(work, some, p, start[group], chunk[group], values)
            moved = taken > 0
            if moved.any():
                work.settle(some[moved], taken[moved], at[some[moved]], values)
            at[some] += taken
            cursors.exact[some[doubt]] = True
            cursors.ahead[some] = np.where(doubt, self.restart, grown[group])

    @staticmethod
    def _quiet_run(
        work: Windows, rows: Ints, points: int, start: Ints, limit: Ints, values: Floats
    ) -> tuple[Ints, Bools]:
        """For ``rows`` whose windows hold up to ``points`` values: how many of the ``limit``
        readings from ``start`` are certainly not outliers, each judged against the smallest
        and largest of its own window supposing those before it were taken in; and whether a
        reading in doubt stopped the run.

        The table has a column per row and, down it, the window oldest first (a short window
        padded at the top with its oldest value, or an empty one with the first reading: the
        smallest and largest stay the same), then the readings; reading ``t``'s window is
        then the rows ``t .. t + points − 1`` above it."""
        h = int(limit.max())
        count, head = work.count[rows], work.head[rows]
        place = np.maximum(np.arange(points, dtype=np.int64)[:, None] - (points - count), 0)
        window = work.values[rows, (head + place) % points]
        t = np.arange(h, dtype=np.int64)[:, None]
        readings = values[start + np.minimum(t, limit - 1)]
        empty = count == 0
        if empty.any():
            window[:, empty] = readings[0, empty]
        smallest, largest = sliding_range(np.concatenate((window, readings)), points, h)
        floor = work.floor[rows]
        with np.errstate(over="ignore", invalid="ignore"):
            sure = ((readings - largest >= -floor) & (readings - smallest <= floor)) | (
                count + t < work.min_points[rows]
            )
        doubt = ~sure & (t < limit)
        stopped: Bools = np.logical_or.reduce(doubt, axis=0)
        taken: Ints = np.where(stopped, doubt.argmax(axis=0), limit)
        return taken, stopped

    def tick(self, now_ms: int, slots: Bools | None = None) -> Emitted:
        """Spike rules act on readings only."""
        return []
