"""The batch path gives exactly what the stream gives: events and final state.

Whole histories, random micro-batches and the reading-by-reading engine are compared on series
with late, duplicate and NaN readings, for vectorised threshold rules (high and low, several
levels, flapping) and for kinds that run reading by reading.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import engine
from rules.base import Rule
from rules.batch import evaluate_history
from rules.levels import Level
from rules.rate import RateRule
from rules.spike import SpikeRule
from rules.threshold import Direction, Setpoint, ThresholdRule

T0 = 1_795_284_000_000


@st.composite
def threshold_rules(draw: st.DrawFn, rule_id: str = "t") -> ThresholdRule:
    levels = sorted(draw(st.sets(st.sampled_from(list(Level)), min_size=1, max_size=4)))
    sets = sorted(
        draw(
            st.lists(st.integers(-50, 50), min_size=len(levels), max_size=len(levels), unique=True)
        )
    )
    low = draw(st.booleans())
    if low:
        sets = sets[::-1]
    points = []
    for level, s in zip(levels, sets, strict=True):
        band = draw(st.integers(0, 8))
        points.append(Setpoint(level, float(s), float(s + band if low else s - band)))
    delayed = draw(st.booleans())
    return ThresholdRule(
        rule_id,
        Direction.LOW if low else Direction.HIGH,
        tuple(points),
        on_delay_ms=draw(st.sampled_from([0, 2000])) if delayed else 0,
        off_delay_ms=draw(st.sampled_from([0, 3000])) if delayed else 0,
        consecutive=draw(st.integers(1, 3)) if delayed else 1,
    )


readings = st.lists(
    st.tuples(
        st.integers(0, 120),  # seconds: collisions give duplicates, order gives late readings
        st.one_of(st.integers(-60, 60).map(float), st.just(math.nan)),
    ),
    max_size=120,
)


def stream(
    rules: list[Rule], state: dict[str, Any], series: list[tuple[int, float]]
) -> tuple[dict[str, Any], list[Any]]:
    events = []
    for t, v in series:
        state, new = engine.evaluate_sensor(rules, state, T0 + t * 1000, v)
        events.extend(new)
    return state, events


def as_arrays(series: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    return [T0 + t * 1000 for t, _ in series], [v for _, v in series]


@settings(max_examples=300)
@given(st.lists(threshold_rules(), min_size=1, max_size=3), readings, st.data())
def test_history_and_micro_batches_equal_the_stream(
    rules: list[ThresholdRule], series: list[tuple[int, float]], data: st.DataObject
) -> None:
    rules = [
        ThresholdRule(
            f"r{i}", r.direction, r.setpoints, r.on_delay_ms, r.off_delay_ms, r.consecutive
        )
        for i, r in enumerate(rules)
    ]
    expected_state, expected = stream(list(rules), {}, series)
    state, events = evaluate_history(rules, {}, *as_arrays(series))
    assert events == expected
    assert state == expected_state

    # The same readings in micro-batches of random sizes, state carried between them.
    cuts = sorted(data.draw(st.sets(st.integers(0, len(series)), max_size=6)))
    state, events = {}, []
    for a, b in zip([0, *cuts], [*cuts, len(series)], strict=True):
        state, new = evaluate_history(rules, state, *as_arrays(series[a:b]))
        events.extend(new)
    assert events == expected
    assert json.dumps(engine.state_to_dict(state)) == json.dumps(
        engine.state_to_dict(expected_state)
    )


@given(readings)
def test_kinds_without_a_vector_path_agree_too(series: list[tuple[int, float]]) -> None:
    rules: list[Rule] = [
        RateRule("rate", Direction.HIGH, (Setpoint(Level.YELLOW, 5.0, 3.0),), 60_000),
        SpikeRule("spike", window_points=10, min_points=4, min_scale=1.0),
    ]
    expected_state, expected = stream(rules, {}, series)
    state, events = evaluate_history(rules, {}, *as_arrays(series))
    assert events == expected
    assert engine.state_to_dict(state) == engine.state_to_dict(expected_state)


def test_an_oscillating_value_flaps_the_same_way_in_both_paths() -> None:
    rule = ThresholdRule("gas", Direction.HIGH, (Setpoint(Level.ORANGE, 25.0, 25.0),))
    series = [(i, 30.0 if i % 2 else 20.0) for i in range(60)] + [(60 + i, 10.0) for i in range(30)]
    expected_state, expected = stream([rule], {}, series)
    state, events = evaluate_history([rule], {}, *as_arrays(series))
    assert events == expected and state == expected_state
    assert any(e.flapping for e in events)
    assert not state["gas"].flapping, "a steady value afterwards settles it"
