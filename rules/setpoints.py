"""Set-point bands shared by the kinds whose levels are set/clear pairs on a signal: the value
(threshold), a rate of change, minutes to a target.

One set of checks, so a registry author reads the same message whatever the kind.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from rules.events import RuleEvent
from rules.latch import Delays, Transition, cached_delays
from rules.levels import Level


class Direction(StrEnum):
    """``high`` alarms when the signal rises to a set-point; ``low`` when it falls to it."""

    HIGH = "high"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class Setpoint:
    """One level of a rule: alarm at ``set``, return to normal past ``clear``."""

    level: Level
    set: float
    clear: float
    label: str = ""


class Banded:
    """What rules with a ``setpoints`` band per level share: their delays and levels.

    A mixin for frozen dataclasses that declare ``setpoints``, ``on_delay_ms``,
    ``off_delay_ms`` and ``consecutive``.
    """

    __slots__ = ()
    rule_id: str
    direction: Direction
    setpoints: tuple[Setpoint, ...]
    on_delay_ms: int
    off_delay_ms: int
    consecutive: int

    @property
    def delays(self) -> Delays:
        """On-delay, off-delay and consecutive readings, for the latch."""
        return cached_delays(self.on_delay_ms, self.off_delay_ms, self.consecutive)

    @property
    def levels(self) -> tuple[int, ...]:
        """The rule's levels as integers, ascending."""
        return tuple(int(sp.level) for sp in self.setpoints)

    def band_event(
        self,
        moved: Transition,
        signal: float,
        ts_ms: int,
        kind: str,
        window_ms: int | None = None,
    ) -> RuleEvent:
        """The event of a level change: the set value crossed when rising, the clear value of
        the level left when falling."""
        by_level = {int(sp.level): sp for sp in self.setpoints}
        crossed = by_level[moved.new] if moved.new > moved.old else by_level[moved.old]
        setpoint = crossed.set if moved.new > moved.old else crossed.clear
        return RuleEvent(
            rule_id=self.rule_id,
            direction=self.direction.value,
            change=moved.change,
            level=Level(moved.new) if moved.new else None,
            previous=Level(moved.old) if moved.old else None,
            value=signal,
            setpoint=setpoint,
            setpoint_label=crossed.label,
            ts_ms=ts_ms,
            start_ms=moved.start_ms,
            kind=kind,
            window_ms=window_ms,
        )

    def reached(self, signal: float, limit: float) -> bool:
        """True when ``signal`` is at or past ``limit`` on the alarm side (equality alarms)."""
        return signal >= limit if self.direction is Direction.HIGH else signal <= limit


def check_delays(rule_id: str, on_delay_ms: int, off_delay_ms: int, consecutive: int) -> None:
    """Refuse negative delays and fewer than one consecutive reading, naming the rule."""
    try:
        Delays(on_delay_ms, off_delay_ms, consecutive)
    except ValueError as exc:
        msg = f"rule {rule_id!r}: {exc}"
        raise ValueError(msg) from None


def ordered_setpoints(
    rule_id: str,
    kind: str,
    setpoints: Iterable[Setpoint],
    *,
    high: bool,
    clear_hint: str,
) -> tuple[Setpoint, ...]:
    """The set-points sorted by level, after checking them; ``ValueError`` in plain words.

    ``high`` says on which side of a set-point the signal alarms: at or above it (a rising
    rate) or at or below it (minutes to a target). Each level appears once, every set and
    clear value is finite, each clear value lies on the normal side of its set value, and a
    higher level's set-point lies further on the alarm side than the level below it.
    ``clear_hint`` ends the message about a clear value on the wrong side.
    """
    ordered = sorted(setpoints, key=lambda s: s.level)
    if not ordered:
        msg = f"rule {rule_id!r}: a {kind} rule needs at least one level"
        raise ValueError(msg)
    if len({s.level for s in ordered}) != len(ordered):
        msg = f"rule {rule_id!r}: each level may appear only once"
        raise ValueError(msg)
    for sp in ordered:
        if not (math.isfinite(sp.set) and math.isfinite(sp.clear)):
            msg = f"rule {rule_id!r}: set-points must be finite numbers"
            raise ValueError(msg)
        if (sp.clear > sp.set) if high else (sp.clear < sp.set):
            msg = (
                f"rule {rule_id!r}: {sp.level.label} clear set-point {sp.clear:g} is "
                f"{'above' if high else 'below'} its set-point {sp.set:g}; {clear_hint}"
            )
            raise ValueError(msg)
    for lower, upper in itertools.pairwise(ordered):
        if (upper.set <= lower.set) if high else (upper.set >= lower.set):
            msg = (
                f"rule {rule_id!r}: {upper.level.label} set-point {upper.set:g} must be "
                f"{'above' if high else 'below'} {lower.level.label} set-point {lower.set:g}"
            )
            raise ValueError(msg)
    return tuple(ordered)
