"""Shelving, maintenance windows and drills: what holds notifications, and what marks them.

- An operator shelves the north gas detector's alarm (the detector is being recalibrated):
  the calls stop at once, the point re-alarming while shelved is recorded and sends nothing,
  and when the shelving expires with the alarm still there, its policy starts over at once.
- A maintenance window over the tank farm: alarms there are recorded and nobody is woken;
  ended early with the alarm still there, the escalation starts when it ends.
- A drill window: the alarm is a drill, every message starts with 【演练】 and goes to the
  drill route of the example routing.yaml (the township duty officer, yellow: IM and SMS once).
"""

from __future__ import annotations

from pathlib import Path

from alerting.holds import Scope, Window, WindowKind
from alerting.lifecycle import State
from alerting.store_rows import StepStatus
from earlywarn.registry import Registry
from tests.alerting.night import GAS, MIN, NIGHT, Night, open_night, texts
from tests.services.http_recorder import HttpRecorder

SEC = 1_000
ZHOU = "+8613800020003"
TANK_FARM = "huaxin-chem/tank-farm-1"
LOADING_BAY = "huaxin-chem/loading-bay/GD-11"


def _reading(night: Night, minute: int, value: float, sensor: str = GAS) -> None:
    night.clock.set(NIGHT + minute * MIN)
    night.reading(sensor, value)


def _attempts(night: Night, alarm_id: str) -> int:
    history = night.store.history(alarm_id)
    assert history is not None
    return len(history.attempts)


def test_a_shelved_point_sends_nothing_until_the_shelving_expires(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")
    _reading(night, 0, 30.0)
    assert night.at(0) == 2  # orange: 周立军, SMS and a call
    first = night.store.list_alarms()[0]

    # 02:01: the duty officer shelves it for half an hour: the detector is being recalibrated.
    night.clock.set(NIGHT + MIN)
    night.store.shelve(first.alarm_id, "ax-duty-wang", NIGHT + 31 * MIN, "探测器标定", NIGHT + MIN)
    for minute in range(1, 8):
        assert night.at(minute * MIN) == 0, f"02:{minute:02d}"  # no 02:05 call
    held = [s for s in night.store.steps_of(first.alarm_id) if s.status is StepStatus.CANCELLED]
    assert held and all(s.detail.startswith("held: shelved until") for s in held)

    # The reading drops, then rises again: a new occurrence of a shelved point.
    _reading(night, 8, 3.0)
    _reading(night, 9, 30.0)
    second = night.store.list_alarms()[0]
    assert second.alarm_id != first.alarm_id
    assert second.state is State.ACTIVE_UNACKED
    assert second.shelved_until_ms == NIGHT + 31 * MIN
    for minute in range(8, 31):
        assert night.at(minute * MIN) == 0, f"02:{minute:02d}"
    assert _attempts(night, second.alarm_id) == 0

    # 02:31: the shelving has expired and the alarm is still there: the next reconcile (every
    # minute) starts its policy at once — 周立军 first, as for a new alarm.
    before = len(http_recorder.requests)
    assert night.at(31 * MIN) == 2
    resumed = [(r.path, r.json()["to"], r.json()["text"]) for r in http_recorder.requests[before:]]
    assert [(p, a) for p, a, _ in resumed] == [("/sms", ZHOU), ("/voice", ZHOU)]
    assert resumed[0][2].startswith("【橙色预警】")
    assert all(night.at(m * MIN) == 0 for m in range(32, 36))
    assert night.at(36 * MIN) == 1  # his reminder, 5 min later
    assert night.at(41 * MIN) == 3  # and 技术负责人 joins at 10 min
    # The first occurrence cleared while shelved: nothing more for it.
    assert _attempts(night, first.alarm_id) == 2


def test_shelving_stops_calls_already_planned_and_they_start_over_when_it_ends(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    """Shelved 15 s before a call falls due, after the last reconcile: the call is held
    when it falls due, not a minute later."""
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")
    _reading(night, 0, 62.0)
    assert night.at(0) == 10
    assert night.at(70 * SEC) == 0  # reconciles (every minute)
    assert night.at(140 * SEC) == 0  # reconciles
    alarm = night.store.list_alarms()[0].alarm_id
    night.clock.set(NIGHT + 165 * SEC)
    night.store.shelve(
        alarm, "ax-duty-wang", NIGHT + 10 * MIN, "误报，已派人核实", NIGHT + 165 * SEC
    )
    assert night.at(180 * SEC) == 0  # 02:03: no reconcile since 02:02:20, the call is held
    assert [night.at(m * MIN) for m in range(4, 10)] == [0] * 6  # nor 02:06, 02:09
    # 02:10 the shelving ends, the gas is still there: red from 02:10, SMS and calls to all.
    assert night.at(10 * MIN) == 10
    assert night.at(13 * MIN) == 5


def test_a_maintenance_window_holds_the_site_until_it_ends(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(registry, http_recorder, tmp_path / "alerts.db", start_ms=NIGHT - 30 * MIN)
    window = night.store.add_window(
        Window(
            WindowKind.MAINTENANCE,
            Scope.SITE,
            TANK_FARM,
            NIGHT - 30 * MIN,
            NIGHT + 120 * MIN,
            "ax-duty-wang",
            "罐区一检修，可燃气体探测器停用",
        ),
        NIGHT - 30 * MIN,
    )
    _reading(night, 0, 62.0)  # red in the tank farm, under maintenance
    _reading(night, 0, 62.0, LOADING_BAY)  # red at the loading bay, not under maintenance
    assert night.at(0) == 10
    tank = next(a for a in night.store.list_alarms() if a.sensor == GAS)
    bay = next(a for a in night.store.list_alarms() if a.sensor == LOADING_BAY)
    assert tank.state is State.ACTIVE_UNACKED
    assert tank.suppressed_until_ms == NIGHT + 120 * MIN
    assert night.service.ack(bay.alarm_id, "hx-ops-zhou", "cli").ok
    for minute in range(1, 30):
        night.at(minute * MIN)
    assert _attempts(night, tank.alarm_id) == 0
    assert not [t for t in texts(http_recorder, "/sms") if "罐区一北侧" in t]

    # The work is done early; the gas reading is real. Escalation starts when the window ends.
    night.clock.set(NIGHT + 30 * MIN)
    night.store.end_window(window.id or 0, "ax-duty-wang", NIGHT + 30 * MIN)
    before = len(http_recorder.requests)
    assert night.at(30 * MIN) == 10
    now = [r.json()["text"] for r in http_recorder.requests[before:]]
    assert all("罐区一北侧" in t for t in now)
    assert night.at(33 * MIN) == 5


def test_a_drill_is_marked_and_goes_to_the_drill_route(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(registry, http_recorder, tmp_path / "alerts.db", start_ms=NIGHT - MIN)
    night.store.add_window(
        Window(
            WindowKind.DRILL,
            Scope.SITE,
            TANK_FARM,
            NIGHT - MIN,
            NIGHT + 60 * MIN,
            "ax-duty-wang",
            "罐区泄漏应急演练",
        ),
        NIGHT - MIN,
    )
    _reading(night, 0, 62.0)
    alarm = night.store.list_alarms()[0]
    assert alarm.drill
    # The drill route: the 金山镇 duty officer, yellow (IM and SMS, once); not the red chain.
    assert night.at(0) == 2
    (im,) = texts(http_recorder, "/im")
    ((to, sms),) = [(r.json()["to"], r.json()) for r in http_recorder.requests if r.path == "/sms"]
    assert to == "+8613800010011"
    for text in (im, sms["text"], sms["body"]):
        assert text.startswith("【演练】【红色预警】罐区一 罐区一北侧可燃气体探测器1")
    for minute in range(1, 30):
        assert night.at(minute * MIN) == 0
    assert texts(http_recorder, "/voice") == []
