"""The batch path: a whole recorded history of one sensor at once.

The result is exactly what feeding the readings one by one, in the given order, to
:func:`rules.engine.evaluate_sensor` would give — same events, same final state — including
late, duplicate and NaN readings (a property test checks it). It is the fleet engine
(:mod:`rules.fleet`) with one sensor: each rule kind that has a lane is evaluated with numpy
over the whole history, the others reading by reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rules.base import Rule
from rules.events import RuleEvent
from rules.fleet import FleetEngine
from rules.lanes.columns import Floats, Ints


def evaluate_history(
    rules: Sequence[Rule],
    state: Mapping[str, Any],
    ts_ms: Sequence[int] | Ints,
    values: Sequence[float] | Floats,
    quality: Sequence[int] | Ints | None = None,
) -> tuple[dict[str, Any], list[RuleEvent]]:
    """Evaluate a sensor's readings in arrival order; events ordered as the stream gives them."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    if len(ts) == 0:
        return dict(state), []
    fleet = FleetEngine()
    fleet.add(rules, state)
    found = fleet.evaluate(
        np.zeros(len(ts), dtype=np.int64),
        ts,
        np.asarray(values, dtype=np.float64),
        None if quality is None else np.asarray(quality, dtype=np.int64),
    )
    return fleet.state(0), [event for _position, _sensor, event in found]
