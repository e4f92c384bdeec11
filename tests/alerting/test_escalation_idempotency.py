"""Idempotency: the same alarm event twice, the same plan twice, the same delivery key twice.

A redelivered MQTT message, a replay after a restart or a second process re-planning must
never wake anyone twice: an event is recorded once, a step is planned once per key, and a
delivery is sent once.
"""

from __future__ import annotations

from pathlib import Path

from alerting.lifecycle import TransitionKind
from alerting.store_rows import StepPlan
from earlywarn.model import Reading
from earlywarn.registry import Registry
from tests.alerting.night import GAS, MIN, NIGHT, open_night, sent
from tests.services.http_recorder import HttpRecorder

ZHOU = "+8613800020003"


def test_the_same_event_applied_three_times_is_one_occurrence_sent_once(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")
    (raised,) = night.pipeline.evaluate(Reading(GAS, NIGHT, 62.0))
    steps_before = len(night.store.steps_of(raised.alarm_id))
    night.service.emit(raised)
    night.service.emit(raised)
    assert len(night.store.list_alarms()) == 1
    assert [t.kind for t in night.store.transitions_of(raised.alarm_id)] == [TransitionKind.RAISED]
    assert len(night.store.steps_of(raised.alarm_id)) == steps_before
    assert night.at(0) == 10
    night.service.emit(raised)  # after the sends too
    assert night.at(0) == 0
    assert night.at(3 * MIN) == 5

    # The clear, twice: one all-clear per person.
    night.clock.set(NIGHT + 4 * MIN)
    (cleared,) = night.pipeline.evaluate(Reading(GAS, NIGHT + 4 * MIN, 3.0))
    night.service.emit(cleared)
    assert night.at(4 * MIN) == 5
    night.service.emit(cleared)
    assert night.at(4 * MIN) == 0
    assert len(sent(http_recorder, "/voice")) == 10


def test_planning_again_adds_nothing_and_one_delivery_key_is_one_send(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")
    night.reading(GAS, 30.0)
    alarm = night.store.list_alarms()[0]
    escalator = night.service.escalator
    planned = len(night.store.steps_of(alarm.alarm_id))
    assert escalator.plan_alarm(alarm, NIGHT) == 0
    escalator.reconcile(NIGHT)
    escalator.reconcile(NIGHT)
    assert len(night.store.steps_of(alarm.alarm_id)) == planned
    assert night.at(0) == 2
    assert escalator.plan_alarm(alarm, NIGHT) == 0
    assert night.at(0) == 0

    # One delivery, planned twice under one key (two processes, or a retry of the planner).
    night.clock.set(NIGHT + MIN)
    plan = StepPlan(
        f"{alarm.alarm_id}|manual|hx-ops-zhou|sms",
        alarm.alarm_id,
        NIGHT + MIN,
        "hx-ops-zhou",
        "sms",
        {"purpose": "reminder", "address": ZHOU, "level": "orange", "fallbacks": []},
    )
    assert len(night.store.plan_steps([plan], NIGHT + MIN)) == 1
    assert night.store.plan_steps([plan], NIGHT + MIN) == []
    assert night.at(MIN) == 1
    assert night.store.plan_steps([plan], NIGHT + MIN) == []
    assert night.at(MIN) == 0
    assert [a for a, _ in sent(http_recorder, "/sms")] == [ZHOU, ZHOU]


def test_a_control_room_down_for_twenty_minutes_calls_each_person_once(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    """Orange at 02:00, then nothing is pumped until 02:22 (the service was down). Overdue,
    the orange plan has 周立军's and 李文静's reminder calls (02:20), 李文静's first SMS and
    call (02:10) and 孙国栋's (02:20): each person is called once, not 李文静 twice."""
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")
    night.reading(GAS, 30.0)
    assert night.at(0) == 2
    before = len(http_recorder.requests)
    assert night.at(22 * MIN) == 5
    now = [(r.path, r.json()["to"]) for r in http_recorder.requests[before:]]
    assert sorted(now) == sorted(
        [
            ("/voice", ZHOU),
            ("/sms", "+8613800020002"),
            ("/voice", "+8613800020002"),
            ("/sms", "+8613800020001"),
            ("/voice", "+8613800020001"),
        ]
    )
    li = [r.json()["text"] for r in http_recorder.requests[before:]]
    assert sum(t.startswith("【橙色预警】") for t in li) == 2  # first notices, not reminders
    assert night.at(25 * MIN) == 3  # and the 5-minute calls go on, to everyone reached
