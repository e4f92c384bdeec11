"""Duty rosters: who is on duty at an instant, on the region's local clock; gaps and overlaps.

Instants are built from local wall-clock times so each test says the time an officer would
read on the wall; 2026-11-23 is a Monday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.roster import (
    MINUTES_PER_WEEK,
    ancestors,
    conflicts,
    format_span,
    gaps,
    minute_of_week,
    nearest_region,
    on_duty,
    people_of,
)
from earlywarn.model import DutyRef, Region, Shift

SHANGHAI = ZoneInfo("Asia/Shanghai")
MON = datetime(2026, 11, 23, tzinfo=SHANGHAI)
DAY = 1440
DAYTIME, NIGHT = "liu", "wang"
WEEKDAYS, WEEKEND = (0, 1, 2, 3, 4), (5, 6)


def at(day: int, clock: str, tz: ZoneInfo = SHANGHAI) -> int:
    """Epoch ms of ``clock`` (``"HH:MM"``) on ``day`` (0 = Monday) of the test week, local."""
    hours, minutes = map(int, clock.split(":"))
    local = datetime(2026, 11, 23 + day, hours, minutes, tzinfo=tz)
    return int(local.timestamp() * 1000)


def region(*shifts: Shift, tz: str = "Asia/Shanghai", duty: tuple[str, ...] = ()) -> Region:
    everyone = duty or tuple(dict.fromkeys(p for s in shifts for p in s.duty))
    return Region("county", "安县", "county", None, (), everyone, shifts, tz)


# 刘 on working days 08:30–17:30, 王 on weeknights and in 24-hour weekend shifts from 08:30.
COUNTY = region(
    Shift(WEEKDAYS, 510, 1050, (DAYTIME,)),
    Shift(WEEKDAYS, 1050, 510, (NIGHT,)),
    Shift(WEEKEND, 510, 510, (NIGHT,)),
)


def test_without_a_roster_everyone_in_duty_is_always_on_duty() -> None:
    flat = Region("town", "金山镇", "township", "county", (), ("zhao", "qian"))
    assert on_duty(flat, at(2, "03:00")) == ("zhao", "qian")


@pytest.mark.parametrize(
    ("day", "clock", "who"),
    [
        (0, "08:29", NIGHT),  # Monday before the day shift: still Sunday's 24-hour shift
        (0, "08:30", DAYTIME),  # a shift starts on its first minute …
        (0, "17:29", DAYTIME),
        (0, "17:30", NIGHT),  # … and ends before its last
        (1, "02:00", NIGHT),  # Monday's night shift, past midnight
        (1, "08:29", NIGHT),
        (4, "23:59", NIGHT),  # Friday night …
        (5, "08:29", NIGHT),  # … runs into Saturday
        (5, "08:30", NIGHT),  # Saturday's 24-hour shift
        (6, "23:59", NIGHT),  # week boundary: Sunday's shift ends Monday 08:30
        (7, "00:00", NIGHT),
        (7, "08:30", DAYTIME),  # the next Monday: the week repeats
    ],
)
def test_roster_across_midnight_and_the_week_boundary(day: int, clock: str, who: str) -> None:
    assert on_duty(COUNTY, at(day, clock)) == (who,)


def test_the_roster_is_read_on_shanghai_time_not_utc() -> None:
    # 00:30 UTC on Monday is 08:30 in Shanghai (UTC+8 all year: no daylight saving since 1991).
    utc_monday = int(datetime(2026, 11, 23, 0, 30, tzinfo=UTC).timestamp() * 1000)
    assert on_duty(COUNTY, utc_monday) == (DAYTIME,)
    assert on_duty(COUNTY, utc_monday - 60_000) == (NIGHT,)
    summer = datetime(2026, 7, 6, 8, 30, tzinfo=SHANGHAI)  # a Monday in July: same offset
    assert on_duty(COUNTY, int(summer.timestamp() * 1000)) == (DAYTIME,)


def test_a_zone_with_daylight_saving_follows_the_wall_clock() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # Sunday 2026-03-29 02:00 CET the clock jumps to 03:00: 01:59 then 03:00, no gap.
    roster = region(
        Shift((6,), 0, 180, ("early",)),
        Shift((6,), 180, 0, ("late",)),
        Shift((0, 1, 2, 3, 4, 5), 0, 1440, ("other",)),
        tz="Europe/Berlin",
    )
    before = datetime(2026, 3, 29, 1, 59, tzinfo=berlin)
    after = (before.astimezone(UTC) + timedelta(minutes=1)).astimezone(berlin)
    assert (after.hour, after.minute) == (3, 0)  # one real minute later, the wall says 03:00
    assert on_duty(roster, int(before.timestamp() * 1000)) == ("early",)
    assert on_duty(roster, int(after.timestamp() * 1000)) == ("late",)


def test_minute_of_week_counts_from_monday_midnight_local() -> None:
    assert minute_of_week(at(0, "00:00"), "Asia/Shanghai") == 0
    assert minute_of_week(at(6, "23:59"), "Asia/Shanghai") == MINUTES_PER_WEEK - 1
    assert minute_of_week(at(2, "12:15"), "Asia/Shanghai") == 2 * DAY + 12 * 60 + 15


def test_overlaps_naming_the_same_people_resolve_to_them_once() -> None:
    roster = region(
        Shift(WEEKDAYS, 480, 1080, (DAYTIME,)),
        Shift(WEEKDAYS, 1080, 480, (NIGHT,)),
        Shift(WEEKEND, 0, 1440, (NIGHT,)),  # Friday night runs into Saturday: same officer
        Shift((6,), 1080, 480, (NIGHT,)),  # Sunday night into Monday
    )
    assert gaps(roster.roster) == []
    assert conflicts(roster.roster) == []
    assert on_duty(roster, at(5, "03:00")) == (NIGHT,)
    assert on_duty(roster, at(7, "03:00")) == (NIGHT,)


def test_a_hand_built_roster_with_a_gap_falls_back_to_everyone() -> None:
    roster = region(Shift(WEEKDAYS, 480, 1080, (DAYTIME,)), duty=(DAYTIME, NIGHT))
    assert on_duty(roster, at(0, "03:00")) == (DAYTIME, NIGHT)


def test_the_issue_example_has_a_gap_and_an_overlap() -> None:
    # The roster as first sketched: weeknights 18:00–08:00 and all-day weekends leave
    # Monday 00:00–08:00 uncovered, and Friday's night shift overlaps Saturday.
    shifts = (
        Shift(WEEKDAYS, 480, 1080, (DAYTIME,)),
        Shift(WEEKDAYS, 1080, 480, (NIGHT,)),
        Shift(WEEKEND, 0, 1440, (DAYTIME,)),
    )
    assert [format_span(*g) for g in gaps(shifts)] == ["Mon 00:00–08:00"]
    assert [(a, b, format_span(s, n)) for a, b, s, n in conflicts(shifts)] == [
        (1, 2, "Sat 00:00–08:00")
    ]


def test_gaps_wrap_around_the_week() -> None:
    # Covered Monday 08:00 to Sunday 20:00: the gap runs over the week boundary.
    shifts = (
        Shift((0,), 480, 480, ("a",)),
        Shift((1, 2, 3, 4, 5), 480, 480, ("a",)),
        Shift((6,), 480, 1200, ("a",)),
    )
    assert [format_span(*g) for g in gaps(shifts)] == ["Sun 20:00–Mon 08:00"]
    assert gaps(()) == [(0, MINUTES_PER_WEEK)]
    assert format_span(0, MINUTES_PER_WEEK) == "the whole week"


def test_format_span() -> None:
    assert format_span(0, 480) == "Mon 00:00–08:00"
    assert format_span(4 * DAY + 1080, 840) == "Fri 18:00–Sat 08:00"
    assert format_span(6 * DAY + 1080, 360) == "Sun 18:00–24:00"
    assert format_span(6 * DAY, 2 * DAY) == "Sun 00:00–Mon 24:00"


def test_shift_checks_itself() -> None:
    assert Shift((0,), 510, 510, ("a",)).minutes == DAY
    assert Shift((0,), 1080, 480, ("a",)).minutes == 840
    assert Shift((0,), 0, 1440, ("a",)).minutes == DAY
    for bad in (((), 0, 60, ("a",)), ((7,), 0, 60, ("a",)), ((0,), 1440, 60, ("a",))):
        with pytest.raises(ValueError, match=r"."):
            Shift(*bad)
    with pytest.raises(ValueError, match="nobody"):
        Shift((0,), 0, 60, ())


REGIONS = {
    "county": Region("county", "安县", "county", None, (), ("wang",)),
    "town": Region("town", "金山镇", "township", "county", (), ("zhao",)),
    "village": Region("village", "金山村", "village", "town", (), ()),
}


def test_duty_references_walk_up_the_regions() -> None:
    assert ancestors(REGIONS, "village") == ("village", "town", "county")
    assert nearest_region(REGIONS, "village", "township") == "town"
    assert nearest_region(REGIONS, "town", "county") == "county"
    assert nearest_region(REGIONS, "county", "township") is None
    assert ancestors(REGIONS, "nowhere") == ()
    rung = ("ops", DutyRef("town"), DutyRef("county"), "ops", DutyRef("atlantis"))
    assert people_of(rung, REGIONS, at(0, "12:00")) == ("ops", "zhao", "wang")


def test_duty_ref_reads_as_written() -> None:
    assert str(DutyRef("county")) == "duty:county"


# --- properties ---------------------------------------------------------------------------


@st.composite
def gapless_rosters(draw: st.DrawFn) -> tuple[tuple[Shift, ...], dict[tuple[int, int], str]]:
    """Each day cut at the same times, every piece (the last one past midnight) to someone."""
    cuts = sorted(draw(st.sets(st.integers(0, DAY - 1), min_size=1, max_size=4)))
    people = st.sampled_from(["a", "b", "c", "d"])
    shifts, owner = [], {}
    for day in range(7):
        for i, start in enumerate(cuts):
            end = cuts[(i + 1) % len(cuts)]
            who = draw(people)
            shifts.append(Shift((day,), start, end or DAY, (who,)))
            owner[(day, start)] = who
    return tuple(shifts), owner


@given(gapless_rosters(), st.integers(0, MINUTES_PER_WEEK - 1))
def test_a_roster_without_gaps_resolves_someone_at_every_minute(
    drawn: tuple[tuple[Shift, ...], dict[tuple[int, int], str]], minute: int
) -> None:
    shifts, owner = drawn
    assert gaps(shifts) == []
    assert conflicts(shifts) == []
    now = int((MON + timedelta(minutes=minute)).timestamp() * 1000)
    day, clock = divmod(minute, DAY)
    # The piece covering this minute began at the latest cut at or before it (or yesterday's).
    starts = sorted({s for _, s in owner})
    before = [s for s in starts if s <= clock]
    key = (day, before[-1]) if before else ((day - 1) % 7, starts[-1])
    assert on_duty(region(*shifts), now) == (owner[key],)


shifts_st = st.builds(
    Shift,
    st.sets(st.integers(0, 6), min_size=1).map(lambda d: tuple(sorted(d))),
    st.integers(0, DAY - 1),
    st.integers(1, DAY),
    st.sampled_from([("a",), ("b",)]),
)


@given(st.lists(shifts_st, max_size=4), st.integers(0, MINUTES_PER_WEEK - 1))
def test_gaps_agree_with_resolution(shifts: list[Shift], minute: int) -> None:
    roster = region(*shifts, duty=("fallback",))
    in_gap = any((minute - s) % MINUTES_PER_WEEK < n for s, n in gaps(tuple(shifts)))
    now = int((MON + timedelta(minutes=minute)).timestamp() * 1000)
    assert (on_duty(roster, now) == ("fallback",)) == in_gap
