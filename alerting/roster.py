"""Who is on duty: weekly rosters resolved on the region's local clock, and duty references.

A roster is checked when the registry is loaded (no gaps, no ambiguous overlaps, see
:func:`gaps` and :func:`conflicts`), so resolving it at the moment of sending is a lookup
that cannot come back empty. Everything here is pure: time comes in as epoch milliseconds.

The week is modelled as 10,080 minutes starting Monday 00:00 local time. Shifts are written
in local wall-clock time, so a roster in a zone with daylight saving still covers every
instant: a wall-clock minute skipped or repeated by a clock change belongs to whichever shift
covers that wall-clock time. Asia/Shanghai has had no daylight saving since 1991.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from earlywarn.model import MINUTES_PER_DAY, DutyRef, Region, Rung, Shift

__all__ = [
    "DAY_NAMES",
    "MINUTES_PER_WEEK",
    "RELATIVE_LEVELS",
    "ancestors",
    "conflicts",
    "format_span",
    "gaps",
    "minute_of_week",
    "nearest_region",
    "on_duty",
    "people_of",
]

MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
RELATIVE_LEVELS = ("township", "county")
"""``duty:township`` / ``duty:county``: the nearest region of that level at or above an
enterprise's region; any other word after ``duty:`` is a region id."""


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def minute_of_week(now_ms: int, timezone: str) -> int:
    """Minutes since Monday 00:00 on the local clock of ``timezone`` (an IANA name)."""
    local = datetime.fromtimestamp(now_ms / 1000, tz=UTC).astimezone(_zone(timezone))
    return local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute


def _covers(shift: Shift, minute: int) -> bool:
    for day in shift.days:
        if (minute - (day * MINUTES_PER_DAY + shift.start_min)) % MINUTES_PER_WEEK < shift.minutes:
            return True
    return False


def on_duty(region: Region, now_ms: int) -> tuple[str, ...]:
    """Person ids on duty in ``region`` at ``now_ms``, in roster order, without repeats.

    Without a roster everyone in ``region.duty`` is on duty. A loaded registry has no gaps; a
    region built by hand with a gap gets everyone who may be on duty during it, because for
    an alarm waking too many people is the lesser failure than waking nobody.
    """
    if not region.roster:
        return region.duty
    minute = minute_of_week(now_ms, region.timezone)
    found: dict[str, None] = {}
    for shift in region.roster:
        if _covers(shift, minute):
            found.update(dict.fromkeys(shift.duty))
    return tuple(found) or region.duty


def ancestors(regions: Mapping[str, Region], start: str) -> tuple[str, ...]:
    """``start`` and every region above it (township → county), nearest first.

    Unknown ids end the walk and a cycle is walked once, so a broken registry cannot hang it.
    """
    found: list[str] = []
    current: str | None = start
    while current is not None and current in regions and current not in found:
        found.append(current)
        current = regions[current].parent
    return tuple(found)


def nearest_region(regions: Mapping[str, Region], start: str, level: str) -> str | None:
    """The nearest region at ``level`` (``township``, ``county``) at or above ``start``."""
    for rid in ancestors(regions, start):
        if regions[rid].level == level:
            return rid
    return None


def people_of(rung: Rung, regions: Mapping[str, Region], now_ms: int) -> tuple[str, ...]:
    """The person ids a rung reaches at ``now_ms``: duty references go through the roster.

    A duty reference to a region not in ``regions`` reaches nobody (the loader rejects it).
    """
    found: dict[str, None] = {}
    for target in rung:
        if isinstance(target, DutyRef):
            region = regions.get(target.region)
            if region is not None:
                found.update(dict.fromkeys(on_duty(region, now_ms)))
        else:
            found[target] = None
    return tuple(found)


# --- checks for the loader --------------------------------------------------------------


def _minutes(shift: Shift) -> Iterator[int]:
    for day in shift.days:
        first = day * MINUTES_PER_DAY + shift.start_min
        for offset in range(shift.minutes):
            yield (first + offset) % MINUTES_PER_WEEK


def _runs(minutes: set[int]) -> list[tuple[int, int]]:
    """Maximal runs ``(start, length)`` of a set of minutes on the circular week."""
    if len(minutes) == MINUTES_PER_WEEK:
        return [(0, MINUTES_PER_WEEK)]
    runs: list[tuple[int, int]] = []
    for m in sorted(minutes):
        if (m - 1) % MINUTES_PER_WEEK in minutes:
            continue
        length = 1
        while (m + length) % MINUTES_PER_WEEK in minutes:
            length += 1
        runs.append((m, length))
    return runs


def gaps(roster: tuple[Shift, ...]) -> list[tuple[int, int]]:
    """Times of the week when nobody is on duty, as ``(start minute of week, length)``."""
    covered: set[int] = set()
    for shift in roster:
        covered.update(_minutes(shift))
    return _runs(set(range(MINUTES_PER_WEEK)) - covered)


def conflicts(roster: tuple[Shift, ...]) -> list[tuple[int, int, int, int]]:
    """Overlapping entries that name different people: ``(first, second, start, length)``.

    Overlaps that name the same people are not ambiguous (a night shift running into an
    all-day weekend entry of the same officer) and are not reported. Each pair of entries is
    reported once, with its first overlapping stretch of the week.
    """
    owner: dict[int, int] = {}
    clashes: dict[tuple[int, int], set[int]] = {}
    for index, shift in enumerate(roster):
        for minute in _minutes(shift):
            first = owner.setdefault(minute, index)
            if first != index and set(roster[first].duty) != set(shift.duty):
                clashes.setdefault((first, index), set()).add(minute)
    found = []
    for (first, second), minutes in clashes.items():
        start, length = _runs(minutes)[0]
        found.append((first, second, start, length))
    return sorted(found, key=lambda c: (c[1], c[0]))


def _clock(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


def format_span(start: int, length: int) -> str:
    """A stretch of the week in words: ``Mon 00:00–08:00``, ``Fri 18:00–Sat 08:00``."""
    if length >= MINUTES_PER_WEEK:
        return "the whole week"
    end = start + length
    day, minute = divmod(start % MINUTES_PER_WEEK, MINUTES_PER_DAY)
    end_day, end_minute = divmod(end % MINUTES_PER_WEEK, MINUTES_PER_DAY)
    if end_minute == 0:
        end_day, end_minute = (end_day - 1) % 7, MINUTES_PER_DAY
    head = f"{DAY_NAMES[day]} {_clock(minute)}"
    if end_day == day and length <= MINUTES_PER_DAY:
        return f"{head}–{_clock(end_minute)}"
    return f"{head}–{DAY_NAMES[end_day]} {_clock(end_minute)}"
