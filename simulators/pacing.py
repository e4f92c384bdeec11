"""Holding messages back until their time, at ``speed`` times real time.

The clock and the sleep are injected: the commands pass ``time.monotonic`` and an
interruptible wait, tests pass a fake clock whose sleep only moves it forward, so a test can
check that an hour at speed 60 takes one minute without waiting a minute.
"""

from __future__ import annotations

from collections.abc import Callable


class Pacer:
    """Maps message times to real times: the first message goes at once, each later one
    ``(t − t_first) / speed`` after it. ``speed`` ``None``: as fast as possible."""

    def __init__(
        self,
        speed: float | None,
        now: Callable[[], float],
        sleep: Callable[[float], bool],
    ) -> None:
        if speed is not None and not speed > 0:
            msg = f"the speed must be a positive factor, got {speed}"
            raise ValueError(msg)
        self.speed = speed
        self.now = now
        self.sleep = sleep
        self._anchor: tuple[int, float] | None = None
        self.late_s = 0.0
        """The most a message went out after its due time (a slow broker, a busy machine)."""

    def due(self, t_ms: int) -> float:
        """The real (monotonic) time at which the message of time ``t_ms`` is due."""
        if self._anchor is None:
            self._anchor = (t_ms, self.now())
        sim0, real0 = self._anchor
        speed = self.speed or 1.0
        return real0 + (t_ms - sim0) / 1000.0 / speed

    def wait_until(self, t_ms: int) -> bool:
        """Sleep until the message of time ``t_ms`` is due; ``False`` if interrupted."""
        if self.speed is None:
            return True
        due = self.due(t_ms)
        delay = due - self.now()
        if delay > 0:
            return self.sleep(delay)
        self.late_s = max(self.late_s, -delay)
        return True
