"""The values the spool takes and gives: line classes, the size policy, batches, rejected lines
and counters. Apart from :mod:`storage.spool` so that it stays about the SQLite file."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Batch", "Klass", "ReadingsAtLimit", "Rejected", "SpoolStats"]


class Klass(enum.IntEnum):
    """What a line is, for the size policy: readings may be dropped by policy, events never."""

    READING = 0
    EVENT = 1


class ReadingsAtLimit(enum.StrEnum):
    """What happens to readings once the spool holds ``max_bytes``.

    Events are kept whatever the policy: an alarm or notification record is never dropped.
    """

    KEEP = "keep"
    """Keep every reading: the spool grows past its limit (the disk is the limit) and warns."""
    DROP_OLDEST = "drop-oldest"
    """Delete the oldest readings to make room: recent data matters most in an emergency."""
    DROP_NEW = "drop-new"
    """Refuse new readings: the spool keeps the continuous older history."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Lines peeked from the head of the spool, in order, with their ids."""

    ids: tuple[int, ...]
    lines: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def last_id(self) -> int:
        """The highest id in the batch (0 for an empty batch)."""
        return self.ids[-1] if self.ids else 0


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line the server refused for good, kept for inspection with the server's reason."""

    line_id: int
    klass: Klass
    text: str
    reason: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """Counters since this object was opened (depth and size live in the file itself)."""

    appended: int = 0
    removed: int = 0
    over_limit: int = 0
    dropped_readings: int = 0
    refused_readings: int = 0
    rejected: int = 0
