"""Columns grow into spare room: adding slots one at a time copies the columns a logarithmic
number of times, not once per slot, and keeps every row (also across a widening or a column
assigned anew)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.accumulation import AccumulationRule, LevelWindows, Mode, WindowSetpoint
from rules.lanes.accumulation import AccumulationLane
from rules.lanes.columns import Spare
from rules.lanes.offline import OfflineLane
from rules.lanes.out_of_range import OutOfRangeLane
from rules.lanes.spike import SpikeLane
from rules.lanes.threshold import ThresholdLane
from rules.lanes.trend import RateLane
from rules.levels import Level
from rules.offline import OfflineRule
from rules.out_of_range import OutOfRangeRule
from rules.rate import RateRule
from rules.spike import SpikeRule
from rules.threshold import Direction, Setpoint, ThresholdRule

SLOTS = 1000


def _address(array: Any) -> int:
    address: int = array.__array_interface__["data"][0]
    return address


class _Owner:
    def __init__(self) -> None:
        self.flat = np.zeros(0, np.int64)
        self.table = np.zeros((0, 2), np.float64)


def test_growing_a_row_at_a_time_copies_a_logarithmic_number_of_times() -> None:
    owner, spare = _Owner(), Spare()
    buffers = set()
    for n in range(1, SLOTS + 1):
        spare.grow(owner, ("flat", "table"), n)
        assert owner.flat.shape == (n,) and owner.table.shape == (n, 2)
        assert owner.flat[-1] == 0 and (owner.table[-1] == 0).all(), "new rows are zeros"
        owner.flat[-1] = n
        owner.table[-1] = (n, -n)
        buffers.add(_address(owner.flat))
    assert len(buffers) <= 8  # 16, 32, …, 1024 rows
    assert owner.flat.tolist() == list(range(1, SLOTS + 1))
    assert owner.table[:, 1].tolist() == [-float(n) for n in range(1, SLOTS + 1)]


def test_a_column_assigned_anew_or_widened_keeps_its_rows() -> None:
    owner, spare = _Owner(), Spare()
    spare.grow(owner, ("flat", "table"), 3)
    owner.flat[:] = (1, 2, 3)
    owner.table[:] = 7.0
    kept = owner.flat
    owner.flat = owner.flat * 10  # assigned anew, as a replay does
    owner.table = np.hstack((owner.table, np.full((3, 1), 9.0)))  # widened
    spare.grow(owner, ("flat", "table"), 4)
    assert owner.flat.tolist() == [10, 20, 30, 0]
    assert owner.table.tolist() == [[7.0, 7.0, 9.0]] * 3 + [[0.0, 0.0, 0.0]]
    assert kept.tolist() == [1, 2, 3], "a view handed out before is left alone"
    spare.grow(owner, ("flat",), 5)
    assert owner.flat.tolist() == [10, 20, 30, 0, 0]


def _lanes() -> list[tuple[Any, Any, tuple[str, ...]]]:
    """Each lane with a rule it takes and the columns it grows per slot."""
    rain = AccumulationRule(
        "rain",
        Mode.INTERVAL,
        (LevelWindows(Level.BLUE, "blue", (WindowSetpoint(3000, 5, 2),)),),
        bucket_ms=1000,
    )
    return [
        (
            ThresholdLane(),
            ThresholdRule("t", Direction.HIGH, (Setpoint(Level.RED, 5, 4),)),
            ThresholdLane._COLUMNS,
        ),
        (OfflineLane(), OfflineRule("o", interval_ms=1000), OfflineLane._COLUMNS),
        (
            OutOfRangeLane(),
            OutOfRangeRule("r", 0, 1, fault_values=(5.0,), fault_qualities=(3, 4)),
            OutOfRangeLane._COLUMNS,
        ),
        (SpikeLane(), SpikeRule("s", window_points=5, min_points=3), ()),
        (AccumulationLane(), rain, ()),
        (
            RateLane(),
            RateRule("q", Direction.HIGH, (Setpoint(Level.RED, 1, 1),), window_ms=1000),
            (),
        ),
    ]


def test_lanes_add_slots_without_copying_their_columns_each_time() -> None:
    """Every lane's latch columns and own per-slot columns move to a new buffer only when it
    is full, however many slots are added (so building a fleet is linear)."""
    for lane, rule, columns in _lanes():
        names = [("latch", name) for name in lane.latch._COLUMNS] + [(None, c) for c in columns]
        seen: dict[tuple[str | None, str], set[int]] = {name: set() for name in names}
        for slot in range(SLOTS):
            assert lane.add(rule, rule.initial()) == slot
            for owner, name in names:
                array = getattr(lane.latch if owner else lane, name)
                assert len(array) == slot + 1
                seen[owner, name].add(_address(array))
        for name, addresses in seen.items():
            assert len(addresses) <= 8, (lane.kind, name)
        assert [lane.get(s) for s in (0, SLOTS // 2, SLOTS - 1)] == [rule.initial()] * 3
