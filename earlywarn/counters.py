"""What the runner has done, counted: printed on shutdown, read by tests and the benchmark."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Counters:
    """Monotonic counts since start. Mutated only on the event loop."""

    received: int = 0
    """MQTT messages taken from the hand-off."""
    readings: int = 0
    """Readings accepted (a multi-channel or back-fill message holds several)."""
    rejected: Counter[str] = field(default_factory=Counter)
    """Rejected messages or elements, by reason."""
    evaluated: int = 0
    """Readings run through the rules."""
    stale: int = 0
    """Readings not newer than the sensor's last one (duplicates, late arrivals): ignored."""
    alarms: Counter[str] = field(default_factory=Counter)
    """Alarm events by level (``cleared`` for clears)."""
    deadletters: int = 0
    """Messages published to the dead-letter topic."""
    backpressure: int = 0
    """Times the MQTT thread had to wait because the hand-off was full."""
    unstored: int = 0
    """Accepted readings the storage spool could not take (a full disk, a broken file)."""

    def snapshot(self) -> dict[str, Any]:
        """A plain copy, safe to hand to another thread."""
        return {
            "received": self.received,
            "readings": self.readings,
            "rejected": dict(self.rejected),
            "evaluated": self.evaluated,
            "stale": self.stale,
            "alarms": dict(self.alarms),
            "deadletters": self.deadletters,
            "backpressure": self.backpressure,
            "unstored": self.unstored,
        }

    def format(self) -> str:
        """Multi-line summary for the console."""
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items())) or "none"
        alarms = ", ".join(f"{k} {v}" for k, v in sorted(self.alarms.items())) or "none"
        unstored = [f"  NOT STORED          {self.unstored}"] if self.unstored else []
        return "\n".join(
            [
                f"  messages received   {self.received}",
                f"  readings accepted   {self.readings}",
                f"  readings evaluated  {self.evaluated}",
                f"  stale or duplicate  {self.stale} (older than the sensor's last reading)",
                f"  rejected            {sum(self.rejected.values())} ({rejected})",
                f"  dead-letters sent   {self.deadletters}",
                f"  alarm events        {sum(self.alarms.values())} ({alarms})",
                f"  backpressure waits  {self.backpressure}",
                *unstored,
            ]
        )
