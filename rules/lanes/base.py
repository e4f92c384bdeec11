"""What a lane offers the fleet engine.

A lane holds every (sensor, rule) *slot* of one rule kind that it can evaluate with arrays.
It is the columnar twin of that kind's reference implementation (the rule's own
``evaluate``/``tick``): for the same readings in the same order it must give the same events
and, through :meth:`Lane.get`, the same state values — a property test per lane checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from rules.base import Rule
from rules.events import RuleEvent
from rules.lanes.columns import Bools, Floats, Ints


@dataclass(frozen=True, slots=True)
class Batch:
    """Observations for a lane: one per (reading, slot), each slot's in arrival order. How the
    slots' observations interleave does not matter to :meth:`Lane.evaluate` (the fleet engine
    hands them grouped by slot); :meth:`Replays.replay` takes them in time order."""

    slot: Ints
    ts: Ints
    value: Floats
    quality: Ints
    grouping: Ints | None = None
    """The positions of the observations sorted by slot, arrival order kept within each
    (``argsort(slot, kind="stable")``), when the caller knows them: a lane that needs the
    batch in time order and grouped too need not sort it."""

    def __len__(self) -> int:
        return len(self.slot)


Emitted = list[tuple[int, RuleEvent]]
"""``(position, event)``: for :meth:`Lane.evaluate` the event's observation in the batch, for
:meth:`Lane.tick` the slot. Events carry the latch's ``flapping`` flag."""


class Lane(Protocol):
    """Columnar evaluation of one rule kind for many slots."""

    @property
    def kind(self) -> str:
        """The rule kind (``threshold``, ``offline``…)."""
        ...

    def accepts(self, rule: Rule, state: Any) -> bool:
        """Whether this lane can evaluate ``rule`` from ``state`` (its reference state)."""
        ...

    def add(self, rule: Rule, state: Any) -> int:
        """Take a rule that :meth:`accepts` with its state; return its slot."""
        ...

    def get(self, slot: int) -> Any:
        """The slot's state as the reference state value (for snapshots and tables)."""
        ...

    def level(self, slots: Ints) -> Ints:
        """The current alarm level of each slot (0: none)."""
        ...

    def evaluate(self, batch: Batch) -> Emitted:
        """Apply the batch; events ordered by position."""
        ...

    def tick(self, now_ms: int, slots: Bools | None = None) -> Emitted:
        """Let time pass for every slot (or those where ``slots``); events ordered by slot."""
        ...


@runtime_checkable
class Replays(Protocol):
    """A clock lane that evaluates a whole recording with its ticks in one call."""

    def replay(
        self, batch: Batch, ticks: Ints, slots: Bools | None = None
    ) -> list[tuple[int, int, int, RuleEvent]]:
        """Exactly :meth:`Lane.evaluate` of the observations before each tick, then
        :meth:`Lane.tick`, tick after tick. Returns ``(index, phase, slot, event)`` in that
        order: phase 0 a tick's event (``index`` the tick's), phase 1 an observation's
        (``index`` its position in the batch)."""
        ...
