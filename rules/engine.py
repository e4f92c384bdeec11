"""Evaluate all rules of one sensor for one reading: the pure core both runners call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules import threshold
from rules.events import RuleEvent
from rules.threshold import ThresholdRule, ThresholdState

SensorState = Mapping[str, ThresholdState]
"""Rule id → that rule's state; a sensor's complete rule state."""


def evaluate_sensor(
    rules: tuple[ThresholdRule, ...], state: SensorState, ts_ms: int, value: float
) -> tuple[dict[str, ThresholdState], list[RuleEvent]]:
    """Apply one reading to every rule of a sensor; return the new state and the events."""
    new_state: dict[str, ThresholdState] = {}
    events: list[RuleEvent] = []
    for rule in rules:
        old = state.get(rule.rule_id, _EMPTY)
        new, event = threshold.evaluate(rule, old, ts_ms, value)
        new_state[rule.rule_id] = new
        if event is not None:
            events.append(event)
    return new_state, events


def is_stale(state: SensorState, ts_ms: int) -> bool:
    """True when every rule has already seen a reading at or after ``ts_ms``."""
    return bool(state) and all(threshold.is_stale(s, ts_ms) for s in state.values())


def state_to_dict(state: SensorState) -> dict[str, Any]:
    """Serialise a sensor's rule state to plain data (for Faust tables and snapshots)."""
    return {rule_id: s.to_dict() for rule_id, s in state.items()}


def state_from_dict(data: Mapping[str, Any]) -> dict[str, ThresholdState]:
    """Inverse of :func:`state_to_dict`."""
    return {rule_id: ThresholdState.from_dict(s) for rule_id, s in data.items()}


_EMPTY = ThresholdState()
