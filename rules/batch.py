"""The batch path: a whole recorded history of one sensor at once.

The result is exactly what feeding the readings one by one, in the given order, to
:func:`rules.engine.evaluate_sensor` would give — same events, same final state — including
late, duplicate and NaN readings (a property test checks it). Threshold rules without delays
(every preset but those given an on- or off-delay) are evaluated with numpy: each level is a
hysteresis latch, which is a forward fill of "set here / reset here" marks; every other rule
runs reading by reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from rules.base import Rule
from rules.events import Change, RuleEvent, with_flapping
from rules.latch import Delays, LatchState, Transition
from rules.threshold import Direction, ThresholdRule

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


def evaluate_history(
    rules: Sequence[Rule],
    state: Mapping[str, Any],
    ts_ms: Sequence[int] | Ints,
    values: Sequence[float] | Floats,
    quality: Sequence[int] | Ints | None = None,
) -> tuple[dict[str, Any], list[RuleEvent]]:
    """Evaluate a sensor's readings in arrival order; events ordered as the stream gives them."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    quals = (
        np.zeros(len(ts), dtype=np.int64)
        if quality is None
        else np.asarray(quality, dtype=np.int64)
    )
    if len(ts) == 0:
        return dict(state), []
    new_state: dict[str, Any] = {}
    tagged: list[tuple[int, int, RuleEvent]] = []
    for position, rule in enumerate(rules):
        old = state.get(rule.rule_id)
        current = rule.initial() if old is None else old
        if isinstance(rule, ThresholdRule) and _vectorisable(rule, current):
            new, events = _threshold(rule, current, ts, vals)
        else:
            new, events = _loop(rule, current, ts, vals, quals)
        new_state[rule.rule_id] = new
        tagged.extend((index, position, event) for index, event in events)
    tagged.sort(key=lambda t: (t[0], t[1]))
    return new_state, [event for _i, _p, event in tagged]


def _loop(
    rule: Rule, state: Any, ts: Ints, vals: Floats, quals: Ints
) -> tuple[Any, list[tuple[int, RuleEvent]]]:
    events: list[tuple[int, RuleEvent]] = []
    for i, (t, v, q) in enumerate(zip(ts.tolist(), vals.tolist(), quals.tolist(), strict=True)):
        state, event = rule.evaluate(state, t, v, q)
        if event is not None:
            events.append((i, with_flapping(event, state.latch.flapping)))
    return state, events


def _vectorisable(rule: ThresholdRule, state: LatchState) -> bool:
    """No delays, clear set-points in level order, and no delay in progress in the state."""
    clears = [sp.clear for sp in rule.setpoints]
    ordered = clears == sorted(clears, reverse=rule.direction is Direction.LOW)
    return (
        rule.on_delay_ms == 0
        and rule.off_delay_ms == 0
        and rule.consecutive == 1
        and ordered
        and not state.pending
        and state.release_ms is None
    )


def _forward_fill(marks: npt.NDArray[np.int8], start: bool) -> Bools:
    """+1 sets, -1 resets, 0 keeps the previous value (``start`` before the first)."""
    index = np.where(marks != 0, np.arange(len(marks)), -1)
    last = np.maximum.accumulate(index)
    filled = marks[np.maximum(last, 0)] == 1
    return np.where(last >= 0, filled, start)


def _threshold(
    rule: ThresholdRule, state: LatchState, ts: Ints, vals: Floats
) -> tuple[LatchState, list[tuple[int, RuleEvent]]]:
    # Readings that count: finite, and newer than every reading counted before them.
    valid = np.isfinite(vals)
    floor = np.iinfo(np.int64).min if state.last_ts_ms is None else state.last_ts_ms
    seen = np.maximum.accumulate(np.concatenate(([floor], np.where(valid, ts, floor))))[:-1]
    keep = valid & (ts > seen)
    if not keep.any():
        return state, []
    where = np.flatnonzero(keep)
    t, v = ts[keep], vals[keep]
    high = rule.direction is Direction.HIGH
    latched = np.zeros(len(t), dtype=np.int64)
    for sp in rule.setpoints:
        reached = v >= sp.set if high else v <= sp.set
        held = v >= sp.clear if high else v <= sp.clear
        marks = np.where(reached, 1, np.where(held, 0, -1)).astype(np.int8)
        latched += _forward_fill(marks, state.level >= int(sp.level))
    level_of = np.array([0, *rule.levels], dtype=np.int64)
    levels = level_of[latched]
    before = np.concatenate(([state.level], levels[:-1]))
    changed = levels != before
    flapping, history, evaluations = _flapping(rule.delays, state, changed)
    events: list[tuple[int, RuleEvent]] = []
    start = state.start_ms
    for i in np.flatnonzero(changed).tolist():
        old, new = int(before[i]), int(levels[i])
        ts_i = int(t[i])
        if old == 0:
            start = ts_i
        change = (
            Change.RAISED if old == 0 else Change.CLEARED if new == 0 else (Change.LEVEL_CHANGED)
        )
        moved = Transition(
            change, old, new, start if start is not None else ts_i, bool(flapping[i])
        )
        events.append(
            (
                int(where[i]),
                with_flapping(
                    rule.band_event(moved, float(v[i]), ts_i, "threshold"), bool(flapping[i])
                ),
            )
        )
        if new == 0:
            start = None
    final = LatchState(
        level=int(levels[-1]),
        start_ms=start,
        last_ts_ms=int(t[-1]),
        pending=(),
        release_ms=None,
        history=history,
        evaluations=evaluations,
        flapping=bool(flapping[-1]),
    )
    return final, events


def _flapping(delays: Delays, state: LatchState, changed: Bools) -> tuple[Bools, int, int]:
    """The flapping flag after each evaluation, and the final history and count, exactly as
    :func:`rules.latch.flap` would give them one evaluation at a time."""
    window = delays.flap_window
    past = np.array([(state.history >> k) & 1 for k in range(window - 1, -1, -1)], dtype=np.int64)
    bits = np.concatenate((past, changed.astype(np.int64)))
    sums = np.concatenate(([0], np.cumsum(bits)))
    n = len(changed)
    ends = np.arange(window + 1, window + n + 1)
    counts = sums[ends] - sums[ends - window]
    evaluations = np.minimum(state.evaluations + np.arange(1, n + 1), window)
    fraction = counts / window
    enter = (fraction >= delays.flap_enter) & (2 * evaluations >= window)
    leave = fraction <= delays.flap_leave
    marks = np.where(enter, 1, np.where(leave, -1, 0)).astype(np.int8)
    flags = _forward_fill(marks, state.flapping)
    history = 0
    for bit in bits[-window:].tolist():
        history = (history << 1) | int(bit)
    return flags, history, int(evaluations[-1])
