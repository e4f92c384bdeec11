"""The alarm lifecycle (ISA-18.2 states), shelving and suppression: pure functions only."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.holds import (
    MAX_SHELVE_MS,
    Context,
    Scope,
    Shelf,
    Window,
    WindowKind,
    context_for,
    hold_reason,
)
from alerting.lifecycle import (
    AlarmRecord,
    Refusal,
    State,
    TransitionKind,
    Verdict,
    acknowledge,
    apply_event,
    event_key,
    is_shelved,
    supersede,
)
from earlywarn.model import AlarmEvent, Change, Level

SENSOR = "huaxin-chem/tank-farm-1/T101-LT"
RULE = "tank_level_high"
H = 3_600_000


def event(
    change: Change,
    level: Level | None,
    previous: Level | None,
    ts_ms: int,
    *,
    start_ms: int = 1000,
    value: float = 17.6,
    sensor: str = SENSOR,
    rule: str = RULE,
    flapping: bool = False,
) -> AlarmEvent:
    """An alarm event of the tank level alarm, as the rules would make it."""
    enterprise, site, sensor_id = sensor.split("/")
    return AlarmEvent(
        alarm_id=f"{sensor}/{rule}@{start_ms}",
        sensor=sensor,
        enterprise=enterprise,
        site=site,
        sensor_id=sensor_id,
        kind="tank_level",
        enterprise_name="华信化工",
        site_name="罐区一",
        sensor_name="T101甲醇储罐液位",
        rule=rule,
        rule_kind="threshold",
        change=change,
        level=level,
        previous=previous,
        value=value,
        setpoint=17.5,
        setpoint_label="高高限",
        unit="m",
        ts_ms=ts_ms,
        start_ms=start_ms,
        message=f"T101 液位 {value}",
        flapping=flapping,
    )


def raised(level: Level = Level.ORANGE, ts: int = 1000) -> AlarmEvent:
    return event(Change.RAISED, level, None, ts, start_ms=ts)


def changed(old: Level, new: Level, ts: int, start: int = 1000) -> AlarmEvent:
    return event(Change.LEVEL_CHANGED, new, old, ts, start_ms=start)


def cleared(old: Level, ts: int, start: int = 1000) -> AlarmEvent:
    return event(Change.CLEARED, None, old, ts, start_ms=start)


def opened(level: Level = Level.ORANGE, ctx: Context | None = None) -> AlarmRecord:
    record = apply_event(None, raised(level), ctx).record
    assert record is not None
    return record


# --- the four states ---------------------------------------------------------------------


def test_a_raise_opens_an_unacknowledged_active_alarm() -> None:
    result = apply_event(None, raised(Level.ORANGE))
    record = result.record
    assert record is not None
    assert result.verdict is Verdict.APPLIED
    assert record.state is State.ACTIVE_UNACKED
    assert (record.level, record.peak, record.start_ms) == (Level.ORANGE, Level.ORANGE, 1000)
    assert record.acked_by is None and record.cleared_ms is None
    [t] = result.transitions
    assert (t.kind, t.from_state, t.to_state) == (TransitionKind.RAISED, None, State.ACTIVE_UNACKED)
    assert (t.from_level, t.to_level) == (None, Level.ORANGE)


def test_ack_then_clear_goes_active_acked_then_cleared() -> None:
    acked = acknowledge(opened(), "hx-ops-zhou", 2000)
    assert acked.ok
    assert acked.record is not None
    assert acked.record.state is State.ACTIVE_ACKED
    assert (acked.record.acked_by, acked.record.acked_ms) == ("hx-ops-zhou", 2000)
    [t] = acked.transitions
    assert (t.kind, t.by, t.to_state) == (TransitionKind.ACKED, "hx-ops-zhou", State.ACTIVE_ACKED)

    result = apply_event(acked.record, cleared(Level.ORANGE, 3000))
    assert result.record is not None
    assert result.record.state is State.CLEARED
    assert result.record.level is None
    assert result.record.cleared_ms == 3000
    assert result.record.acked_by == "hx-ops-zhou"
    [t] = result.transitions
    assert (t.kind, t.from_state, t.to_state) == (
        TransitionKind.CLEARED,
        State.ACTIVE_ACKED,
        State.CLEARED,
    )


def test_clear_then_ack_goes_cleared_unacked_then_cleared() -> None:
    result = apply_event(opened(), cleared(Level.ORANGE, 3000))
    assert result.record is not None
    assert result.record.state is State.CLEARED_UNACKED
    acked = acknowledge(result.record, "hx-ops-zhou", 4000)
    assert acked.record is not None
    assert acked.record.state is State.CLEARED
    assert acked.transitions[0].from_state is State.CLEARED_UNACKED


def test_state_properties() -> None:
    assert [s.value for s in State] == [
        "active-unacked",
        "active-acked",
        "cleared-unacked",
        "cleared",
    ]
    assert [s for s in State if s.active] == [State.ACTIVE_UNACKED, State.ACTIVE_ACKED]
    assert [s for s in State if s.acked] == [State.ACTIVE_ACKED, State.CLEARED]
    assert [s for s in State if not s.open] == [State.CLEARED]


# --- level changes -----------------------------------------------------------------------


def test_level_changes_keep_the_occurrence_and_track_the_peak() -> None:
    record = opened(Level.YELLOW)
    up = apply_event(record, changed(Level.YELLOW, Level.RED, 2000))
    assert up.record is not None
    assert (up.record.alarm_id, up.record.level, up.record.peak) == (
        record.alarm_id,
        Level.RED,
        Level.RED,
    )
    assert up.transitions[0].kind is TransitionKind.LEVEL_UP
    assert up.record.state is State.ACTIVE_UNACKED
    down = apply_event(up.record, changed(Level.RED, Level.BLUE, 3000))
    assert down.record is not None
    assert (down.record.level, down.record.peak) == (Level.BLUE, Level.RED)
    assert down.transitions[0].kind is TransitionKind.LEVEL_DOWN
    assert (down.transitions[0].from_level, down.transitions[0].to_level) == (
        Level.RED,
        Level.BLUE,
    )


def test_a_rise_of_an_acknowledged_alarm_must_be_acknowledged_again() -> None:
    acked = acknowledge(opened(Level.ORANGE), "hx-ops-zhou", 1500).record
    result = apply_event(acked, changed(Level.ORANGE, Level.RED, 2000))
    record = result.record
    assert record is not None
    assert record.state is State.ACTIVE_UNACKED
    assert record.acked_by is None and record.acked_ms is None
    [t] = result.transitions
    assert (t.kind, t.from_state, t.to_state) == (
        TransitionKind.LEVEL_UP,
        State.ACTIVE_ACKED,
        State.ACTIVE_UNACKED,
    )
    assert "hx-ops-zhou" in t.detail and "red" in t.detail
    assert acknowledge(record, "hx-tech-li", 2500).ok


def test_a_fall_keeps_the_acknowledgement() -> None:
    acked = acknowledge(opened(Level.RED), "hx-ops-zhou", 1500).record
    result = apply_event(acked, changed(Level.RED, Level.YELLOW, 2000))
    assert result.record is not None
    assert result.record.state is State.ACTIVE_ACKED
    assert result.record.acked_by == "hx-ops-zhou"


def test_an_event_at_the_same_level_refreshes_the_figures_without_a_transition() -> None:
    record = opened(Level.ORANGE)
    again = event(Change.RAISED, Level.ORANGE, None, 2000, value=18.0)
    result = apply_event(record, again)
    assert result.verdict is Verdict.APPLIED
    assert result.transitions == ()
    assert result.record is not None
    assert (result.record.value, result.record.last_ts_ms) == (18.0, 2000)


# --- idempotence ---------------------------------------------------------------------------


def test_the_same_event_twice_changes_nothing() -> None:
    record = opened()
    result = apply_event(record, raised())
    assert result.verdict is Verdict.DUPLICATE
    assert result.record is record
    assert result.transitions == ()
    assert not result.changed


def test_an_older_event_is_stale() -> None:
    record = apply_event(opened(Level.YELLOW), changed(Level.YELLOW, Level.RED, 5000)).record
    result = apply_event(record, changed(Level.YELLOW, Level.ORANGE, 3000))
    assert result.verdict is Verdict.STALE
    assert result.record is record


def test_a_later_event_of_a_cleared_occurrence_changes_nothing() -> None:
    record = apply_event(opened(), cleared(Level.ORANGE, 3000)).record
    result = apply_event(record, changed(Level.ORANGE, Level.RED, 4000))
    assert result.verdict is Verdict.AFTER_CLEAR
    assert result.record is record


def test_two_events_at_one_instant_both_apply_and_stay_idempotent() -> None:
    # An offline rule can hear a tick and a reading in the same millisecond.
    first = apply_event(None, raised(Level.ORANGE, 1000)).record
    second = apply_event(first, cleared(Level.ORANGE, 1000)).record
    assert second is not None
    assert second.state is State.CLEARED_UNACKED
    assert len(second.seen) == 2
    for again in (raised(Level.ORANGE, 1000), cleared(Level.ORANGE, 1000)):
        assert apply_event(second, again).verdict is Verdict.DUPLICATE


def test_event_identity_leaves_out_value_and_message() -> None:
    a = raised()
    b = replace(a, value=math.nan, message="other", flapping=True)
    assert event_key(a) == event_key(b) == f"{a.alarm_id}|raised|orange|1000"
    assert event_key(cleared(Level.RED, 5)).endswith("|cleared|-|5")
    assert apply_event(opened(), b).verdict is Verdict.DUPLICATE


# --- first seen mid-alarm, malformed -------------------------------------------------------


def test_a_level_change_without_a_record_opens_the_alarm() -> None:
    result = apply_event(None, changed(Level.ORANGE, Level.RED, 2000))
    assert result.record is not None
    assert result.record.state is State.ACTIVE_UNACKED
    assert result.record.level is Level.RED
    assert result.transitions[0].kind is TransitionKind.RAISED
    assert "level change" in result.transitions[0].detail


def test_a_clear_without_a_record_still_needs_acknowledging() -> None:
    result = apply_event(None, cleared(Level.RED, 2000))
    record = result.record
    assert record is not None
    assert record.state is State.CLEARED_UNACKED
    assert (record.level, record.peak, record.cleared_ms) == (None, Level.RED, 2000)
    assert result.transitions[0].kind is TransitionKind.CLEARED
    assert "not seen" in result.transitions[0].detail


@pytest.mark.parametrize(
    "bad",
    [
        event(Change.RAISED, None, None, 1000),
        event(Change.LEVEL_CHANGED, Level.RED, None, 1000),
        event(Change.CLEARED, Level.RED, Level.ORANGE, 1000),
        event(Change.CLEARED, None, None, 1000),
    ],
)
def test_events_the_rules_cannot_produce_are_refused(bad: AlarmEvent) -> None:
    with pytest.raises(ValueError, match="malformed alarm event"):
        apply_event(None, bad)


def test_an_event_of_another_occurrence_is_refused() -> None:
    with pytest.raises(ValueError, match="applied to the record"):
        apply_event(opened(), raised(ts=9000))


def test_an_illegal_record_cannot_be_built() -> None:
    record = opened()
    with pytest.raises(ValueError, match="illegal alarm record"):
        replace(record, state=State.CLEARED)
    with pytest.raises(ValueError, match="acked_by"):
        replace(record, state=State.ACTIVE_ACKED)
    with pytest.raises(ValueError, match="above peak"):
        replace(record, level=Level.RED)
    with pytest.raises(ValueError, match="no event identity"):
        replace(record, seen=frozenset())


# --- acknowledgement -----------------------------------------------------------------------


def test_acknowledging_nothing_or_twice_is_refused() -> None:
    assert acknowledge(None, "hx-ops-zhou", 1).refused is Refusal.UNKNOWN
    acked = acknowledge(opened(), "hx-ops-zhou", 1500).record
    again = acknowledge(acked, "hx-tech-li", 1600)
    assert again.refused is Refusal.ALREADY_ACKED
    assert not again.ok
    assert again.record is acked
    assert again.record is not None
    assert (again.record.acked_by, again.record.acked_ms) == ("hx-ops-zhou", 1500)
    with pytest.raises(ValueError, match="person"):
        acknowledge(opened(), "  ", 1)


def test_an_older_occurrence_is_acknowledged_through_the_newer_one() -> None:
    older = apply_event(opened(), cleared(Level.ORANGE, 2000)).record
    decision = acknowledge(older, "hx-ops-zhou", 9000, via="x/y/z/r@5000")
    assert decision.record is not None
    assert decision.record.state is State.CLEARED
    assert "x/y/z/r@5000" in decision.transitions[0].detail


# --- a lost clear --------------------------------------------------------------------------


def test_a_newer_occurrence_supersedes_an_older_one_still_active() -> None:
    newer = raised(Level.RED, 9000)
    result = supersede(opened(Level.ORANGE), newer)
    assert result.record is not None
    assert result.record.state is State.CLEARED_UNACKED
    assert result.record.cleared_ms == 9000
    [t] = result.transitions
    assert t.kind is TransitionKind.SUPERSEDED
    assert newer.alarm_id in t.detail

    acked = acknowledge(opened(), "hx-ops-zhou", 1500).record
    assert acked is not None
    closed = supersede(acked, newer).record
    assert closed is not None
    assert closed.state is State.CLEARED

    done = apply_event(opened(), cleared(Level.ORANGE, 2000)).record
    assert done is not None
    assert supersede(done, newer).verdict is Verdict.AFTER_CLEAR


# --- drills, maintenance, shelving ---------------------------------------------------------


def test_context_marks_new_occurrences_only() -> None:
    ctx = Context(drill=True, suppressed_until_ms=5 * H, shelved_until_ms=2 * H)
    record = opened(ctx=ctx)
    assert record.drill
    assert (record.suppressed_until_ms, record.shelved_until_ms) == (5 * H, 2 * H)
    plain = opened()
    later = apply_event(plain, changed(Level.ORANGE, Level.RED, 2000), ctx).record
    assert later is not None
    assert not later.drill  # an occurrence is a drill or not from its start
    assert later.suppressed_until_ms == 5 * H
    again = apply_event(later, changed(Level.RED, Level.ORANGE, 3000), Context()).record
    assert again is not None
    assert again.suppressed_until_ms is None


def maintenance(scope: Scope, target: str, start: int = 0, end: int = 2 * H) -> Window:
    return Window(WindowKind.MAINTENANCE, scope, target, start, end, "hx-tech-li", "校准")


def test_windows_cover_a_sensor_a_site_or_an_enterprise() -> None:
    t = H
    assert maintenance(Scope.SENSOR, SENSOR).covers(SENSOR, t)
    assert maintenance(Scope.SITE, "huaxin-chem/tank-farm-1").covers(SENSOR, t)
    assert maintenance(Scope.ENTERPRISE, "huaxin-chem").covers(SENSOR, t)
    assert not maintenance(Scope.ENTERPRISE, "huaxin").covers(SENSOR, t)
    assert not maintenance(Scope.SITE, "huaxin-chem/tank-farm").covers(SENSOR, t)
    assert not maintenance(Scope.SENSOR, SENSOR).covers(SENSOR, 2 * H)  # end excluded
    ended = replace(maintenance(Scope.SENSOR, SENSOR), ended_ms=H)
    assert not ended.covers(SENSOR, H)
    assert ended.covers(SENSOR, H - 1)


@pytest.mark.parametrize(
    ("kind", "scope", "target", "start", "end", "match"),
    [
        (WindowKind.DRILL, Scope.SENSOR, SENSOR, 0, H, "per site or enterprise"),
        (WindowKind.MAINTENANCE, Scope.SITE, "huaxin-chem", 0, H, "enterprise/site"),
        (WindowKind.MAINTENANCE, Scope.SENSOR, "a//b", 0, H, "enterprise/site/sensor"),
        (WindowKind.MAINTENANCE, Scope.ENTERPRISE, "huaxin-chem", H, H, "before it starts"),
    ],
)
def test_bad_windows_are_refused(
    kind: WindowKind, scope: Scope, target: str, start: int, end: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        Window(kind, scope, target, start, end, "hx-tech-li", "检修")


def test_shelving_is_limited_and_needs_a_reason() -> None:
    Shelf(SENSOR, RULE, 0, MAX_SHELVE_MS, "hx-ops-zhou", "误报")
    with pytest.raises(ValueError, match="maintenance window"):
        Shelf(SENSOR, RULE, 0, MAX_SHELVE_MS + 1, "hx-ops-zhou", "误报")
    with pytest.raises(ValueError, match="reason"):
        Shelf(SENSOR, RULE, 0, H, "hx-ops-zhou", "")
    with pytest.raises(ValueError, match="after it starts"):
        Shelf(SENSOR, RULE, H, H, "hx-ops-zhou", "误报")


def test_windows_judge_the_event_time_and_shelves_judge_now() -> None:
    drill = Window(WindowKind.DRILL, Scope.SITE, "huaxin-chem/tank-farm-1", 0, H, "cty", "演练")
    works = maintenance(Scope.SENSOR, SENSOR, 0, H)
    shelf = Shelf(SENSOR, RULE, 2 * H, 3 * H, "hx-ops-zhou", "误报")
    late = raised(ts=H - 10)  # a reading taken during the window, arriving later
    ctx = context_for(late, 2 * H + 5, [drill, works], [shelf])
    assert ctx == Context(drill=True, suppressed_until_ms=H, shelved_until_ms=3 * H)
    assert context_for(raised(ts=H), H, [drill, works], [shelf]) == Context()
    assert context_for(raised(ts=H), H, drill=True).drill
    other_rule = Shelf(SENSOR, "other", 0, H, "hx-ops-zhou", "误报")
    assert context_for(raised(ts=10), 10, (), [other_rule]).shelved_until_ms is None


def test_shelving_expires_by_itself() -> None:
    record = opened(ctx=Context(shelved_until_ms=2 * H))
    assert is_shelved(record, 2 * H - 1)
    assert not is_shelved(record, 2 * H)
    assert not is_shelved(opened(), 0)


def test_hold_reason_says_why_notifications_wait() -> None:
    shelf = Shelf(SENSOR, RULE, 0, H, "hx-ops-zhou", "误报")
    works = maintenance(Scope.SITE, "huaxin-chem/tank-farm-1", 0, 2 * H)
    assert hold_reason([works], [shelf], SENSOR, RULE, 10) == (
        "shelved until 1970-01-01T01:00:00.000+00:00"
    )
    assert hold_reason([works], [shelf], SENSOR, RULE, H) == (
        "maintenance window until 1970-01-01T02:00:00.000+00:00"
    )
    assert hold_reason([works], [shelf], SENSOR, RULE, 2 * H) is None
    ended = replace(shelf, ended_ms=5)
    assert hold_reason([], [ended], SENSOR, RULE, 10) is None


# --- random sequences ----------------------------------------------------------------------

_LEVELS = st.one_of(st.none(), st.sampled_from(list(Level)))
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("level"), _LEVELS, st.integers(0, 3)),
        st.tuples(st.just("ack"), st.sampled_from(["zhou", "li"]), st.integers(0, 3)),
        st.tuples(st.just("again"), st.integers(0, 1000), st.integers(0, 0)),
    ),
    max_size=40,
)


@given(_OPS)
def test_random_sequences_never_reach_an_illegal_state(
    ops: list[tuple[str, object, int]],
) -> None:
    """A model of one (sensor, rule): levels as the rules would report them, acks, and
    redelivery of any earlier event. The records always agree with the model, and a
    redelivered event never changes anything."""
    records: dict[str, AlarmRecord] = {}
    sent: list[AlarmEvent] = []
    level: Level | None = None
    start = 0
    alarm = ""
    acked = False
    peak: Level | None = None
    now = 1000
    for op, arg, step in ops:
        now += step
        if op == "level":
            new = arg if isinstance(arg, Level) else None
            if new == level:
                continue
            if level is None:
                now += 1  # a new occurrence starts after the last one's events
                start, acked, peak = now, False, new
                ev = event(Change.RAISED, new, None, now, start_ms=now)
            elif new is None:
                ev = event(Change.CLEARED, None, level, now, start_ms=start)
            else:
                ev = event(Change.LEVEL_CHANGED, new, level, now, start_ms=start)
                if new > level:
                    acked = False
                peak = max(peak or new, new)
            result = apply_event(records.get(ev.alarm_id), ev)
            assert result.verdict is Verdict.APPLIED
            assert result.record is not None
            records[ev.alarm_id] = result.record
            alarm, level = ev.alarm_id, new
            sent.append(ev)
        elif op == "ack" and alarm:
            decision = acknowledge(records[alarm], str(arg), now)
            assert decision.ok == (not acked)
            if decision.record is not None:
                records[alarm] = decision.record
            acked = True
        elif op == "again" and sent:
            old = sent[int(str(arg)) % len(sent)]
            before = records[old.alarm_id]
            result = apply_event(before, old)
            assert result.verdict is not Verdict.APPLIED
            assert result.record == before
            assert result.transitions == ()
        if alarm:
            record = records[alarm]
            assert record.problems() == []
            assert record.level == level
            assert record.state.active == (level is not None)
            assert record.state.acked == acked
            assert record.peak == peak
    for record in records.values():
        if record.alarm_id != alarm:
            assert not record.state.active  # only the newest occurrence can be active
