"""Checks shared by the kinds whose levels are :class:`~rules.threshold.Setpoint` lists on a
derived signal (a rate of change, minutes to a target).

The words match the threshold rule's, so a registry author reads the same message whatever the
kind; :mod:`rules.threshold` keeps its own copy of the checks unchanged.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

from rules.latch import Delays
from rules.threshold import Setpoint


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
