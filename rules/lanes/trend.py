"""Rate and projection rules as columns: every slot's sample window in two arrays, and the
least-squares fits of a whole batch computed at once.

The reference (:mod:`rules.rate`, :mod:`rules.projection`, :mod:`rules.window`) admits a
reading into its window and fits a line through the window, reading by reading. Here a batch
is grouped by slot (:class:`~rules.lanes.columns.Segments`) and laid out per slot as one
*timeline*: the stored samples, then the batch's readings. Every reading's window is then a
run of that timeline (its older samples) plus the reading itself, so admitting is index
arithmetic — a segmented binary search for the window start, a running maximum so it never
moves back, the sample cap — and the fits are one pass over the windows' columns.

Bit for bit. :func:`rules.window.fit` is written as a fixed order of IEEE operations around
exact integers: the times' sum and sum of squares (centred on an integer) are integers, which
the lane gets exactly from prefix sums — int64 arithmetic wraps modulo 2⁶⁴, so a difference of
prefix sums is exact whenever the result fits, as it does for windows up to
:data:`WINDOW_LIMIT`. The two float sums are plain ones in sample order from ``0.0``; the lane
does the same additions elementwise across windows, one column of samples at a time: windows
are right-aligned and sorted by length, so column ``j`` only touches the windows with a sample
there and every accumulator sees exactly the reference's sequence (few small windows go
through one matrix and ``add.accumulate`` instead, to save numpy calls). The 12-digit rounding
of the signal (:func:`rules.window.significant`) is done exactly in Python, but only where it
can matter: rounding moves a value by less than ``5e-12`` of itself, so a comparison with a
set-point can only change for a signal within :data:`NEAR` of it; events get the exact
rounded value too.

Thinning (the provisional newest sample replaced by a reading that follows it within
``window / (MAX_SAMPLES - 2)``) depends on the previous decision, so it is a scan: a slot whose
batch could replace a sample at all (two recent samples closer than the spacing) is decided by
a short loop over its readings' timestamps; the others, the usual case, append every reading.

Streaming. A live feed's micro-batch mostly holds at most one reading per slot: each reading is
then its slot's only step, and grouping, timelines and scans cost far more than the few
readings need. :meth:`TrendLane._stream` takes such batches in arrival order: each touched
slot's window is read as its row of the sample columns (a glance at its oldest samples for those
that leave, its newest two for thinning), written back, and fitted as a row of a matrix
(:func:`fit_rows`, the same sums in the same order); each latch takes one step (:func:`_step`).
A fixed number of numpy calls on the touched rows only (where ``count_nonzero`` stands for
``any``/``all``, it is only for being cheaper on small arrays).

Takes rules without on-delay, off-delay or consecutive count, with clear set-points in level
order (as :func:`rules.lanes.threshold.monotone`), and states whose latch
:meth:`~rules.lanes.columns.LatchColumns.fits`; the engine's object lane evaluates the others.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from rules import window
from rules.base import Rule
from rules.events import Change, RuleEvent, with_flapping
from rules.lanes.base import Batch, Emitted
from rules.lanes.columns import (
    NONE,
    Bools,
    Floats,
    Ints,
    LatchColumns,
    Segments,
    hysteresis_count,
    newer,
)
from rules.lanes.threshold import WIDTH
from rules.latch import Transition
from rules.projection import ProjectionRule
from rules.projection import _event as projection_event
from rules.rate import RateRule
from rules.setpoints import Direction

MAX = window.MAX_SAMPLES
"""The reference window's sample cap (its ``admit`` default)."""

WINDOW_LIMIT = 2**27 - 1
"""The longest window taken (about 37 hours): the sum of squared times of ``MAX`` samples
spread over it then fits in an int64 (longer windows stay with the reference engine)."""

NEAR = 1e-11
"""Relative distance from a set-point within which a signal is rounded to 12 significant digits
exactly before comparing (rounding moves it by at most ``5e-12`` of itself)."""

TINY = 1e-300
"""Absolute part of the :data:`NEAR` test, for subnormal signals whose rounding is absolute."""

R = TypeVar("R", RateRule, ProjectionRule)


def monotone(rule: RateRule | ProjectionRule) -> bool:
    """No delays, and clear set-points ordered like the set-points, so each level can latch on
    its own and the latched count is the level (see :func:`rules.lanes.columns.hysteresis_count`).
    A projection alarms on few minutes: its levels behave as a ``low`` rule's."""
    descending = isinstance(rule, ProjectionRule) or rule.direction is Direction.LOW
    clears = [sp.clear for sp in rule.setpoints]
    return (
        rule.on_delay_ms == 0
        and rule.off_delay_ms == 0
        and rule.consecutive == 1
        and len(rule.setpoints) <= WIDTH
        and clears == sorted(clears, reverse=descending)
    )


def sane(state: window.TrendState) -> bool:
    """Samples as the reference keeps them: at most :data:`MAX`, timestamps strictly
    increasing and not after the latch's last reading (the reference admits only newer
    readings, so a window it wrote always is)."""
    samples = state.samples
    if not samples:
        return True
    last = state.latch.last_ts_ms
    stamps = [ts for ts, _ in samples]
    return (
        len(samples) <= MAX
        and last is not None
        and stamps[-1] <= last
        and all(a < b for a, b in itertools.pairwise(stamps))
    )


def _exclusive(counts: Ints) -> Ints:
    """Start of each run of ``counts`` (an exclusive cumulative sum)."""
    out = np.zeros(len(counts), np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=out[1:])
    return out


def _runs(counts: Ints) -> Ints:
    """``0..counts[i]-1`` for each ``i``, concatenated."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(_exclusive(counts), counts)


def _room(array: Any, rows: int) -> Any:
    """``array`` with at least ``rows`` rows, doubling so that adding slots one by one stays
    linear."""
    if len(array) >= rows:
        return array
    grown = np.zeros((max(rows, 2 * len(array), 16), *array.shape[1:]), array.dtype)
    grown[: len(array)] = array
    return grown


def thin(stored: list[int], readings: list[int], window_ms: int, spacing: int) -> list[bool]:
    """Which readings replace the provisional newest sample instead of being appended:
    :func:`rules.window.admit` on timestamps only, for one slot."""
    kept = list(stored)
    start = 0
    replaced: list[bool] = []
    for ts in readings:
        start = bisect.bisect_left(kept, ts - window_ms, lo=start)
        if len(kept) - start >= 2 and kept[-1] - kept[-2] < spacing:
            kept[-1] = ts
            replaced.append(True)
        else:
            kept.append(ts)
            replaced.append(False)
        start = max(start, len(kept) - MAX)
    return replaced


def fit_windows(
    stamps: Ints, values: Floats, own: Ints, count: Ints, ts: Ints, value: Floats
) -> tuple[Floats, Floats, Bools]:
    """:func:`rules.window.fit` of many windows, bit for bit: slope per hour, the line's value
    at the newest sample, and whether there is a line (else the reference returns ``None``).

    Window ``i`` is ``stamps/values[own[i] - count[i] + 1 : own[i]]`` followed by the reading
    ``(ts[i], value[i])`` (its own sample, which a later reading may have replaced in the
    timeline); ``count[i] >= 2``. The time sums are exact integers from prefix sums; the float
    sums go column by column over right-aligned windows, longest first, so column ``j`` adds
    to the windows that have a sample there, in the reference's order.
    """
    n = len(own)
    if n == 0:
        empty = np.zeros(0, np.float64)
        return empty, empty, np.zeros(0, np.bool_)
    order: Ints | None = None
    if count.min() != count.max():  # all alike (the steady state) needs no sorting
        order = np.argsort(-count, kind="stable")
        own, count, ts, value = own[order], count[order], ts[order], value[order]
    older = count - 1
    # Integer sums over each window's older samples by prefix sums. int64 arithmetic wraps
    # modulo 2⁶⁴, so a difference of prefix sums (and the expansion of the squares) is exact
    # whenever the result itself fits — as it does for windows below WINDOW_LIMIT.
    first = own - older
    stamp_sum = _window_sum(stamps, first, own)
    total = stamp_sum - older * ts  # times relative to the newest
    centre = total // count
    spread = total - count * centre
    shift = ts + centre  # e = stamp - shift for the older samples; -centre for the newest
    squares = (
        _window_sum(stamps * stamps, first, own)
        - 2 * shift * stamp_sum
        + older * shift * shift
        + centre * centre
    )
    width = int(older.max())
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if n * width <= SMALL:
            sed, sdv = _matrix_sums(stamps, values, own, older, shift, value, width)
        else:
            sed, sdv = _column_sums(stamps, values, own, older, shift, value, width)
        # The newest sample adds e·0.0 and 0.0: nothing, as neither sum can hold -0.0.
        slope, latest, fitted = _line(total, count, spread, squares, sed, sdv, value)
    if order is None:
        return slope, latest, fitted
    back = np.empty_like(order)
    back[order] = np.arange(n)
    return slope[back], latest[back], fitted[back]


def _line(
    total: Ints, count: Ints, spread: Ints, squares: Ints, sed: Floats, sdv: Floats, value: Floats
) -> tuple[Floats, Floats, Bools]:
    """The end of :func:`rules.window.fit` from its sums: slope per hour, the line's value at
    the newest sample, and whether there is a line. ``total``, ``spread`` and ``squares`` are
    the exact integers, ``sed`` and ``sdv`` the float sums, ``value`` the newest value. The
    caller ignores floating-point warnings (divisions by zero, overflows)."""
    sxx = squares - spread * spread / count
    sxy = sed - spread * sdv / count
    t_mean = total / count  # exact integers as floats: Python's correctly rounded division
    v_mean = value + sdv / count
    slope = sxy * float(window.HOUR_MS) / sxx
    latest = v_mean + (sxy / sxx) * (0.0 - t_mean)
    fitted: Bools = ~(sxx <= 0)
    return slope, latest, fitted


def fit_rows(
    stamps: Ints, values: Floats, count: Ints, ts: Ints, value: Floats
) -> tuple[Floats, Floats, Bools]:
    """:func:`fit_windows` of windows stored as rows: row ``i`` holds its window's samples in
    columns ``0..count[i]-1``, the newest ``(ts[i], value[i])`` last and repeated in every
    column after it; ``count >= 2``. The caller ignores floating-point warnings.

    For few windows (the streaming path), on the matrices as they are: the newest sample's
    repeats add ``0`` to the times' sum and are taken back from the sum of squares (exact
    integers, modulo 2⁶⁴ like :func:`fit_windows`' prefix sums), and add ``e·0.0`` and
    ``0.0`` to the float sums: nothing, as neither can hold ``-0.0``. The two float sums go
    along each row by one ``add.accumulate`` from ``0.0`` (each partial sum the previous plus
    the next term: the reference's sequence) of complex numbers, ``e·dv`` the real part and
    ``dv`` the imaginary one: complex addition adds each part on its own, and one
    accumulation costs what one of floats does.
    """
    n, width = stamps.shape
    if n == 0:
        empty = np.zeros(0, np.float64)
        return empty, empty, np.zeros(0, np.bool_)
    total: Ints = stamps.sum(axis=1) - width * ts  # the times relative to the newest
    centre = total // count
    spread = total - count * centre
    e = stamps - (ts + centre)[:, None]  # -centre for the newest and its repeats
    squares: Ints = np.einsum("ij,ij->i", e, e) - (width - count) * centre * centre
    terms = np.zeros((n, width + 1), np.complex128)  # column 0: the sums' starting 0.0
    dv = terms.imag[:, 1:]
    np.subtract(values, value[:, None], out=dv)
    np.multiply(e, dv, out=terms.real[:, 1:])  # e is exact as a float
    sums = np.add.accumulate(terms, axis=1)[:, -1]
    return _line(total, count, spread, squares, sums.real, sums.imag, value)


STREAM = 1 << 16
"""Up to this many window cells (readings times the sample columns' width), a batch with one
reading per slot takes the streaming path: its work grows with that product, the batch path's
with the samples the touched slots hold."""

GLANCE = 4
"""The oldest samples of a window the streaming path looks at for those that leave it; when
all of them do (after a gap), it reads the whole row."""

_COLS = np.arange(MAX + 1)
"""Column numbers, sliced rather than made anew."""

NEWEST = np.array([1, 2])
"""Offsets back from a window's end to its newest two samples."""

FEW = 64
"""Up to this many signals, :meth:`TrendLane._settle` compares them with every set-point in
one matrix; beyond, set-point by set-point."""

SMALL = 16_000
"""Up to this many window cells, the float sums are taken over one matrix (few numpy calls);
beyond, column by column over vectors (no large temporaries)."""


def _window_sum(column: Ints, first: Ints, end: Ints) -> Ints:
    """``column[first:end].sum()`` per window, modulo 2⁶⁴."""
    prefix = np.zeros(len(column) + 1, np.int64)
    np.cumsum(column, out=prefix[1:])
    found: Ints = prefix[end] - prefix[first]
    return found


def _matrix_sums(
    stamps: Ints,
    values: Floats,
    own: Ints,
    older: Ints,
    shift: Ints,
    value: Floats,
    width: int,
) -> tuple[Floats, Floats]:
    """``Σ e·dv`` and ``Σ dv`` over the older samples, in order, for few small windows: the
    windows as one right-aligned matrix, padding zeroed, summed with ``add.accumulate`` (each
    partial sum the previous plus the next term: the reference's sequence)."""
    padded_ts = np.concatenate((np.zeros(width, np.int64), stamps))
    padded_v = np.concatenate((np.zeros(width, np.float64), values))
    cells = own[None, :] + np.arange(width)[:, None]  # stamps[own - width + j]
    e = padded_ts.take(cells)
    e -= shift
    dv = padded_v.take(cells)
    dv -= value
    padding = np.arange(width)[:, None] < (width - older)[None, :]
    e[padding] = 0
    dv[padding] = 0.0
    terms = np.zeros((2, width + 1, len(own)))  # row 0 of each: the sums' starting 0.0
    np.multiply(e, dv, out=terms[0, 1:])
    terms[1, 1:] = dv
    sums = np.add.accumulate(terms, axis=1)[:, -1]
    return sums[0], sums[1]


def _column_sums(
    stamps: Ints,
    values: Floats,
    own: Ints,
    older: Ints,
    shift: Ints,
    value: Floats,
    width: int,
) -> tuple[Floats, Floats]:
    """As :func:`_matrix_sums`, column by column: windows sorted longest first, so column
    ``j`` (right-aligned) belongs to the first ``active[j]`` of them; vectors only, no large
    temporaries. Timestamp and value share one complex timeline (one gather per column); the
    times, relative to the earliest, are whole numbers below 2⁵³ and so exact as floats, and
    so are their differences ``e``."""
    n = len(own)
    active = np.searchsorted(-older, -(width - np.arange(width)), side="right").tolist()
    earliest = int(stamps.min())
    if int(stamps.max()) - earliest >= 2**53:  # a timeline beyond floats: integer offsets
        return _integer_column_sums(stamps, values, own, shift, value, width, active)
    sed = np.zeros(n)
    sdv = np.zeros(n)
    dv = np.empty(n)
    timeline = np.zeros(width + len(stamps), np.complex128)
    timeline.real[width:] = stamps - earliest
    timeline.imag[width:] = values
    offset = (shift - earliest).astype(np.float64)
    cell = np.empty(n, np.complex128)
    e = np.empty(n)
    for j, k in enumerate(active):
        if k == 0:
            continue
        ck, ek, dk = cell[:k], e[:k], dv[:k]
        timeline[j:].take(own[:k], out=ck)  # the sample at own - width + j
        np.subtract(ck.real, offset[:k], out=ek)
        np.subtract(ck.imag, value[:k], out=dk)
        np.add(sdv[:k], dk, out=sdv[:k])
        np.multiply(dk, ek, out=dk)
        np.add(sed[:k], dk, out=sed[:k])
    return sed, sdv


def _integer_column_sums(
    stamps: Ints,
    values: Floats,
    own: Ints,
    shift: Ints,
    value: Floats,
    width: int,
    active: list[int],
) -> tuple[Floats, Floats]:
    """:func:`_column_sums` with integer time offsets, for a timeline too long for floats."""
    n = len(own)
    padded_ts = np.concatenate((np.zeros(width, np.int64), stamps))
    padded_v = np.concatenate((np.zeros(width, np.float64), values))
    sed = np.zeros(n)
    sdv = np.zeros(n)
    e = np.empty(n, np.int64)
    dv = np.empty(n)
    for j, k in enumerate(active):
        if k == 0:
            continue
        rows, ek, dk = own[:k], e[:k], dv[:k]
        padded_ts[j:].take(rows, out=ek)
        np.subtract(ek, shift[:k], out=ek)
        padded_v[j:].take(rows, out=dk)
        np.subtract(dk, value[:k], out=dk)
        np.add(sdv[:k], dk, out=sdv[:k])
        np.multiply(dk, ek, out=dk)
        np.add(sed[:k], dk, out=sed[:k])
    return sed, sdv


class TrendLane(Generic[R]):
    """What the rate and projection lanes share: windows, fits, latch. Subclasses give the
    signal from the fitted line and the event."""

    kind: ClassVar[str]
    rule_type: ClassVar[type[RateRule] | type[ProjectionRule]]

    def __init__(self) -> None:
        self.rules: list[R] = []
        self.latch = LatchColumns()
        self.window = np.zeros(0, np.int64)
        self.min_points = np.zeros(0, np.int64)
        self.min_span = np.zeros(0, np.int64)
        self.spacing = np.zeros(0, np.int64)
        self.sign = np.zeros(0, np.float64)
        self.limits = np.zeros((0, 2 * WIDTH), np.float64)
        """Set-points times the sign, then clear set-points times the sign; NaN where unused,
        which no signal reaches or holds (not even an infinite one) nor comes near."""
        self.levels = np.zeros((0, WIDTH), np.int64)
        self.by_count = np.zeros((0, WIDTH + 1), np.int64)
        self.used = 0
        """The most set-points of any slot: the columns of set and clear points in use."""
        self.count = np.zeros(0, np.int64)
        """Samples each slot's window holds, in ``stamps``/``values`` columns ``0..count-1``."""
        self.stamps = np.zeros((0, 0), np.int64)
        self.values = np.zeros((0, 0), np.float64)

    # -- what a subclass says ---------------------------------------------------------------

    def _signal_sign(self, rule: R) -> float:
        """+1 when the signal alarms at or above a set-point, -1 at or below."""
        raise NotImplementedError

    def _setup(self, slot: int, rule: R) -> None:
        """Store the kind's own per-slot columns."""

    def _signal(self, slots: Ints, slope: Floats, latest: Floats, newest: Floats) -> Floats:
        """The kind's signal before the 12-digit rounding (that is applied where it matters)."""
        raise NotImplementedError

    def _event(self, rule: R, moved: Transition, signal: float, ts_ms: int) -> RuleEvent:
        """The reference's event for a level change."""
        raise NotImplementedError

    # -- the lane ------------------------------------------------------------------------

    def accepts(self, rule: Rule, state: Any) -> bool:
        """Rules of this kind that :func:`monotone` allows, with a window of at most
        :data:`WINDOW_LIMIT`, and a state whose latch fits in columns and whose samples are
        :func:`sane`."""
        return (
            isinstance(rule, self.rule_type)
            and monotone(rule)
            and rule.window_ms <= WINDOW_LIMIT
            and isinstance(state, window.TrendState)
            and LatchColumns.fits(state.latch)
            and sane(state)
        )

    def add(self, rule: Rule, state: Any) -> int:
        """Take a rule that :meth:`accepts` with its state; return the slot."""
        if not self.accepts(rule, state):
            msg = f"the {self.kind} lane cannot take rule {rule.rule_id!r} with this state"
            raise ValueError(msg)
        taken: R = rule  # type: ignore[assignment]  # accepts() checked the type
        slot = self.latch.grow(taken.delays)
        self.latch.put(slot, state.latch)
        self.rules.append(taken)
        rows = slot + 1
        for name in (
            "window", "min_points", "min_span", "spacing", "sign", "limits", "levels",
            "by_count", "count", "stamps", "values",
        ):  # fmt: skip
            setattr(self, name, _room(getattr(self, name), rows))
        self.window[slot] = taken.window_ms
        self.min_points[slot] = taken.min_points
        self.min_span[slot] = taken.min_span_ms
        self.spacing[slot] = -(-taken.window_ms // (MAX - 2))  # as window.admit
        sign = self._signal_sign(taken)
        self.sign[slot] = sign
        self.limits[slot] = np.nan
        self.levels[slot] = 0
        for j, sp in enumerate(taken.setpoints):
            self.limits[slot, j] = sign * sp.set
            self.limits[slot, WIDTH + j] = sign * sp.clear
            self.levels[slot, j] = int(sp.level)
        self.by_count[slot] = np.concatenate(([0], self.levels[slot]))
        self.used = max(self.used, len(taken.setpoints))
        samples = state.samples
        self._widen(len(samples))
        self.count[slot] = len(samples)
        if samples:
            self.stamps[slot, : len(samples)] = [ts for ts, _ in samples]
            self.values[slot, : len(samples)] = [v for _, v in samples]
        self._setup(slot, taken)
        return slot

    def get(self, slot: int) -> window.TrendState:
        """The slot's latch and window as the reference state."""
        count = int(self.count[slot])
        samples = zip(
            self.stamps[slot, :count].tolist(), self.values[slot, :count].tolist(), strict=True
        )
        return window.TrendState(self.latch.get(slot), tuple(samples))

    def level(self, slots: Ints) -> Ints:
        """Current levels."""
        return self.latch.level[slots]

    def tick(self, now_ms: int, slots: Bools | None = None) -> Emitted:
        """Trends act on readings only."""
        return []

    def evaluate(self, batch: Batch) -> Emitted:
        """As the reference ``evaluate`` reading by reading: NaN and stale readings change
        nothing; a reading whose window has too few points or too short a span is admitted and
        marks the latch's last reading without an evaluation (no flapping count).

        A small batch with at most one reading per slot (the streaming case) takes
        :meth:`_stream`; the others :meth:`_batch`."""
        n = len(batch)
        if n and n * max(self.stamps.shape[1], 1) <= STREAM:
            done = self._stream(batch)
            if done is not None:
                return done
        return self._batch(batch)

    def _stream(self, batch: Batch) -> Emitted | None:
        """:meth:`evaluate` for a batch with one reading per slot (``None`` for any other).

        Each reading is then its slot's only step: the readings are taken in arrival order,
        without grouping; each slot's window is read from its row of the sample columns,
        admitted (:func:`rules.window.admit` as index arithmetic), written back and fitted as
        a row (:func:`fit_rows`); the latch makes one step (:func:`_step`). A fixed number of
        numpy calls, on the touched rows only."""
        slot = batch.slot
        n = len(slot)
        where = np.arange(n)
        mark = np.empty(len(self.latch), np.int64)
        mark[slot] = where
        if np.count_nonzero(mark.take(slot) != where):
            return None  # a slot read twice: the scans of the batch path
        ts, values = batch.ts, batch.value
        latch = self.latch
        keep = np.isfinite(values) & (ts > latch.last_ts_ms.take(slot))
        if np.count_nonzero(keep) < n:
            where = np.flatnonzero(keep)
            if len(where) == 0:
                return []
            slot, ts, values = slot[where], ts[where], values[where]
        # Admit: the stored samples before ``ts - window`` leave (a glance at the oldest few,
        # the whole row only after a gap), the reading replaces the provisional newest sample
        # or is appended, the cap drops the oldest.
        stored = self.count.take(slot)
        width = self.stamps.shape[1]  # a free column after every window: see _widen
        flat_ts, flat_v = self.stamps.reshape(-1), self.values.reshape(-1)
        base = slot * width
        since = (ts - self.window.take(slot))[:, None]
        cols = _COLS[:GLANCE]
        head = flat_ts.take(base[:, None] + cols)
        gone = ((head < since) & (cols < stored[:, None])).sum(axis=1)
        if np.count_nonzero(gone == GLANCE):
            cols = _COLS[:width]
            rows = flat_ts.take(base[:, None] + cols)
            gone = ((rows < since) & (cols < stored[:, None])).sum(axis=1)
        newest = flat_ts.take((base + stored)[:, None] - NEWEST, mode="clip")
        replace = (stored - gone >= 2) & (newest[:, 0] - newest[:, 1] < self.spacing.take(slot))
        end = stored + 1 - replace  # the reading's column + 1
        first = np.maximum(gone, end - MAX)
        kept = end - first
        at = base + end - 1
        flat_ts[at] = ts
        flat_v[at] = values
        # Row i of the new windows: column j is column first + j of the row, up to the
        # reading, which also fills the padding (so that :func:`fit_rows` needs no mask).
        longest = int(kept.max())
        src = (base + first)[:, None] + np.minimum(_COLS[:longest], (kept - 1)[:, None])
        stamps = flat_ts.take(src)
        samples = flat_v.take(src)
        self.stamps[slot, :longest] = stamps
        self.values[slot, :longest] = samples
        self.count[slot] = kept
        self._widen(longest)
        latch.last_ts_ms[slot] = ts
        # Judge the windows with enough points over enough time.
        enough = (kept >= self.min_points.take(slot)) & (
            ts - stamps[:, 0] >= self.min_span.take(slot)
        )
        judged = where
        if np.count_nonzero(enough) < len(slot):
            rows = np.flatnonzero(enough)
            stamps, samples, kept = stamps[rows], samples[rows], kept[rows]
            slot, ts, values, judged = slot[rows], ts[rows], values[rows], where[rows]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            slope, latest, fitted = fit_rows(stamps, samples, kept, ts, values)
            if np.count_nonzero(fitted) < len(slot):
                slot, ts, values, judged = slot[fitted], ts[fitted], values[fitted], judged[fitted]
                slope, latest = slope[fitted], latest[fitted]
            if len(slot) == 0:
                return []
            raw = self._signal(slot, slope, latest, values)
            limits = self.limits.take(slot, axis=0)
            signed = self._settle(slot, raw, limits)[:, None]
        used = self.used
        old = latch.level.take(slot)
        levels = self.levels.take(slot, axis=0)[:, :used]
        # A level is latched where reached, or held and latched before (unused columns: the
        # NaN limits reach and hold nothing).
        latched = (signed >= limits[:, :used]) | (
            (signed >= limits[:, WIDTH : WIDTH + used]) & (old[:, None] >= levels)
        )
        level = self.by_count.reshape(-1).take(slot * (WIDTH + 1) + latched.sum(axis=1))
        changed, starts, flags = _step(latch, slot, ts, old, level)
        emitted: Emitted = []
        for k, i in enumerate(changed):
            was, now, flapping = int(old[i]), int(level[i]), bool(flags[k])
            change = (
                Change.RAISED if was == 0 else Change.CLEARED if now == 0 else Change.LEVEL_CHANGED
            )
            moved = Transition(change, was, now, int(starts[k]), flapping)
            rule = self.rules[int(slot[i])]
            event = self._event(rule, moved, window.significant(float(raw[i])), int(ts[i]))
            emitted.append((int(judged[i]), with_flapping(event, flapping)))
        return emitted

    def _batch(self, batch: Batch) -> Emitted:
        """:meth:`evaluate` of any batch, grouped by slot: see the module notes."""
        seg = Segments.of(batch.slot)
        ts, values = seg.gather(batch.ts), seg.gather(batch.value)
        keep = newer(seg, ts, np.isfinite(values), self.latch.last_ts_ms)
        if not keep.any():
            return []
        sub = seg
        if not keep.all():
            sub, ts, values = seg.take(keep), ts[keep], values[keep]
        stamps, samples, low, own = self._admit(sub, ts, values)
        self.latch.last_ts_ms[sub.seg_slot] = ts[sub.last]
        count = own - low + 1
        oldest = np.where(low < own, stamps[low], ts)
        enough = (count >= self.min_points[sub.slot]) & (ts - oldest >= self.min_span[sub.slot])
        rows = np.flatnonzero(enough)
        slope, latest, fitted = fit_windows(
            stamps, samples, own[rows], count[rows], ts[rows], values[rows]
        )
        rows = rows[fitted]
        if len(rows) == 0:
            return []
        slots = sub.slot[rows]
        used = self.used
        sets = self.limits[:, :used].take(slots, axis=0)
        clears = self.limits[:, WIDTH : WIDTH + used].take(slots, axis=0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            raw = self._signal(slots, slope[fitted], latest[fitted], values[rows])
            signed = self._settle(slots, raw, sets, clears)
        reached = signed[:, None] >= sets
        held = signed[:, None] >= clears
        if len(rows) == len(sub):
            evaluated = sub
        else:
            judged = np.zeros(len(sub), np.bool_)
            judged[rows] = True
            evaluated = sub.take(judged)  # grouped already, so the same order as ``rows``
        # Which levels each evaluated slot has latched, in a table over all slots (the scans
        # read the rows of the evaluated slots only, so the others stay unwritten).
        touched = evaluated.seg_slot
        levels = self.levels.take(touched, axis=0)[:, :used]
        before = np.empty((len(self.latch), used), np.bool_)
        before[touched] = (levels > 0) & (self.latch.level.take(touched)[:, None] >= levels)
        count_latched = hysteresis_count(evaluated, reached, held, before)
        level = self.by_count.reshape(-1).take(slots * (WIDTH + 1) + count_latched)
        moves = self.latch.advance(evaluated, ts[rows], level)
        emitted: Emitted = []
        changes = moves.changes()
        for i, at in enumerate(moves.at.tolist()):
            row = int(rows[at])
            moved = Transition(
                changes[i],
                int(moves.old[i]),
                int(moves.new[i]),
                int(moves.start_ms[i]),
                bool(moves.flapping[i]),
            )
            rule = self.rules[int(sub.slot[row])]
            signal = window.significant(float(raw[at]))
            event = self._event(rule, moved, signal, int(ts[row]))
            emitted.append((int(sub.order[row]), with_flapping(event, moved.flapping)))
        emitted.sort(key=lambda e: e[0])
        return emitted

    def _settle(self, slots: Ints, raw: Floats, *limits: Floats) -> Floats:
        """The signal times the slot's sign, rounded to 12 digits where a comparison with the
        slot's (signed) set or clear points, the columns of ``limits``, could depend on it (see
        the module notes): the others compare the same either way. The caller ignores
        floating-point warnings."""
        signed = self.sign.take(slots) * raw
        tolerance = NEAR * np.abs(signed) + TINY
        near = np.zeros(len(signed), np.bool_)
        for points in limits:  # (unused points are NaN: never near)
            if len(signed) <= FEW:  # one matrix: few numpy calls
                near |= (np.abs(signed[:, None] - points) <= tolerance[:, None]).any(axis=1)
            else:  # point by point: no large temporaries
                for j in range(points.shape[1]):
                    near |= np.abs(signed - points[:, j]) <= tolerance
        # (An infinite signal may count as near: rounding gives it back unchanged.)
        if near.any():
            for i in np.flatnonzero(near).tolist():
                signed[i] = self.sign[slots[i]] * window.significant(float(raw[i]))
        return signed

    def _widen(self, needed: int) -> None:
        """Room for ``needed`` samples per slot and a free column after them, where
        :meth:`_stream` writes a reading before the window drops any sample (grown on demand,
        so a lane of short windows keeps narrow columns)."""
        width = self.stamps.shape[1]
        if needed < width:
            return
        wider = min(MAX + 1, max(needed + 1, width + width // 2, 8))
        stamps = np.zeros((len(self.stamps), wider), np.int64)
        values = np.zeros((len(self.values), wider), np.float64)
        stamps[:, :width] = self.stamps
        values[:, :width] = self.values
        self.stamps, self.values = stamps, values

    def _admit(self, sub: Segments, ts: Ints, values: Floats) -> tuple[Ints, Floats, Ints, Ints]:
        """:func:`rules.window.admit` for every reading of ``sub``; store each slot's last
        window. Returns the timeline (``stamps``, ``values``: per slot the samples each
        position ends up with) and per reading its window's first position and its own one:
        the window is the timeline from ``low`` to ``own - 1``, then the reading."""
        slots = sub.seg_slot
        stored = self.count[slots]
        size = stored + (sub.last - sub.first + 1)
        start = _exclusive(size)
        w_ts = np.empty(int(size.sum()), np.int64)
        w_v = np.empty(len(w_ts), np.float64)
        if stored.any():
            runs = _runs(stored)
            at = np.repeat(start, stored) + runs
            src = np.repeat(slots * self.stamps.shape[1], stored) + runs
            w_ts[at] = self.stamps.reshape(-1).take(src)
            w_v[at] = self.values.reshape(-1).take(src)
        mine = start[sub.seg_of] + stored[sub.seg_of] + sub.rank - 1
        w_ts[mine] = ts
        w_v[mine] = values
        span = self.window[sub.slot]
        replaced = self._replaced(sub, ts, w_ts, start, stored, mine, span)
        if replaced.any():
            final = np.ones(len(w_ts), np.bool_)
            final[mine[replaced] - 1] = False
            position: Ints = np.cumsum(final, dtype=np.int64) - final  # where each write goes
            stamps, samples = w_ts[final], w_v[final]
            own: Ints = position[mine]
            first: Ints = position[start]  # a slot's first write is never replaced
        else:  # every reading appended: the timeline is what was written
            stamps, samples, own, first = w_ts, w_v, mine, start
        end = np.append(first[1:], len(stamps))
        since = _search(stamps, first, end, sub.seg_of, ts - span)
        low = np.maximum.accumulate(np.maximum(since, own - MAX + 1))
        last = sub.last
        keep = own[last] - low[last] + 1
        self._widen(int(keep.max()))
        self.count[slots] = keep
        cols = _runs(keep)
        src = np.repeat(low[last], keep) + cols
        dest = np.repeat(slots * self.stamps.shape[1], keep) + cols
        self.stamps.reshape(-1)[dest] = stamps.take(src)
        self.values.reshape(-1)[dest] = samples.take(src)
        return stamps, samples, low, own

    def _replaced(
        self,
        sub: Segments,
        ts: Ints,
        w_ts: Ints,
        start: Ints,
        stored: Ints,
        mine: Ints,
        span: Ints,
    ) -> Bools:
        """Readings that replace the provisional newest sample. Without any replacement
        before it, a reading replaces when its two predecessors are both in its window and
        closer than the spacing; slots where no reading would are done (the usual case), the
        others are scanned with :func:`thin`."""
        behind = stored[sub.seg_of] + sub.rank - 1  # samples before it in its slot
        two = behind >= 2
        prev = w_ts[np.maximum(mine - 1, 0)]
        prev2 = w_ts[np.maximum(mine - 2, 0)]
        could = two & (prev2 >= ts - span) & (prev - prev2 < self.spacing[sub.slot])
        replaced = np.zeros(len(ts), np.bool_)
        if not could.any():
            return replaced
        for g in np.unique(sub.seg_of[could]).tolist():
            slot = int(sub.seg_slot[g])
            a, b = int(sub.first[g]), int(sub.last[g]) + 1
            s = int(start[g])
            replaced[a:b] = thin(
                w_ts[s : s + int(stored[g])].tolist(),
                ts[a:b].tolist(),
                int(self.window[slot]),
                int(self.spacing[slot]),
            )
        return replaced


def _step(
    latch: LatchColumns, slots: Ints, ts: Ints, old: Ints, level: Ints
) -> tuple[list[int], Ints, Bools]:
    """One evaluation at ``ts`` of each of ``slots`` (distinct), whose level was ``old`` and is
    now ``level``: :meth:`LatchColumns.advance` for segments of one observation, as
    :func:`rules.latch.step` and :func:`rules.latch.flap` without delays. Updates the latch
    (not ``last_ts_ms``); returns the indices whose level changed, in order, with the start
    and the flapping flag their events carry."""
    changed = level != old
    window = latch.window.take(slots)
    history = latch.history.take(slots)
    flapping = latch.flapping.take(slots)
    evaluations = np.minimum(latch.evaluations.take(slots) + 1, window)
    if not (np.count_nonzero(changed) or np.count_nonzero(history) or np.count_nonzero(flapping)):
        latch.evaluations[slots] = evaluations  # quiet latches only count (as flap)
        return [], np.zeros(0, np.int64), np.zeros(0, np.bool_)
    kept = (np.uint64(1) << np.minimum(window - 1, 63).astype(np.uint64)) - np.uint64(1)
    history = ((history & kept) << np.uint64(1)) | changed.astype(np.uint64)
    fraction = np.bitwise_count(history).astype(np.int64) / window
    enter = (fraction >= latch.enter.take(slots)) & (2 * evaluations >= window)
    flags: Bools = enter | (flapping & ~(fraction <= latch.leave.take(slots)))
    start: Ints = np.where(changed & (old == 0), ts, latch.start_ms.take(slots))
    latch.level[slots] = level
    latch.start_ms[slots] = np.where(changed & (level == 0), NONE, start)
    latch.history[slots] = history
    latch.evaluations[slots] = evaluations
    latch.flapping[slots] = flags
    at = np.flatnonzero(changed)
    begun = start[at]
    return at.tolist(), np.where(begun == NONE, ts[at], begun), flags[at]


def _search(stamps: Ints, first: Ints, end: Ints, seg_of: Ints, query: Ints) -> Ints:
    """Per reading, the first timeline position of its slot (``first..end-1`` of segment
    ``seg_of``, increasing) at or after ``query``: ``bisect_left`` for every slot at once,
    each slot's timestamps shifted past the previous slot's so that all form one sorted key."""
    base = stamps[first]
    width = stamps[end - 1] - base + 2  # a slot's keys, and one free below them
    if int(width.max()) < 2**62 // len(width):
        shift = _exclusive(width) - base
        keys = stamps + np.repeat(shift, end - first)
        wanted = np.maximum(query, base[seg_of] - 1) + shift[seg_of]
        found: Ints = np.searchsorted(keys, wanted, side="left")
        return found.astype(np.int64)
    out = np.empty(len(query), np.int64)  # keys too wide for one int64: slot by slot
    for g, (a, b) in enumerate(zip(first.tolist(), end.tolist(), strict=True)):
        here = seg_of == g
        out[here] = a + np.searchsorted(stamps[a:b], query[here], side="left")
    return out


class RateLane(TrendLane[RateRule]):
    """Every column-friendly rate-of-change rule of a fleet: the signal is the slope per hour."""

    kind = "rate"
    rule_type = RateRule

    def _signal_sign(self, rule: RateRule) -> float:
        return 1.0 if rule.direction is Direction.HIGH else -1.0

    def _signal(self, slots: Ints, slope: Floats, latest: Floats, newest: Floats) -> Floats:
        return slope

    def _event(self, rule: RateRule, moved: Transition, signal: float, ts_ms: int) -> RuleEvent:
        return rule.band_event(moved, signal, ts_ms, "rate", window_ms=rule.window_ms)


class ProjectionLane(TrendLane[ProjectionRule]):
    """Every column-friendly projection rule of a fleet: the signal is the minutes until the
    fitted line reaches the target, as :func:`rules.projection.minutes_to_target`."""

    kind = "projection"
    rule_type = ProjectionRule

    def __init__(self) -> None:
        super().__init__()
        self.target = np.zeros(0, np.float64)
        self.direction = np.zeros(0, np.float64)

    def _signal_sign(self, rule: ProjectionRule) -> float:
        return -1.0  # few minutes alarm

    def _setup(self, slot: int, rule: ProjectionRule) -> None:
        self.target = _room(self.target, slot + 1)
        self.direction = _room(self.direction, slot + 1)
        self.target[slot] = rule.target
        self.direction[slot] = 1.0 if rule.direction is Direction.HIGH else -1.0

    def _signal(self, slots: Ints, slope: Floats, latest: Floats, newest: Floats) -> Floats:
        sign, target = self.direction.take(slots), self.target.take(slots)
        there = (sign * (newest - target) >= 0) | (sign * (latest - target) >= 0)
        towards = sign * slope
        minutes = np.abs(target - latest) * 60.0 / towards
        return np.where(there, 0.0, np.where(towards <= 0, np.inf, minutes))

    def _event(
        self, rule: ProjectionRule, moved: Transition, signal: float, ts_ms: int
    ) -> RuleEvent:
        return projection_event(rule, moved, signal, ts_ms)
