"""Injected time. Rules, timers and simulators ask a :class:`Clock`, so tests can run hours of
simulated time in milliseconds and never sleep for real."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in epoch milliseconds (UTC)."""

    def now_ms(self) -> int:
        """The current time."""
        ...


class SystemClock:
    """The machine's clock."""

    def now_ms(self) -> int:
        """The current time from ``time.time()``."""
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to; for tests and simulated time."""

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        """The set time."""
        return self._now

    def set(self, ms: int) -> None:
        """Jump to ``ms`` (never backwards)."""
        self._now = max(self._now, ms)

    def advance(self, ms: int) -> None:
        """Move forward by ``ms``."""
        self._now += ms
