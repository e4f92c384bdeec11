"""The segmented building blocks against plain Python: grouping observations by slot (whether
they come grouped already, as the fleet engine hands a large batch over, or not), keeping
some of them, and the latch scan."""

from __future__ import annotations

from itertools import groupby

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.lanes.columns import Segments, counting, forward_fill, latch_marks

Observations = tuple[list[int], list[bool], list[int], bool]
"""Slots of the observations; a flag per observation (kept, or a slot's initial latch); latch
marks; whether the slots come sorted."""

observations = st.lists(st.integers(0, 5), max_size=40).flatmap(
    lambda slots: st.tuples(
        st.just(slots),
        st.lists(st.booleans(), min_size=len(slots), max_size=len(slots)),
        st.lists(st.sampled_from([-1, 0, 1]), min_size=len(slots), max_size=len(slots)),
        st.booleans(),
    )
)


def _expected(slots: list[int]) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """Order, grouped slots, segment starts, segment of and rank of each observation."""
    order = sorted(range(len(slots)), key=lambda i: slots[i])  # Python's sort is stable
    grouped = [slots[i] for i in order]
    first, seg_of, rank = [], [], []
    for s, (_slot, run) in enumerate(groupby(grouped)):
        first.append(len(seg_of))
        size = len(list(run))
        seg_of += [s] * size
        rank += list(range(1, size + 1))
    return order, grouped, first, seg_of, rank


def _check(seg: Segments, order: list[int], slots: list[int]) -> None:
    want_order, grouped, first, seg_of, rank = _expected(slots)
    assert seg.order.tolist() == [order[i] for i in want_order]
    assert seg.slot.tolist() == grouped
    assert seg.first.tolist() == first
    assert seg.last.tolist() == [*(f - 1 for f in first[1:]), *([len(slots) - 1] if slots else [])]
    assert seg.seg_slot.tolist() == [grouped[f] for f in first]
    assert seg.seg_of.tolist() == seg_of
    assert seg.rank.tolist() == rank
    assert seg.sizes.tolist() == [seg_of.count(s) for s in range(len(first))]
    assert seg.expand(seg.seg_slot).tolist() == grouped
    assert len(seg) == len(slots)


@given(observations)
def test_segments_group_by_slot_keeping_arrival_order(data: Observations) -> None:
    slots, keep, _marks, presorted = data
    if presorted:
        slots = sorted(slots)
    array = np.array(slots, dtype=np.int64)
    seg = Segments.of(array)
    _check(seg, list(range(len(slots))), slots)
    assert seg.grouped == (slots == sorted(slots))
    column = np.arange(len(slots)) * 10
    assert seg.gather(column).tolist() == column[seg.order].tolist()
    # Keeping some: still grouped, each kept observation with its caller's position.
    kept = np.array(keep, dtype=np.bool_)
    sub = seg.take(kept)
    positions = seg.order[kept].tolist()
    _check(sub, positions, [slots[p] for p in positions])
    assert not sub.grouped


@given(observations)
def test_forward_fill_is_a_latch_per_segment(data: Observations) -> None:
    slots, initial_flags, marks, _ = data
    seg = Segments.of(np.array(slots, dtype=np.int64))
    initial = np.array(initial_flags[:6] + [False] * (6 - len(initial_flags[:6])), np.bool_)
    grouped_marks = np.array(marks, dtype=np.int8)[seg.order]
    before = grouped_marks.copy()
    got = forward_fill(seg, grouped_marks, initial).tolist()
    assert grouped_marks.tolist() == before.tolist(), "the caller's marks are left alone"
    want = []
    for i, mark in enumerate(before.tolist()):
        if i in seg.first.tolist():
            latched = bool(initial[seg.slot[i]])
        latched = True if mark == 1 else False if mark == -1 else latched
        want.append(latched)
    assert got == want


@pytest.mark.parametrize(("reached", "held", "mark"), [(1, 1, 1), (1, 0, 1), (0, 1, 0), (0, 0, -1)])
def test_latch_marks(reached: int, held: int, mark: int) -> None:
    marks = latch_marks(np.array([bool(reached)]), np.array([bool(held)]))
    assert marks.dtype == np.int8
    assert marks.tolist() == [mark]


def test_counting_is_shared_and_read_only() -> None:
    assert counting(0).tolist() == []
    assert counting(5).tolist() == [0, 1, 2, 3, 4]
    big = counting(100_000)
    assert big[-1] == 99_999
    assert counting(3).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="read-only"):
        big[0] = 1
