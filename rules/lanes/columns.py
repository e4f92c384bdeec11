"""Segmented array primitives and the alarm latch as columns, shared by every lane.

A lane evaluates a batch of observations of many (sensor, rule) *slots* at once. The batch is
grouped by slot with the arrival order kept inside each slot (:class:`Segments`), so every
per-slot sequential rule of the reference engine (the newest reading wins, a latch follows its
set and clear marks, flapping counts the last N evaluations) becomes a segmented scan:
a running maximum, a forward fill, a windowed count. The reference, reading by reading, is
:mod:`rules.latch`; :func:`advance` gives exactly its levels, starts, histories and flapping
flags for latches without on-delay, off-delay or consecutive count (the lanes accept only such
rules and leave the others to the engine's object lane).

Integer columns hold ``None`` as :data:`NONE` (the smallest int64).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from rules.events import Change
from rules.latch import Delays, LatchState

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

NONE = int(np.iinfo(np.int64).min)
"""``None`` in an int64 column."""

_CHANGES = (Change.RAISED, Change.LEVEL_CHANGED, Change.CLEARED)


class Spare:
    """Room for per-slot columns to grow a slot at a time without being copied each time.

    :meth:`grow` makes named attributes of an owner (arrays with a row per slot) longer: each
    becomes the first rows of a buffer with spare rows, doubled when full, so adding ``n``
    slots one by one copies O(n) rows in all, and the attribute stays an ordinary array of
    exactly one row per slot (a view). An attribute that is not the view :meth:`grow` last
    gave it (assigned anew, widened) is copied into a fresh buffer at its next growth.
    """

    __slots__ = ("_buffers",)

    def __init__(self) -> None:
        self._buffers: dict[str, Any] = {}

    def grow(self, owner: object, names: Iterable[str], rows: int) -> None:
        """Make each of ``owner``'s attributes ``names`` ``rows`` rows long (``rows`` at least
        their length); the new rows are zeros, for the caller to set."""
        buffers = self._buffers
        for name in names:
            array = getattr(owner, name)
            buffer = buffers.get(name)
            if (
                buffer is None
                or array.base is not buffer
                or len(buffer) < rows
                or buffer.shape[1:] != array.shape[1:]
            ):
                old = len(array)
                buffer = np.zeros((max(rows, 2 * old, 16), *array.shape[1:]), array.dtype)
                buffer[:old] = array
                buffers[name] = buffer
            setattr(owner, name, buffer[:rows])


class _Counting:
    """``0, 1, …, n − 1`` as a read-only view of one shared array, grown on demand.

    The scans over a whole batch take it instead of a fresh ``arange`` of a million positions,
    which costs more in page faults (new memory, first touched) than in arithmetic."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values = np.zeros(0, np.int64)

    def __call__(self, n: int) -> Ints:
        if len(self._values) < n:
            values = np.arange(max(n, 2 * len(self._values)), dtype=np.int64)
            values.flags.writeable = False
            self._values = values
        view: Ints = self._values[:n]
        return view


counting = _Counting()
"""``counting(n)``: the positions ``0..n-1``, read-only (see :class:`_Counting`)."""


def opt(value: int) -> int | None:
    """A column value back to ``int | None``."""
    return None if value == NONE else int(value)


def col(value: int | None) -> int:
    """``int | None`` to a column value."""
    return NONE if value is None else value


@dataclass(frozen=True, slots=True)
class Segments:
    """A lane's observations grouped by slot, arrival order kept within each slot.

    ``order[i]`` is the caller's position of grouped observation ``i``. Segment ``s`` holds the
    grouped observations ``first[s]..last[s]`` of slot ``seg_slot[s]``; :attr:`seg_of` gives
    each observation's segment and :attr:`rank` its 1-based place in it. ``grouped``: the
    caller's observations came grouped already (``order`` is the identity), so :meth:`gather`
    hands their columns back as they are.
    """

    order: Ints
    slot: Ints
    first: Ints
    last: Ints
    seg_slot: Ints
    grouped: bool = False
    _sizes: Ints | None = field(default=None, repr=False, compare=False)
    _seg_of: Ints | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, slots: Ints) -> Segments:
        """Group ``slots`` (one per observation, in arrival order).

        The fleet engine hands a large batch's observations over grouped already (sorted by
        slot, arrival order kept within each): then there is nothing to sort, and only the
        segment bounds are worked out."""
        n = len(slots)
        grouped = n < 2 or bool((slots[1:] >= slots[:-1]).all())
        if grouped:
            order, ordered = counting(n), slots
        else:
            # A stable sort of small integers is a radix sort in numpy: five times faster than
            # the merge sort int64 gets, and a fleet has far fewer than 65,536 slots per lane.
            small = int(slots.min()) >= 0 and int(slots.max()) < 2**16
            keys = slots.astype(np.uint16) if small else slots
            order = np.argsort(keys, kind="stable").astype(np.int64)
            ordered = slots[order]
        starts = np.ones(n, dtype=np.bool_)
        if n:
            np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
        first = np.flatnonzero(starts).astype(np.int64, copy=False)
        last = np.empty_like(first)
        if len(first):
            last[:-1] = first[1:] - 1
            last[-1] = n - 1
        return cls(order, ordered, first, last, ordered[first], grouped)

    def __len__(self) -> int:
        return len(self.order)

    @property
    def seg_of(self) -> Ints:
        """Each observation's segment, worked out when first asked (the largest lanes never
        ask: an array per observation saved is worth its page faults)."""
        seg_of = self._seg_of
        if seg_of is None:
            # Segment numbers repeated: a cumulative sum of start flags costs several times
            # more (numpy converts the flags one by one).
            seg_of = counting(len(self.first)).repeat(self.sizes)
            object.__setattr__(self, "_seg_of", seg_of)
        return seg_of

    @property
    def sizes(self) -> Ints:
        """How many observations each segment has (worked out once)."""
        sizes = self._sizes
        if sizes is None:
            sizes = self.last - self.first + 1
            object.__setattr__(self, "_sizes", sizes)
        return sizes

    def expand(self, per_segment: Any) -> Any:
        """One value (or row) per segment, repeated for each of its observations: a third of
        the cost of looking each observation's up by its slot, for a large batch."""
        return per_segment.repeat(self.sizes, axis=0)

    @property
    def rank(self) -> Ints:
        """Each observation's 1-based place in its segment (worked out when asked: few
        lanes need it)."""
        n = len(self.order)
        if n == 0:
            return np.zeros(0, np.int64)
        rank: Ints = counting(n) - self.first[self.seg_of] + 1
        return rank

    def gather(self, column: Any) -> Any:
        """``column`` (one entry per caller's observation) in grouped order: the column itself
        when the observations came grouped."""
        return column if self.grouped else column[self.order]

    def take(self, keep: Bools) -> Segments:
        """The observations where ``keep`` (grouped positions), still grouped by slot; their
        ``order`` stays the caller's positions. Nothing is sorted again: the kept part of each
        segment is a segment, unless it is empty."""
        sizes = np.add.reduceat(keep, self.first, dtype=np.int64) if len(keep) else self.first
        some = sizes > 0
        sizes = sizes[some]
        first = np.zeros(len(sizes), np.int64)
        np.cumsum(sizes[:-1], out=first[1:])
        order = np.flatnonzero(keep) if self.grouped else self.order[keep]
        return Segments(order, self.slot[keep], first, first + sizes - 1, self.seg_slot[some])

    def segments(self, keep: Bools) -> tuple[Segments, Ints]:
        """The whole segments where ``keep`` (one flag per segment), without sorting again;
        and their observations' grouped positions in ``self``."""
        lengths = (self.last - self.first + 1)[keep]
        first = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        last = first + lengths - 1
        at = np.repeat(self.first[keep] - first, lengths) + counting(int(lengths.sum()))
        sub = Segments(self.order[at], self.slot[at], first, last, self.seg_slot[keep])
        return sub, at

    def previous(self, values: Ints, initial: Ints) -> Ints:
        """Each observation's predecessor in its segment; ``initial[slot]`` for the first."""
        out = np.empty_like(values)
        if len(values):
            out[1:] = values[:-1]
            out[self.first] = initial[self.seg_slot]
        return out


def running_max(seg: Segments, values: Ints, initial: Ints) -> Ints:
    """The maximum of ``initial[slot]`` and each observation's *earlier* values in its segment
    (:data:`NONE` counts as nothing); exclusive, so the first one gets ``initial[slot]``."""
    n = len(values)
    out = initial[seg.slot].copy() if n else np.zeros(0, np.int64)
    if n == 0:
        return out
    present = values != NONE
    if present.any():
        lo = int(values[present].min())
        hi = int(values[present].max())
        span = hi - lo + 2
        if span * (len(seg.first) + 1) < 2**62:
            key = np.where(present, values - lo + 1, 0) + seg.seg_of * span
            acc = np.maximum.accumulate(key) - seg.seg_of * span
            before = np.zeros(n, dtype=np.int64)
            before[1:] = acc[:-1]
            before[seg.first] = 0
            earlier = np.where(before > 0, before + lo - 1, NONE)
            return np.maximum(out, earlier)
        for s, (a, b) in enumerate(zip(seg.first.tolist(), seg.last.tolist(), strict=True)):
            best = int(initial[seg.seg_slot[s]])
            for i in range(a, b + 1):
                out[i] = best
                if values[i] != NONE:
                    best = max(best, int(values[i]))
    return out


def newer(seg: Segments, ts: Ints, counts: Bools, last_ts: Ints) -> Bools:
    """Observations that count and are newer than every counted one before them (and than the
    slot's ``last_ts``): the reference engine's stale check, done for a whole batch."""
    if len(ts) == 0:
        return np.zeros(0, dtype=np.bool_)
    # The usual case: every reading counts and each slot's come in time order. Only the
    # segments where that fails need the running maximum.
    fine = np.empty(len(ts), dtype=np.bool_)
    fine[1:] = ts[1:] > ts[:-1]
    fine[seg.first] = ts[seg.first] > last_ts[seg.seg_slot]
    fine &= counts
    odd = ~np.logical_and.reduceat(fine, seg.first)
    if not odd.any():
        return fine
    part, pos = seg.segments(odd)
    seen = running_max(part, np.where(counts[pos], ts[pos], NONE), last_ts)
    fine[pos] = counts[pos] & (ts[pos] > seen)
    return fine


def latch_marks(reached: Bools, held: Bools) -> npt.NDArray[np.int8]:
    """:func:`forward_fill`'s marks for a latch set where ``reached`` and reset where not
    ``held``: +1, else 0 where held, else −1 (in int8 arithmetic: nested ``where`` on Python
    ints makes int64 arrays and costs dozens of times more)."""
    marks = np.add(reached, reached | held, dtype=np.int8)
    marks -= 1
    return marks


def forward_fill(seg: Segments, marks: npt.NDArray[np.int8], initial: Bools) -> Bools:
    """A latch per segment: +1 sets, -1 resets, 0 keeps; ``initial[slot]`` before the first."""
    n = len(marks)
    if n == 0:
        return np.zeros(0, dtype=np.bool_)
    # The latch a segment starts from as a mark on its first observation (where that has none
    # of its own): the running maximum of marked positions then never reaches back into the
    # segment before, and the scan needs no segment bounds.
    first = seg.first
    marks = marks.copy()
    blank = first[marks[first] == 0]
    marks[blank] = np.where(initial[seg.slot[blank]], 1, -1)
    last = np.where(marks != 0, counting(n), 0)
    np.maximum.accumulate(last, out=last)
    filled: Bools = marks[last] == 1
    return filled


def fill_values(seg: Segments, at: Bools, values: Ints, initial: Ints) -> Ints:
    """Per observation, ``values`` of the latest observation of its segment (itself included)
    where ``at``; ``initial[slot]`` before the first such one."""
    n = len(at)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    index = np.where(at, np.arange(n, dtype=np.int64), -1)
    last = np.maximum.accumulate(index)
    own = last >= seg.first[seg.seg_of]
    return np.where(own, values[np.maximum(last, 0)], initial[seg.slot])


def hysteresis_count(seg: Segments, reached: Bools, held: Bools, latched_before: Bools) -> Ints:
    """How many levels are latched after each observation, levels being independent latches
    (set where reached, reset where not held) — the reference latch without delays when the
    levels' set and clear points are monotone. ``reached``/``held`` are ``(n, L)``;
    ``latched_before`` is ``(slots, L)``."""
    n, width = reached.shape
    count = np.zeros(n, dtype=np.int64)
    for j in range(width):
        count += forward_fill(seg, latch_marks(reached[:, j], held[:, j]), latched_before[:, j])
    return count


@dataclass(frozen=True, slots=True)
class Moves:
    """The level changes of a batch, one entry per change, in grouped order."""

    at: Ints
    """Grouped positions of the observations that changed the level."""
    old: Ints
    new: Ints
    start_ms: Ints
    flapping: Bools

    def changes(self) -> list[Change]:
        """Raised, level changed or cleared, per entry."""
        kinds = np.where(self.old == 0, 0, np.where(self.new == 0, 2, 1)).tolist()
        return [_CHANGES[k] for k in kinds]


class LatchColumns:
    """The :class:`~rules.latch.LatchState` of every slot of a lane, as columns.

    Only latches without pending on-delays or a running off-delay fit (lanes take rules
    without delays, whose latches never have either). The flapping parameters are per slot.
    """

    _COLUMNS = (
        "level", "start_ms", "last_ts_ms", "history", "evaluations", "flapping", "window",
        "enter", "leave",
    )  # fmt: skip

    def __init__(self) -> None:
        self._spare = Spare()
        self.level = np.zeros(0, np.int64)
        self.start_ms = np.zeros(0, np.int64)
        self.last_ts_ms = np.zeros(0, np.int64)
        self.history = np.zeros(0, np.uint64)
        self.evaluations = np.zeros(0, np.int64)
        self.flapping = np.zeros(0, np.bool_)
        self.window = np.zeros(0, np.int64)
        self.enter = np.zeros(0, np.float64)
        self.leave = np.zeros(0, np.float64)

    def __len__(self) -> int:
        return len(self.level)

    def grow(self, delays: Delays) -> int:
        """Add a slot with an initial latch; return its number. Amortised O(1): the columns
        grow into spare rows (:class:`Spare`)."""
        slot = len(self.level)
        self._spare.grow(self, self._COLUMNS, slot + 1)
        self.level[slot] = 0
        self.start_ms[slot] = NONE
        self.last_ts_ms[slot] = NONE
        self.history[slot] = 0
        self.evaluations[slot] = 0
        self.flapping[slot] = False
        self.window[slot] = delays.flap_window
        self.enter[slot] = delays.flap_enter
        self.leave[slot] = delays.flap_leave
        return slot

    @staticmethod
    def fits(state: LatchState) -> bool:
        """Whether a latch can live in columns (nothing pending, no off-delay running)."""
        return not state.pending and state.release_ms is None

    def get(self, slot: int) -> LatchState:
        """The slot's latch as the reference value."""
        return LatchState(
            level=int(self.level[slot]),
            start_ms=opt(int(self.start_ms[slot])),
            last_ts_ms=opt(int(self.last_ts_ms[slot])),
            pending=(),
            release_ms=None,
            history=int(self.history[slot]),
            evaluations=int(self.evaluations[slot]),
            flapping=bool(self.flapping[slot]),
        )

    def put(self, slot: int, state: LatchState) -> None:
        """Store a latch that :meth:`fits`; ``ValueError`` otherwise."""
        if not self.fits(state):
            msg = "a latch with a delay in progress cannot be held in columns"
            raise ValueError(msg)
        self.level[slot] = state.level
        self.start_ms[slot] = col(state.start_ms)
        self.last_ts_ms[slot] = col(state.last_ts_ms)
        self.history[slot] = np.uint64(state.history)
        self.evaluations[slot] = state.evaluations
        self.flapping[slot] = state.flapping

    def advance(self, seg: Segments, ts: Ints, level: Ints) -> Moves:
        """Apply one evaluation per observation of ``seg``, whose level after it is ``level``.

        Updates level, start, history, evaluations and flapping of the slots (not
        ``last_ts_ms``: what counts as seen differs by kind) and returns the changes with the
        start and flapping flag their events carry — as :func:`rules.latch.step` and
        :func:`rules.latch.flap` would, one evaluation at a time.
        """
        n = len(level)
        if n == 0:
            none = np.zeros(0, np.int64)
            return Moves(none, none, none, none, np.zeros(0, np.bool_))
        before = seg.previous(level, self.level)
        changed = level != before
        slots, last = seg.seg_slot, seg.last
        moved = np.logical_or.reduceat(changed, seg.first)
        # Most slots are quiet: no change in this batch, no change remembered, not flapping.
        # Their latch only counts the evaluations; the scans below run on the others alone.
        busy = moved | (self.history[slots] != 0) | self.flapping[slots]
        lengths = last - seg.first + 1
        quiet = slots[~busy]
        self.evaluations[quiet] = np.minimum(
            self.evaluations[quiet] + lengths[~busy], self.window[quiet]
        )
        self.level[slots] = level[last]
        at = np.flatnonzero(changed)
        if not busy.any():
            none = np.zeros(0, np.int64)
            return Moves(none, none, none, none, np.zeros(0, np.bool_))
        sub, pos = seg.segments(busy)
        sub_ts, sub_changed, sub_before = ts[pos], changed[pos], before[pos]
        raised = sub_changed & (sub_before == 0)
        start = fill_values(sub, raised, sub_ts, self.start_ms)
        flags = self._flap(sub, sub_changed)
        # A clear forgets the start; a latch that stayed at 0 keeps what it had (the reference
        # carries it through its quiet path).
        sub_level_last = level[pos[sub.last]]
        self.start_ms[sub.seg_slot] = np.where(
            (sub_level_last == 0) & moved[busy], NONE, start[sub.last]
        )
        self._history(sub, sub_changed)
        where = np.flatnonzero(sub_changed)  # the same changes as ``at``, in the same order
        starts = start[where]
        return Moves(
            at=at,
            old=before[at],
            new=level[at],
            start_ms=np.where(starts == NONE, ts[at], starts),
            flapping=flags[where],
        )

    def _flap(self, seg: Segments, changed: Bools) -> Bools:
        window = self.window[seg.slot]
        k = seg.rank
        recent = np.minimum(k, window)
        sums = np.concatenate(([0], np.cumsum(changed, dtype=np.int64)))
        idx = np.arange(1, len(changed) + 1)
        count = sums[idx] - sums[idx - recent]
        old_bits = np.clip(window - k, 0, 63).astype(np.uint64)
        mask = (np.uint64(1) << old_bits) - np.uint64(1)
        old = np.where(k < window, self.history[seg.slot] & mask, np.uint64(0))
        count = count + np.bitwise_count(old).astype(np.int64)
        evaluations = np.minimum(self.evaluations[seg.slot] + k, window)
        fraction = count / window
        enter = (fraction >= self.enter[seg.slot]) & (2 * evaluations >= window)
        leave = fraction <= self.leave[seg.slot]
        marks = np.where(enter, 1, np.where(leave, -1, 0)).astype(np.int8)
        flags = forward_fill(seg, marks, self.flapping)
        slots, last = seg.seg_slot, seg.last
        self.flapping[slots] = flags[last]
        self.evaluations[slots] = evaluations[last]
        return flags

    def _history(self, seg: Segments, changed: Bools) -> None:
        slots = seg.seg_slot
        window = self.window[slots]
        count = seg.last - seg.first + 1
        full = np.uint64(2**64 - 1)
        mask = np.where(
            window >= 64, full, (np.uint64(1) << np.minimum(window, 63).astype(np.uint64)) - 1
        ).astype(np.uint64)
        shift = np.minimum(count, 63).astype(np.uint64)
        hist = np.where(count < window, (self.history[slots] << shift) & mask, np.uint64(0))
        bits = changed.astype(np.uint64)
        for b in range(int(min(count.max(), window.max()))):
            take = (b < count) & (b < window)
            pos = np.where(take, seg.last - b, 0)
            hist |= np.where(take, bits[pos] << np.uint64(b), np.uint64(0))
        self.history[slots] = hist
