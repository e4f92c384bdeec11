"""The durable alert store on real SQLite files: round trips, idempotence, one transaction per
change, the append-only audit log and its hash chain, escalation steps, and a SIGKILL."""

from __future__ import annotations

import itertools
import math
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from alerting.holds import Scope, Window, WindowKind
from alerting.lifecycle import AckMethod, State, TransitionKind, is_shelved
from alerting.notifications import Delivery
from alerting.store import AlertStore, StoreError
from alerting.store_audit import row_hash
from alerting.store_rows import AckStatus, StepPlan, StepResult, StepStatus
from alerting.store_schema import SCHEMA_VERSION, SchemaError
from earlywarn.model import AlarmEvent, Change, Level
from tests.alerting.test_lifecycle import SENSOR, event

ROOT = Path(__file__).resolve().parents[2]
H = 3_600_000
T0 = 1_795_284_000_000  # 2026-11-21 18:00 UTC, 02:00 in Beijing


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "alerts.db"


@pytest.fixture
def store(path: Path) -> Iterator[AlertStore]:
    with AlertStore(path) as opened:
        yield opened


def raise_(level: Level = Level.RED, ts: int = T0, sensor: str = SENSOR) -> AlarmEvent:
    return event(Change.RAISED, level, None, ts, start_ms=ts, sensor=sensor)


def alarm_of(e: AlarmEvent) -> str:
    return e.alarm_id


def plans(alarm_id: str, n: int, first_due: int = T0, every: int = 180_000) -> list[StepPlan]:
    return [
        StepPlan(
            f"{alarm_id}|red|call|{k}", alarm_id, first_due + k * every, "hx-ops-zhou", "voice"
        )
        for k in range(n)
    ]


def raw(path: Path) -> sqlite3.Connection:
    """A separate connection, as another tool would open the file."""
    return sqlite3.connect(path, isolation_level=None)


# --- the file ------------------------------------------------------------------------------


def test_a_new_file_gets_the_schema_and_the_durable_settings(store: AlertStore) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.verify_audit() == []
    assert store.audit_head() == (0, "0" * 64)


def test_a_store_written_by_a_newer_version_is_refused(path: Path) -> None:
    AlertStore(path).close()
    with raw(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaError, match="newer"):
        AlertStore(path)


def test_records_survive_closing_and_reopening(path: Path) -> None:
    e = replace(raise_(Level.ORANGE), value=math.nan)
    with AlertStore(path) as store:
        applied = store.apply_event(e, T0 + 5)
        assert applied is not None
        assert applied.new
        up = event(Change.LEVEL_CHANGED, Level.RED, Level.ORANGE, T0 + 60_000, start_ms=T0)
        assert store.apply_event(up, T0 + 60_005) is not None
        before = store.get(e.alarm_id)
    with AlertStore(path) as store:
        after = store.get(e.alarm_id)
        assert after is not None
        assert before is not None
        assert after.ref == applied.record.ref == 1
        assert math.isnan(applied.record.value)
        assert replace(after, value=0.0) == replace(before, value=0.0)
        assert (after.level, after.peak, after.state) == (
            Level.RED,
            Level.RED,
            State.ACTIVE_UNACKED,
        )
        assert after.enterprise_name == "华信化工"
        assert store.get_by_ref(1) == after
        kinds = [t.kind for t in store.transitions_of(e.alarm_id)]
        assert kinds == [TransitionKind.RAISED, TransitionKind.LEVEL_UP]
        assert store.verify_audit() == []


# --- applying events -----------------------------------------------------------------------


def test_the_same_event_twice_is_written_once(store: AlertStore) -> None:
    e = raise_()
    assert store.apply_event(e, T0) is not None
    head = store.audit_head()
    assert store.apply_event(e, T0 + 10) is None
    assert store.audit_head() == head
    assert len(store.transitions_of(e.alarm_id)) == 1


def test_refs_are_consecutive_however_many_events_an_alarm_has(store: AlertStore) -> None:
    # Refs are SMS reply codes: they must stay short, so level changes must not use numbers.
    refs = []
    for i in range(3):
        first = raise_(Level.ORANGE, ts=T0 + i * 1000, sensor=f"{SENSOR}-{i}")
        applied = store.apply_event(first, T0)
        assert applied is not None
        up = replace(
            first,
            change=Change.LEVEL_CHANGED,
            level=Level.RED,
            previous=Level.ORANGE,
            ts_ms=first.ts_ms + 1,
        )
        assert store.apply_event(up, T0) is not None
        refs.append(applied.record.ref)
    assert refs == [1, 2, 3]
    assert [r.ref for r in store.list_alarms(limit=10)] == [3, 2, 1]


def test_a_late_event_of_an_occurrence_never_stored_is_ignored(store: AlertStore) -> None:
    store.apply_event(raise_(ts=T0 + H), T0 + H)
    assert store.apply_event(raise_(ts=T0), T0 + H + 1) is None
    assert [r.start_ms for r in store.list_alarms()] == [T0 + H]


def test_a_newer_occurrence_closes_an_older_one_whose_clear_was_lost(store: AlertStore) -> None:
    old = raise_(Level.ORANGE, T0)
    store.apply_event(old, T0)
    store.plan_steps(plans(old.alarm_id, 3), T0)
    new = raise_(Level.RED, T0 + H)
    applied = store.apply_event(new, T0 + H)
    assert applied is not None
    assert [r.alarm_id for r in applied.superseded] == [old.alarm_id]
    assert applied.cancelled_steps == 3
    closed = store.get(old.alarm_id)
    assert closed is not None
    assert closed.state is State.CLEARED_UNACKED
    assert store.transitions_of(old.alarm_id)[-1].kind is TransitionKind.SUPERSEDED
    assert {s.status for s in store.steps_of(old.alarm_id)} == {StepStatus.CANCELLED}


def test_an_occurrence_after_a_clear_is_new_and_the_old_one_waits(store: AlertStore) -> None:
    first = raise_(Level.ORANGE, T0)
    store.apply_event(first, T0)
    store.apply_event(event(Change.CLEARED, None, Level.ORANGE, T0 + 60_000, start_ms=T0), T0)
    second = raise_(Level.ORANGE, T0 + H)
    applied = store.apply_event(second, T0 + H)
    assert applied is not None
    assert applied.superseded == ()
    older = store.get(first.alarm_id)
    assert older is not None
    assert older.state is State.CLEARED_UNACKED
    result = store.ack(second.alarm_id, "hx-ops-zhou", AckMethod.LINK, "已到场", T0 + H + 5)
    assert result.also_acked == (first.alarm_id,)
    older = store.get(first.alarm_id)
    assert older is not None
    assert older.state is State.CLEARED
    history = store.history(first.alarm_id)
    assert history is not None
    assert history.acks[0].via == second.alarm_id


# --- acknowledgement -----------------------------------------------------------------------


def test_ack_records_who_how_and_cancels_every_pending_step(store: AlertStore) -> None:
    e = raise_()
    store.apply_event(e, T0)
    steps = store.plan_steps(plans(e.alarm_id, 4), T0)
    assert store.claim_step(steps[0].id, T0) is not None  # in flight: not cancelled
    result = store.ack(e.alarm_id, "qj-township-wang", "link", "已通知企业撤离", T0 + 12 * 60_000)
    assert result.ok
    assert result.status is AckStatus.ACKED
    assert result.cancelled_steps == 3
    assert "acknowledged by qj-township-wang" in result.describe()
    statuses = [s.status for s in store.steps_of(e.alarm_id)]
    assert statuses == [StepStatus.SENDING] + [StepStatus.CANCELLED] * 3
    history = store.history(e.alarm_id)
    assert history is not None
    [ack] = history.acks
    assert (ack.by, ack.how, ack.comment) == ("qj-township-wang", AckMethod.LINK, "已通知企业撤离")
    assert history.record.state is State.ACTIVE_ACKED
    kinds = [a.kind for a in store.audit(alarm_id=e.alarm_id)]
    assert kinds[-2:] == ["ack", "steps_cancelled"]
    cancelled = store.audit(alarm_id=e.alarm_id)[-1].detail
    assert cancelled == {"cancelled": 3, "reason": "acknowledged by qj-township-wang (link)"}
    assert store.due_steps(T0 + H) == []


def test_ack_is_one_transaction(store: AlertStore, path: Path) -> None:
    """The audit row of the cancellation is written last; if it fails, the acknowledgement,
    its ack row and the cancelled steps are all rolled back."""
    e = raise_()
    store.apply_event(e, T0)
    store.plan_steps(plans(e.alarm_id, 3), T0)
    head = store.audit_head()
    with raw(path) as conn:
        conn.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON audit WHEN NEW.kind = 'steps_cancelled' "
            "BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
    with pytest.raises(sqlite3.IntegrityError, match="boom"):
        store.ack(e.alarm_id, "hx-ops-zhou", AckMethod.CLI, "", T0 + 1)
    record = store.get(e.alarm_id)
    assert record is not None
    assert record.state is State.ACTIVE_UNACKED
    assert {s.status for s in store.steps_of(e.alarm_id)} == {StepStatus.PENDING}
    history = store.history(e.alarm_id)
    assert history is not None
    assert history.acks == ()
    assert store.audit_head() == head


def test_ack_says_already_acked_and_unknown(store: AlertStore) -> None:
    e = raise_()
    store.apply_event(e, T0)
    store.ack(e.alarm_id, "hx-ops-zhou", AckMethod.SMS_REPLY, "", T0 + 1000)
    again = store.ack(e.alarm_id, "hx-tech-li", AckMethod.IVR, "我也看到了", T0 + 2000)
    assert again.status is AckStatus.ALREADY_ACKED
    assert (again.by, again.at_ms) == ("hx-ops-zhou", T0 + 1000)
    assert "already acknowledged by hx-ops-zhou" in again.describe()
    assert store.audit()[-1].kind == "ack_refused"
    unknown = store.ack("no/such/alarm@1", "hx-ops-zhou", AckMethod.WEB, "", T0)
    assert unknown.status is AckStatus.UNKNOWN
    assert unknown.describe() == "no alarm no/such/alarm@1"
    with pytest.raises(ValueError, match="sms"):
        store.ack(e.alarm_id, "hx-ops-zhou", "sms", "", T0)


def test_a_rise_after_ack_lets_escalation_plan_again(store: AlertStore) -> None:
    e = raise_(Level.ORANGE)
    store.apply_event(e, T0)
    store.ack(e.alarm_id, "hx-ops-zhou", AckMethod.LINK, "", T0 + 1)
    assert store.plan_steps(plans(e.alarm_id, 1), T0 + 2) == []  # acknowledged: skipped
    up = event(Change.LEVEL_CHANGED, Level.RED, Level.ORANGE, T0 + 60_000, start_ms=T0)
    applied = store.apply_event(up, T0 + 60_000)
    assert applied is not None
    assert applied.record.state is State.ACTIVE_UNACKED
    red = [StepPlan(f"{e.alarm_id}|red|1", e.alarm_id, T0 + 60_000, "hx-tech-li")]
    assert len(store.plan_steps(red, T0 + 60_000)) == 1


# --- escalation steps ----------------------------------------------------------------------


def test_planning_is_idempotent_by_key_and_due_steps_come_in_order(store: AlertStore) -> None:
    e = raise_()
    store.apply_event(e, T0)
    batch = [
        StepPlan("b", e.alarm_id, T0 + 10, "p2", payload={"rung": 2}),
        StepPlan("a", e.alarm_id, T0 + 10, "p1"),
        StepPlan("c", e.alarm_id, T0, "p0", "sms"),
    ]
    made = store.plan_steps(batch, T0)
    assert [s.key for s in made] == ["b", "a", "c"]
    assert store.plan_steps(batch, T0 + 1) == []
    assert [s.key for s in store.due_steps(T0 + 10)] == ["c", "b", "a"]
    assert [s.key for s in store.due_steps(T0 + 9)] == ["c"]
    assert [s.key for s in store.due_steps(T0 + 10, limit=1)] == ["c"]
    assert store.next_due_ms() == T0
    step = store.step(made[0].id)
    assert step is not None
    assert (step.payload, step.channel, step.status) == ({"rung": 2}, None, StepStatus.PENDING)


def test_planning_for_an_unknown_alarm_plans_nothing(store: AlertStore) -> None:
    e = raise_()
    store.apply_event(e, T0)
    batch = [StepPlan("ok", e.alarm_id, T0, "p"), StepPlan("bad", "no/such@1", T0, "p")]
    with pytest.raises(ValueError, match="no alarm"):
        store.plan_steps(batch, T0)
    assert store.steps_of(e.alarm_id) == []
    assert store.next_due_ms() is None


def test_claim_send_retry_and_finish(store: AlertStore) -> None:
    e = raise_()
    store.apply_event(e, T0)
    [step] = store.plan_steps(plans(e.alarm_id, 1), T0)
    claimed = store.claim_step(step.id, T0)
    assert claimed is not None
    assert (claimed.status, claimed.claims, claimed.claimed_ms) == (StepStatus.SENDING, 1, T0)
    assert store.claim_step(step.id, T0) is None  # claimed already
    assert store.due_steps(T0) == []
    retry = store.finish_step(
        step.id, StepResult.RETRY, T0 + 5, detail="HTTP 503", retry_at_ms=T0 + 60_000
    )
    assert (retry.status, retry.due_ms, retry.detail) == (
        StepStatus.PENDING,
        T0 + 60_000,
        "HTTP 503",
    )
    assert store.next_due_ms() == T0 + 60_000
    assert store.claim_step(step.id, T0 + 60_000) is not None
    done = store.finish_step(step.id, "sent", T0 + 60_010, detail="call answered")
    assert (done.status, done.claims, done.finished_ms) == (StepStatus.SENT, 2, T0 + 60_010)
    with pytest.raises(StoreError, match="not sending"):
        store.finish_step(step.id, StepResult.FAILED, T0 + 60_020)
    with pytest.raises(ValueError, match="retry_at_ms"):
        store.finish_step(step.id, StepResult.RETRY, T0)
    kinds = [a.kind for a in store.audit(alarm_id=e.alarm_id)]
    assert kinds == [
        "transition",
        "step_planned",
        "step_claimed",
        "step_finished",
        "step_claimed",
        "step_finished",
    ]


def test_a_retry_after_an_ack_is_cancelled(store: AlertStore, path: Path) -> None:
    e = raise_()
    store.apply_event(e, T0)
    [step] = store.plan_steps(plans(e.alarm_id, 1), T0)
    store.claim_step(step.id, T0)
    with AlertStore(path) as cli:  # another process acknowledges while the call rings
        assert cli.ack(e.alarm_id, "hx-ops-zhou", AckMethod.CLI, "", T0 + 1).ok
    finished = store.finish_step(
        step.id, StepResult.RETRY, T0 + 2, detail="busy", retry_at_ms=T0 + 60_000
    )
    assert finished.status is StepStatus.CANCELLED
    assert "acknowledged" in finished.detail


def test_cancel_steps_for_another_reason(store: AlertStore) -> None:
    e = raise_()
    store.apply_event(e, T0)
    store.plan_steps(plans(e.alarm_id, 2), T0)
    assert store.cancel_steps(e.alarm_id, "alarm cleared", T0 + 1) == 2
    assert store.cancel_steps(e.alarm_id, "alarm cleared", T0 + 2) == 0
    assert [a.detail["cancelled"] for a in store.audit(alarm_id=e.alarm_id)[-2:]] == [2, 0]


def test_recover_interrupted_reports_outcome_unknown(store: AlertStore) -> None:
    e = raise_()
    store.apply_event(e, T0)
    first, second = store.plan_steps(plans(e.alarm_id, 2), T0)
    store.claim_step(first.id, T0)
    [lost] = store.recover_interrupted(T0 + 5)
    assert (lost.id, lost.status) == (first.id, StepStatus.UNKNOWN)
    assert "outcome unknown" in lost.detail
    assert store.recover_interrupted(T0 + 6) == []
    assert [s.id for s in store.due_steps(T0 + H)] == [second.id]
    assert store.audit()[-1].kind == "step_interrupted"


# --- attempts ------------------------------------------------------------------------------


def test_attempts_and_who_was_called(store: AlertStore) -> None:
    e = raise_()
    store.apply_event(e, T0)
    [step] = store.plan_steps(plans(e.alarm_id, 1), T0)
    calls: list[tuple[str, str, str, Delivery | str, str, int, int]] = [
        ("hx-ops-zhou", "voice", "13800000001", Delivery.RETRY, "no answer", 1, T0),
        ("hx-ops-zhou", "voice", "13800000001", Delivery.SENT, "answered", 2, T0 + 180_000),
        ("hx-tech-li", "sms", "13800000002", Delivery.PERMANENT, "HTTP 400", 1, T0 + 1),
        ("hx-tech-li", "dingtalk", "hook", "sent", "ok", 1, T0 + 2),
    ]
    for person, channel, address, outcome, detail, n, at in calls:
        made = store.record_attempt(
            alarm_id=e.alarm_id,
            step_id=step.id,
            person=person,
            channel=channel,
            address=address,
            outcome=outcome,
            detail=detail,
            attempt=n,
            now_ms=at,
        )
        assert made.outcome is Delivery(outcome)
    called = store.who_was_called(e.alarm_id)
    assert [(c.person, c.channel, c.attempts, c.last_outcome) for c in called] == [
        ("hx-ops-zhou", "voice", 2, Delivery.SENT),
        ("hx-tech-li", "sms", 1, Delivery.PERMANENT),
        ("hx-tech-li", "dingtalk", 1, Delivery.SENT),
    ]
    assert (called[0].first_ms, called[0].last_ms) == (T0, T0 + 180_000)
    history = store.history(e.alarm_id)
    assert history is not None
    assert [a.attempt for a in history.attempts] == [1, 2, 1, 1]
    assert store.audit()[-1].detail["outcome"] == "sent"


# --- shelving, maintenance, drills ---------------------------------------------------------


def test_shelving_holds_notifications_until_it_expires(store: AlertStore) -> None:
    e = raise_()
    store.apply_event(e, T0)
    shelf = store.shelve(e.alarm_id, "hx-ops-zhou", T0 + H, "传感器误报，已报修", T0 + 1)
    assert shelf.id is not None
    record = store.get(e.alarm_id)
    assert record is not None
    assert is_shelved(record, T0 + 2)
    assert not is_shelved(record, T0 + H)
    assert store.hold_reason(e.alarm_id, T0 + 2) is not None
    assert store.hold_reason(e.alarm_id, T0 + H) is None
    # a new occurrence of the same point within the hour is shelved as well
    store.apply_event(event(Change.CLEARED, None, Level.RED, T0 + 10, start_ms=T0), T0 + 10)
    again = raise_(ts=T0 + 20)
    applied = store.apply_event(again, T0 + 20)
    assert applied is not None
    assert applied.record.shelved_until_ms == T0 + H
    assert store.unshelve(again.alarm_id, "hx-tech-li", T0 + 30) == 1
    assert store.hold_reason(again.alarm_id, T0 + 31) is None
    record = store.get(again.alarm_id)
    assert record is not None
    assert not is_shelved(record, T0 + 31)
    assert len(store.shelves()) == 1
    assert store.shelves(at_ms=T0 + 31) == []
    with pytest.raises(ValueError, match="maintenance window"):
        store.shelve(e.alarm_id, "hx-ops-zhou", T0 + 48 * H, "长期停用", T0)
    with pytest.raises(ValueError, match="no alarm"):
        store.shelve("no/such@1", "hx-ops-zhou", T0 + H, "x", T0)


def test_maintenance_suppresses_and_drill_marks(store: AlertStore) -> None:
    works = store.add_window(
        Window(
            WindowKind.MAINTENANCE,
            Scope.SITE,
            "huaxin-chem/tank-farm-1",
            T0,
            T0 + 2 * H,
            "hx-tech-li",
            "年度校准",
        ),
        T0 - 1,
    )
    drill = store.add_window(
        Window(
            WindowKind.DRILL,
            Scope.ENTERPRISE,
            "huaxin-chem",
            T0 + 3 * H,
            T0 + 4 * H,
            "county",
            "应急演练",
        ),
        T0 - 1,
    )
    assert works.id is not None and drill.id is not None
    assert [w.id for w in store.windows(at_ms=T0 + 1)] == [works.id]
    e = raise_(ts=T0 + 5)
    applied = store.apply_event(e, T0 + 5)
    assert applied is not None
    assert applied.record.suppressed_until_ms == T0 + 2 * H
    assert not applied.record.drill
    assert (
        store.hold_reason(e.alarm_id, T0 + 6)
        == "maintenance window until 2026-11-21T20:00:00.000+00:00"
    )
    ended = store.end_window(works.id, "hx-tech-li", T0 + H)
    assert ended is not None
    assert ended.ended_ms == T0 + H
    assert store.hold_reason(e.alarm_id, T0 + H) is None
    assert store.end_window(works.id, "hx-tech-li", T0 + H + 1) == ended  # over already
    assert store.end_window(999, "x", T0) is None

    other = raise_(ts=T0 + 3 * H + 1, sensor="huaxin-chem/tank-farm-2/T201-LT")
    applied = store.apply_event(other, T0 + 3 * H + 1)
    assert applied is not None
    assert applied.record.drill
    flagged = raise_(ts=T0 + 5 * H, sensor="laojie-restaurants/r-03/G1")
    applied = store.apply_event(flagged, T0 + 5 * H, drill=True)
    assert applied is not None
    assert applied.record.drill
    assert [r.alarm_id for r in store.list_alarms(drill=True)] == [flagged.alarm_id, other.alarm_id]
    kinds = [a.kind for a in store.audit()]
    assert kinds[:2] == ["window_added", "window_added"]
    assert "window_ended" in kinds


# --- queries -------------------------------------------------------------------------------


def test_list_alarms_filters(store: AlertStore) -> None:
    a = raise_(Level.BLUE, T0, sensor="huaxin-chem/tank-farm-1/A")
    b = raise_(Level.RED, T0 + 1, sensor="huaxin-chem/tank-farm-2/B")
    c = raise_(Level.ORANGE, T0 + 2, sensor="laojie-restaurants/r-03/G1")
    for e in (a, b, c):
        store.apply_event(e, e.ts_ms)
    store.ack(b.alarm_id, "x", AckMethod.WEB, "", T0 + 3)

    def ids(**kw: object) -> list[str]:
        return [r.alarm_id for r in store.list_alarms(**kw)]  # type: ignore[arg-type]

    assert ids() == [c.alarm_id, b.alarm_id, a.alarm_id]
    assert ids(states=[State.ACTIVE_UNACKED]) == [c.alarm_id, a.alarm_id]
    assert ids(states=[]) == []
    assert ids(enterprise="huaxin-chem") == [b.alarm_id, a.alarm_id]
    assert ids(enterprise="huaxin-chem", site="tank-farm-1") == [a.alarm_id]
    assert ids(min_level=Level.ORANGE) == [c.alarm_id, b.alarm_id]
    assert ids(since_ms=T0 + 1, until_ms=T0 + 2) == [b.alarm_id]
    assert ids(limit=1) == [c.alarm_id]
    assert store.history("no/such@1") is None
    assert store.get("no/such@1") is None


# --- the audit log -------------------------------------------------------------------------


def _some_history(store: AlertStore) -> str:
    e = raise_()
    store.apply_event(e, T0)
    store.plan_steps(plans(e.alarm_id, 2), T0)
    store.ack(e.alarm_id, "hx-ops-zhou", AckMethod.LINK, "收到", T0 + 1)
    return e.alarm_id


def test_the_audit_log_chains_every_row(store: AlertStore) -> None:
    alarm = _some_history(store)
    rows = store.audit()
    assert [r.kind for r in rows] == [
        "transition",
        "step_planned",
        "step_planned",
        "ack",
        "steps_cancelled",
    ]
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert rows[3].actor == "hx-ops-zhou"
    assert rows[3].detail["comment"] == "收到"
    assert rows[0].detail["event"]["alarm_id"] == alarm
    assert store.audit_head() == (5, rows[-1].hash)
    assert store.audit(since_seq=3, limit=1)[0].seq == 4


@pytest.mark.parametrize(
    ("sql", "word"),
    [("UPDATE audit SET actor = 'someone else'", "changed"), ("DELETE FROM audit", "deleted")],
)
def test_the_database_refuses_to_change_the_audit_log(
    store: AlertStore, path: Path, sql: str, word: str
) -> None:
    _some_history(store)
    with raw(path) as conn, pytest.raises(sqlite3.IntegrityError) as caught:
        conn.execute(sql)
    assert str(caught.value) == (
        f"the audit log is append-only: rows cannot be {word} (Work Safety Law)"
    )
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store._conn.execute(sql)
    assert store.verify_audit() == []


def test_the_audit_log_refuses_a_row_that_does_not_chain(store: AlertStore, path: Path) -> None:
    _some_history(store)
    with raw(path) as conn, pytest.raises(sqlite3.IntegrityError, match="chain to the last row"):
        conn.execute(
            "INSERT INTO audit (ts_ms, kind, actor, detail, prev_hash, hash) "
            "VALUES (1, 'x', 'y', '{}', 'bad', 'bad')"
        )


def test_the_store_itself_cannot_drop_the_triggers(store: AlertStore) -> None:
    for sql in (
        "DROP TRIGGER audit_no_update",
        "DROP TABLE audit",
        "ALTER TABLE audit RENAME TO old_audit",
        "PRAGMA writable_schema = ON",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            store._conn.execute(sql)


def _drop_triggers(conn: sqlite3.Connection) -> None:
    for name in ("audit_no_update", "audit_no_delete", "audit_chained_insert"):
        conn.execute(f"DROP TRIGGER {name}")


def test_verify_finds_a_row_changed_behind_the_triggers(store: AlertStore, path: Path) -> None:
    _some_history(store)
    with raw(path) as conn:
        _drop_triggers(conn)
        conn.execute("UPDATE audit SET detail = replace(detail, '收到', '没收到') WHERE seq = 4")
    problems = store.verify_audit()
    assert "row 4: its content does not match its hash (changed after it was written)" in problems
    assert sum("trigger" in p for p in problems) == 3
    assert len(problems) == 4


def test_verify_finds_a_rehashed_row_by_the_broken_chain(store: AlertStore, path: Path) -> None:
    _some_history(store)
    with raw(path) as conn:
        _drop_triggers(conn)
        seq, ts, kind, alarm, actor, detail, prev = conn.execute(
            "SELECT seq, ts_ms, kind, alarm_id, actor, detail, prev_hash FROM audit WHERE seq = 2"
        ).fetchone()
        forged = detail.replace("hx-ops-zhou", "nobody")
        digest = row_hash(seq, ts, kind, alarm, actor, forged, prev)
        conn.execute("UPDATE audit SET detail = ?, hash = ? WHERE seq = 2", (forged, digest))
    problems = [p for p in store.verify_audit() if "trigger" not in p]
    assert problems == ["row 3: does not chain to row 2 (deleted or changed rows)"]


def test_verify_finds_deleted_rows(store: AlertStore, path: Path) -> None:
    _some_history(store)
    head = store.audit_head()
    with raw(path) as conn:
        _drop_triggers(conn)
        conn.execute("DELETE FROM audit WHERE seq IN (2, 3)")
        conn.execute("DELETE FROM audit WHERE seq = 5")
    problems = [p for p in store.verify_audit(expected_head=head) if "trigger" not in p]
    assert problems == [
        "row 4: rows 2–3 before it are missing",
        "row 4: does not chain to row 1 (deleted or changed rows)",
        "rows 5–5 at the end are missing (the log had reached row 5)",
        "row 5: recorded earlier as the head, no longer present",
    ]


def test_verify_compares_with_a_head_published_earlier(store: AlertStore) -> None:
    _some_history(store)
    seq, digest = store.audit_head()
    assert store.verify_audit(expected_head=(seq, digest)) == []
    assert store.verify_audit(expected_head=(seq, "f" * 64)) == [
        f"row {seq}: differs from the head recorded earlier"
    ]


# --- two processes, and a SIGKILL ----------------------------------------------------------


def test_a_second_store_on_the_same_file_sees_every_commit(path: Path) -> None:
    with AlertStore(path) as service, AlertStore(path) as cli:
        e = raise_()
        service.apply_event(e, T0)
        [step] = service.plan_steps(plans(e.alarm_id, 1), T0)
        assert cli.ack(e.alarm_id, "hx-ops-zhou", AckMethod.CLI, "", T0 + 1).ok
        assert service.claim_step(step.id, T0 + 2) is None
        assert service.verify_audit() == cli.verify_audit() == []
        assert service.audit_head() == cli.audit_head()


_CHILD = """
import sys
from alerting.store import AlertStore
from alerting.store_rows import StepPlan
from earlywarn.model import Change, Level
from tests.alerting.test_lifecycle import event

T0 = {t0}
store = AlertStore(sys.argv[1])
first = event(Change.RAISED, Level.RED, None, T0, start_ms=T0)
store.apply_event(first, T0)
steps = store.plan_steps(
    [StepPlan(f"call-{{k}}", first.alarm_id, T0 + k * 180_000, "hx-ops-zhou", "voice")
     for k in range(3)],
    T0,
)
claimed = store.claim_step(steps[0].id, T0)
print("claimed", claimed.id, flush=True)
n = 0
while True:  # keep writing until killed: the kill lands in the middle of some transaction
    n += 1
    sensor = f"huaxin-chem/tank-farm-1/S{{n}}"
    e = event(Change.RAISED, Level.ORANGE, None, T0 + n, start_ms=T0 + n, sensor=sensor)
    store.apply_event(e, T0 + n)
    store.plan_steps([StepPlan(f"s{{n}}", e.alarm_id, T0 + n, "hx-ops-zhou")], T0 + n)
    if n == 30:
        print("busy", flush=True)
"""


def test_a_sigkill_mid_write_leaves_a_consistent_store(path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(t0=T0), str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        claimed_line = child.stdout.readline().split()
        assert claimed_line[0] == "claimed", claimed_line
        claimed_id = int(claimed_line[1])
        assert child.stdout.readline().strip() == "busy"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert Path(f"{path}-wal").exists()  # the committed state is (partly) in the log

    with AlertStore(path) as store:
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.verify_audit() == []
        for record in store.list_alarms(limit=10_000):
            assert record.problems() == []
            assert [t.kind for t in store.transitions_of(record.alarm_id)] == [
                TransitionKind.RAISED
            ]
            # every committed record has its transition's audit row: no half transition
            assert store.audit(alarm_id=record.alarm_id)[0].kind == "transition"
        conn = store._conn
        counted = dict(conn.execute("SELECT kind, count(*) FROM audit GROUP BY kind").fetchall())
        assert (
            counted["transition"] == conn.execute("SELECT count(*) FROM transitions").fetchone()[0]
        )
        assert counted["step_planned"] == conn.execute("SELECT count(*) FROM steps").fetchone()[0]
        assert counted["transition"] == len(store.list_alarms(limit=10_000)) > 30
        [lost] = store.recover_interrupted(T0 + H)
        assert lost.id == claimed_id
        assert lost.status is StepStatus.UNKNOWN
        first = store.list_alarms(limit=10_000)[-1]
        assert [s.status for s in store.steps_of(first.alarm_id)] == [
            StepStatus.UNKNOWN,
            StepStatus.PENDING,
            StepStatus.PENDING,
        ]
        assert store.verify_audit() == []
        assert store.audit()[-1].detail["detail"].startswith("outcome unknown")
