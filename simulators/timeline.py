"""Piecewise-constant settings over scenario time, and stepping models across their changes.

Physical models integrate exactly only while their inputs hold still; a leak that starts
between two readings must start at its own time, not at the next reading. So every model
steps from change to change (and at most ``max_step`` at a time), evaluating its inputs at the
start of each step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from simulators.scenario import Cycle, Window


def is_on(window: Window, cycle: Cycle | None, t_ms: int) -> bool:
    """Whether a (possibly cycling) window is in force at ``t_ms``."""
    if not window.contains(t_ms):
        return False
    if cycle is None:
        return True
    period = round((cycle.on_s + cycle.off_s) * 1000)
    return (t_ms - window.start_ms) % period < round(cycle.on_s * 1000)


def next_edge(window: Window, cycle: Cycle | None, t_ms: int) -> int | None:
    """The first instant after ``t_ms`` at which the window (or its cycle) switches."""
    if t_ms < window.start_ms:
        return window.start_ms
    if window.end_ms is not None and t_ms >= window.end_ms:
        return None
    edge = window.end_ms
    if cycle is not None:
        on_ms, period = round(cycle.on_s * 1000), round((cycle.on_s + cycle.off_s) * 1000)
        into = (t_ms - window.start_ms) % period
        step = on_ms - into if into < on_ms else period - into
        edge = t_ms + step if edge is None else min(edge, t_ms + step)
    return edge


def earliest(t_ms: int, edges: Iterable[tuple[Window, Cycle | None]]) -> int | None:
    """The next switch of any of ``edges`` after ``t_ms``."""
    found: int | None = None
    for window, cycle in edges:
        edge = next_edge(window, cycle, t_ms)
        if edge is not None and (found is None or edge < found):
            found = edge
    return found


def step_through(
    t0_ms: int,
    t1_ms: int,
    max_step_ms: int,
    next_change: Callable[[int], int | None],
    step: Callable[[int, int], None],
) -> None:
    """Call ``step(a, b)`` over ``[t0, t1]`` in pieces cut at every change and ``max_step``."""
    t = t0_ms
    while t < t1_ms:
        end = min(t1_ms, t + max_step_ms)
        change = next_change(t)
        if change is not None and t < change < end:
            end = change
        step(t, end)
        t = end
