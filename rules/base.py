"""What every rule kind offers the engine, so runners never need to know the kinds.

A rule is a frozen, validated description (its set-points, windows, delays). Its state is a
separate frozen value holding a :class:`~rules.latch.LatchState` under ``latch`` plus whatever
the kind needs (recent samples, rainfall buckets); ``to_dict`` makes it plain data for Faust
tables and snapshots, and the rule's ``state_from_dict`` reads it back.

``evaluate`` takes one reading of the sensor; ``tick`` lets time pass without a reading
(clock-driven kinds such as offline detection act there; the others return their state
unchanged). Both are pure: no I/O, no clock of their own.
"""

from __future__ import annotations

from typing import Any, Protocol

from rules.events import RuleEvent
from rules.latch import LatchState


class RuleState(Protocol):
    """The per-(sensor, rule) state of any kind."""

    @property
    def latch(self) -> LatchState:
        """The alarm latch (level, start, delays in progress, last reading time)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        ...


class Rule(Protocol):
    """A rule kind: evaluated on readings and on clock ticks."""

    @property
    def rule_id(self) -> str:
        """Unique among the sensor's rules; with the sensor it identifies the alarm."""
        ...

    @property
    def kind(self) -> str:
        """``threshold``, ``rate``, ``projection``, ``accumulation``, ``offline``…"""
        ...

    def initial(self) -> Any:
        """The state before any reading."""
        ...

    def evaluate(
        self, state: Any, ts_ms: int, value: float, quality: int = 0
    ) -> tuple[Any, RuleEvent | None]:
        """Apply one reading; readings not newer than the last one must change nothing."""
        ...

    def tick(self, state: Any, now_ms: int) -> tuple[Any, RuleEvent | None]:
        """Let time pass without a reading."""
        ...

    def state_from_dict(self, data: dict[str, Any]) -> Any:
        """Read back a state written by its ``to_dict``."""
        ...
