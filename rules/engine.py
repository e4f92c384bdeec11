"""Evaluate all rules of one sensor: the pure core both runners and ``backtest`` call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rules.base import Rule
from rules.events import RuleEvent, with_flapping

SensorState = Mapping[str, Any]
"""Rule id → that rule's state; a sensor's complete rule state."""


def evaluate_sensor(
    rules: Sequence[Rule], state: SensorState, ts_ms: int, value: float, quality: int = 0
) -> tuple[dict[str, Any], list[RuleEvent]]:
    """Apply one reading to every rule of a sensor; return the new state and the events."""
    new_state: dict[str, Any] = {}
    events: list[RuleEvent] = []
    for rule in rules:
        old = state.get(rule.rule_id)
        new, event = rule.evaluate(rule.initial() if old is None else old, ts_ms, value, quality)
        new_state[rule.rule_id] = new
        if event is not None:
            # The latch knows whether this alarm is chattering; the event carries it so that
            # alerting can hold back re-notification until it settles.
            events.append(with_flapping(event, new.latch.flapping))
    return new_state, events


def tick_sensor(
    rules: Sequence[Rule], state: SensorState, now_ms: int
) -> tuple[dict[str, Any], list[RuleEvent]]:
    """Let time pass for every rule of a sensor (offline detection and other clock rules)."""
    new_state: dict[str, Any] = {}
    events: list[RuleEvent] = []
    for rule in rules:
        old = state.get(rule.rule_id)
        new, event = rule.tick(rule.initial() if old is None else old, now_ms)
        new_state[rule.rule_id] = new
        if event is not None:
            # The latch knows whether this alarm is chattering; the event carries it so that
            # alerting can hold back re-notification until it settles.
            events.append(with_flapping(event, new.latch.flapping))
    return new_state, events


def is_stale(state: SensorState, ts_ms: int) -> bool:
    """True when every rule has already seen a reading at or after ``ts_ms``."""
    return bool(state) and all(s.latch.is_stale(ts_ms) for s in state.values())


def state_to_dict(state: SensorState) -> dict[str, Any]:
    """Serialise a sensor's rule state to plain data (for Faust tables and snapshots)."""
    return {rule_id: s.to_dict() for rule_id, s in state.items()}


def state_from_dict(rules: Sequence[Rule], data: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`state_to_dict`; states of rules no longer configured are dropped."""
    by_id = {rule.rule_id: rule for rule in rules}
    return {rid: by_id[rid].state_from_dict(s) for rid, s in data.items() if rid in by_id}
