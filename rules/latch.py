"""The alarm latch every rule kind shares: levels that set and reset with delays.

A rule kind turns its input (a value, a slope, a rainfall sum, a silence) into two facts per
level: has the level's set-point been *reached*, and is the level still *held* (not yet past
its clear set-point). The latch turns those facts into one alarm level per (sensor, rule):

- a level above the current one latches once its set-point has been reached continuously for
  the on-delay *and* for ``consecutive`` readings in a row;
- the current level is released only when it has not been held for the off-delay; the alarm
  then falls to the highest level still held (possibly none: cleared);
- the alarm level is always one number, so a higher set-point raises the same alarm and
  falling back lowers it, instead of several alarms competing.

Flapping ("chattering alarms"). Every call of :func:`step` is one evaluation; the latch keeps
which of the last ``flap_window`` evaluations changed the level (a bitmask, newest in bit 0).
The alarm becomes *flapping* when the changes are at least ``flap_enter`` of the window (and at
least half a window of evaluations has been seen, so a fresh state is never judged on a few
readings), and stops flapping only when they have fallen to ``flap_leave`` of the window or
less. The two limits are a hysteresis on the flag itself: with one limit, an alarm changing at
about that rate would turn the flag on and off as often as the level it describes. The fraction
is over the whole window — evaluations not seen yet count as no change — so it can only
under-estimate. Defaults (:data:`FLAP_WINDOW`, :data:`FLAP_ENTER`, :data:`FLAP_LEAVE`): 20
evaluations, flapping at 6 changes or more (30 %), settled at 2 or fewer (10 %).

The flag is part of the state, not an event: a step that only turns the flag on or off, with
no change of level, returns no :class:`Transition`; the next transition carries the flag as it
is after that step. The flag travels on the events (``RuleEvent.flapping``, set by the engine
from the state's latch with :func:`rules.events.with_flapping`, then ``AlarmEvent.flapping``) so
notifying sinks can hold back re-notification of a flapping alarm until it settles.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rules.events import Change

FLAP_WINDOW = 20
"""Evaluations the flapping fraction is taken over."""
FLAP_ENTER = 0.3
"""Fraction of level changes in the window at or above which the alarm is flapping."""
FLAP_LEAVE = 0.1
"""Fraction at or below which a flapping alarm has settled (below :data:`FLAP_ENTER`)."""
FLAP_WINDOW_MAX = 64
"""The longest window: the history stays one 64-bit word in persisted state."""


@dataclass(frozen=True, slots=True)
class Delays:
    """How long a condition must last before the latch follows it."""

    on_delay_ms: int = 0
    off_delay_ms: int = 0
    consecutive: int = 1
    flap_window: int = FLAP_WINDOW
    flap_enter: float = FLAP_ENTER
    flap_leave: float = FLAP_LEAVE

    def __post_init__(self) -> None:
        if self.on_delay_ms < 0 or self.off_delay_ms < 0:
            msg = "on-delay and off-delay must not be negative"
            raise ValueError(msg)
        if self.consecutive < 1:
            msg = "consecutive readings must be at least 1"
            raise ValueError(msg)
        window = self.flap_window
        if isinstance(window, bool) or not isinstance(window, int):
            msg = f"the flapping window must be a whole number of evaluations, got {window!r}"
            raise ValueError(msg)
        if not 2 <= window <= FLAP_WINDOW_MAX:
            msg = (
                f"the flapping window must be between 2 and {FLAP_WINDOW_MAX} evaluations, "
                f"got {window}"
            )
            raise ValueError(msg)
        if not (math.isfinite(self.flap_enter) and 0 < self.flap_enter <= 1):
            msg = (
                "the flapping limit must be a fraction of the window above 0 and at most 1, "
                f"got {self.flap_enter!r}"
            )
            raise ValueError(msg)
        if not (math.isfinite(self.flap_leave) and 0 <= self.flap_leave < self.flap_enter):
            msg = (
                "the settle limit of flapping must be at least 0 and below the flapping limit "
                f"{self.flap_enter:g}, got {self.flap_leave!r}"
            )
            raise ValueError(msg)


@functools.lru_cache(maxsize=4096)
def cached_delays(on_delay_ms: int = 0, off_delay_ms: int = 0, consecutive: int = 1) -> Delays:
    """One validated :class:`Delays` per combination: rules hand theirs to every latch step,
    and building and validating a new one each time was a tenth of the evaluation cost."""
    return Delays(on_delay_ms, off_delay_ms, consecutive)


@dataclass(frozen=True, slots=True)
class LatchState:
    """The latch of one (sensor, rule): small, immutable, plain to serialise.

    ``pending`` holds, for each level above the current one whose set-point is reached, when
    that run started and how many readings it has had; ``release_ms`` when the current level
    stopped being held (off-delay running). ``history`` has one bit per recent evaluation, newest
    in bit 0, set where that evaluation changed the level; ``evaluations`` counts them up to the
    flapping window; ``flapping`` is the flag they decide (see the module text).
    """

    level: int = 0
    start_ms: int | None = None
    last_ts_ms: int | None = None
    pending: tuple[tuple[int, int, int], ...] = ()
    release_ms: int | None = None
    history: int = 0
    evaluations: int = 0
    flapping: bool = False

    @property
    def latch(self) -> LatchState:
        """Itself: a kind whose whole state is the latch (threshold) needs nothing more."""
        return self

    def at(self, last_ts_ms: int | None) -> LatchState:
        """The same latch with another ``last_ts_ms`` (cheaper than ``dataclasses.replace``,
        which is on the path of every reading)."""
        return LatchState(
            self.level,
            self.start_ms,
            last_ts_ms,
            self.pending,
            self.release_ms,
            self.history,
            self.evaluations,
            self.flapping,
        )

    def is_stale(self, ts_ms: int) -> bool:
        """A reading not newer than the last one evaluated (duplicate or late)."""
        return self.last_ts_ms is not None and ts_ms <= self.last_ts_ms

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return {
            "level": self.level,
            "start_ms": self.start_ms,
            "last_ts_ms": self.last_ts_ms,
            "pending": [list(p) for p in self.pending],
            "release_ms": self.release_ms,
            "history": self.history,
            "evaluations": self.evaluations,
            "flapping": self.flapping,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatchState:
        """Inverse of :meth:`to_dict`; a state written before flapping detection (no
        ``history``, ``evaluations``, ``flapping``) loads with an empty history, not flapping."""
        return cls(
            level=int(data["level"]),
            start_ms=_opt_int(data.get("start_ms")),
            last_ts_ms=_opt_int(data.get("last_ts_ms")),
            pending=tuple((int(a), int(b), int(c)) for a, b, c in data.get("pending", ())),
            release_ms=_opt_int(data.get("release_ms")),
            history=int(data.get("history", 0)),
            evaluations=int(data.get("evaluations", 0)),
            flapping=bool(data.get("flapping", False)),
        )

    @property
    def changes(self) -> int:
        """How many of the remembered evaluations changed the level."""
        return self.history.bit_count()


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of the alarm level made by :func:`step`.

    ``flapping`` is the flapping flag after that step (the step's own change counted).
    """

    change: Change
    old: int
    new: int
    start_ms: int
    flapping: bool = False


def step(
    delays: Delays,
    levels: Sequence[int],
    reached: Sequence[bool],
    held: Sequence[bool],
    state: LatchState,
    ts_ms: int,
) -> tuple[LatchState, Transition | None]:
    """Advance the latch by one observation at ``ts_ms``.

    ``levels`` ascend; ``reached[i]``/``held[i]`` are the facts for ``levels[i]``. ``held`` is
    consulted only for levels at or below the current one, ``reached`` only above it.
    Every call is one evaluation for flapping detection (see :func:`flap`).
    """
    current = state.level
    if current == 0 and not state.pending and not any(reached):
        # The common case, quiet and normal: nothing to latch, nothing pending. Same result as
        # the general path below, without its bookkeeping.
        history, evaluations, flapping = flap(delays, state, changed=False)
        return LatchState(0, state.start_ms, ts_ms, (), None, history, evaluations, flapping), None
    held_level = 0
    confirmed = 0
    previous = {lvl: (since, count) for lvl, since, count in state.pending}
    pending: list[tuple[int, int, int]] = []
    for lvl, is_reached, is_held in zip(levels, reached, held, strict=True):
        if lvl <= current:
            if is_held:
                held_level = lvl
        elif is_reached:
            since, count = previous.get(lvl, (ts_ms, 0))
            count += 1
            pending.append((lvl, since, count))
            if ts_ms - since >= delays.on_delay_ms and count >= delays.consecutive:
                confirmed = lvl
    release_ms: int | None = None
    if confirmed > current:
        new = confirmed
    elif held_level < current:
        release_ms = state.release_ms if state.release_ms is not None else ts_ms
        if ts_ms - release_ms >= delays.off_delay_ms:
            new, release_ms = held_level, None
        else:
            new = current
    else:
        new = current
    kept = tuple(p for p in pending if p[0] > new)
    history, evaluations, flapping = flap(delays, state, changed=new != current)
    start_ms = state.start_ms
    transition: Transition | None = None
    if new != current:
        if current == 0:
            start_ms = ts_ms
        change = (
            Change.RAISED if current == 0 else Change.CLEARED if new == 0 else Change.LEVEL_CHANGED
        )
        transition = Transition(
            change, current, new, start_ms if start_ms is not None else ts_ms, flapping
        )
        if new == 0:
            start_ms = None
    new_state = LatchState(new, start_ms, ts_ms, kept, release_ms, history, evaluations, flapping)
    return new_state, transition


def flap(delays: Delays, state: LatchState, *, changed: bool) -> tuple[int, int, bool]:
    """Record one evaluation; return the new ``history``, ``evaluations`` and ``flapping``.

    Flapping starts when the changes in the window are at least ``flap_enter`` of the window
    and at least half a window has been evaluated; it ends when they are at most ``flap_leave``
    of it. In between the flag keeps its value (hysteresis). A shorter window configured since
    the state was written simply forgets the older evaluations.
    """
    window = delays.flap_window
    if not (changed or state.history or state.flapping):
        return 0, min(state.evaluations + 1, window), False  # a quiet history stays quiet
    history = ((state.history << 1) | int(changed)) & ((1 << window) - 1)
    evaluations = min(state.evaluations + 1, window)
    fraction = history.bit_count() / window
    if state.flapping:
        flapping = fraction > delays.flap_leave
    else:
        flapping = fraction >= delays.flap_enter and 2 * evaluations >= window
    return history, evaluations, flapping


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
