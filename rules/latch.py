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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rules.events import Change


@dataclass(frozen=True, slots=True)
class Delays:
    """How long a condition must last before the latch follows it."""

    on_delay_ms: int = 0
    off_delay_ms: int = 0
    consecutive: int = 1

    def __post_init__(self) -> None:
        if self.on_delay_ms < 0 or self.off_delay_ms < 0:
            msg = "on-delay and off-delay must not be negative"
            raise ValueError(msg)
        if self.consecutive < 1:
            msg = "consecutive readings must be at least 1"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class LatchState:
    """The latch of one (sensor, rule): small, immutable, plain to serialise.

    ``pending`` holds, for each level above the current one whose set-point is reached, when
    that run started and how many readings it has had; ``release_ms`` when the current level
    stopped being held (off-delay running).
    """

    level: int = 0
    start_ms: int | None = None
    last_ts_ms: int | None = None
    pending: tuple[tuple[int, int, int], ...] = ()
    release_ms: int | None = None

    @property
    def latch(self) -> LatchState:
        """Itself: a kind whose whole state is the latch (threshold) needs nothing more."""
        return self

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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatchState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            level=int(data["level"]),
            start_ms=_opt_int(data.get("start_ms")),
            last_ts_ms=_opt_int(data.get("last_ts_ms")),
            pending=tuple((int(a), int(b), int(c)) for a, b, c in data.get("pending", ())),
            release_ms=_opt_int(data.get("release_ms")),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of the alarm level made by :func:`step`."""

    change: Change
    old: int
    new: int
    start_ms: int


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
    """
    current = state.level
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
    start_ms = state.start_ms
    transition: Transition | None = None
    if new != current:
        if current == 0:
            start_ms = ts_ms
        change = (
            Change.RAISED if current == 0 else Change.CLEARED if new == 0 else Change.LEVEL_CHANGED
        )
        transition = Transition(change, current, new, start_ms if start_ms is not None else ts_ms)
        if new == 0:
            start_ms = None
    return LatchState(new, start_ms, ts_ms, kept, release_ms), transition


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
