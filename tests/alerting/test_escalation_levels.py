"""Level changes of an open alarm: a rise replaces the plan, a fall is told, an acknowledged
alarm that rises must be acknowledged again.

The north gas detector of 华信化工's tank farm (example registry) reads 30 %LEL at 02:00
(orange: an SMS and a call to 周立军, the call repeated every 5 min, the next rung at 10 min),
62 %LEL at 02:07 (red: SMS and calls to the whole red chain at once, calls every 3 min from
then), 40 %LEL at 02:11 (back to orange), 62 again at 02:14. Real pipeline, rules, store and
channels; the clock is a ManualClock and each minute is pumped.
"""

from __future__ import annotations

from pathlib import Path

from alerting.lifecycle import State, TransitionKind
from alerting.store_rows import StepStatus
from earlywarn.registry import Registry
from tests.alerting.night import GAS, MIN, NIGHT, Night, open_night, sent, texts
from tests.services.http_recorder import HttpRecorder

ZHOU = "+8613800020003"
RED_CHAIN = ["+8613800020003", "+8613800020002", "+8613800020001", "+8613800010011"]
RED_CHAIN += ["+8613800010001"]  # 操作, 技术, 主要负责人, 金山镇 and 安县 duty officers


def _at(night: Night, recorder: HttpRecorder, minute: int) -> list[tuple[str, str, str]]:
    """Pump at 02:mm and return (path, address or '', text) of what went out then."""
    before = len(recorder.requests)
    night.at(minute * MIN)
    out = []
    for r in recorder.requests[before:]:
        doc = r.json()
        out.append((r.path, str(doc.get("to", "")), str(doc.get("text", doc.get("title")))))
    return out


def _reading(night: Night, minute: int, value: float) -> None:
    night.clock.set(NIGHT + minute * MIN)
    night.reading(GAS, value)


def test_rise_to_red_replaces_the_orange_plan_a_fall_is_told_and_a_new_rise_calls_again(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")
    _reading(night, 0, 30.0)
    first = _at(night, http_recorder, 0)
    assert [(p, a) for p, a, _ in first] == [("/sms", ZHOU), ("/voice", ZHOU)]
    assert first[0][2].startswith("【橙色预警】")
    assert [_at(night, http_recorder, m) for m in (1, 2, 3, 4)] == [[]] * 4
    (reminder,) = _at(night, http_recorder, 5)
    assert reminder[:2] == ("/voice", ZHOU)
    assert reminder[2].startswith("橙色预警·第2次提醒，")  # his second call
    assert _at(night, http_recorder, 6) == []

    # 02:07: red. The orange plan's pending steps (02:10 call, 技术负责人 at 02:10…) are
    # cancelled; the red policy runs from 02:07: SMS and a call to every rung at once.
    _reading(night, 7, 62.0)
    alarm = night.store.list_alarms()[0]
    orange_left = [
        s
        for s in night.store.steps_of(alarm.alarm_id)
        if s.payload.get("level") == "orange" and s.status is StepStatus.PENDING
    ]
    assert orange_left == []
    rise = _at(night, http_recorder, 7)
    assert sorted(a for p, a, _ in rise if p == "/sms") == sorted(RED_CHAIN)
    assert sorted(a for p, a, _ in rise if p == "/voice") == sorted(RED_CHAIN)
    assert all(t.startswith(("【升级为红色】", "升级为红色，")) for _, _, t in rise)
    assert [_at(night, http_recorder, m) for m in (8, 9)] == [[], []]
    calls = _at(night, http_recorder, 10)  # 02:10: every 3 min from 02:07
    assert sorted(a for _, a, _ in calls) == sorted(RED_CHAIN)
    assert {p for p, _, _ in calls} == {"/voice"}
    assert all(t.startswith("红色预警·第2次提醒，") for _, _, t in calls)

    # 02:11: back to orange. One written notice to everyone reached (DingTalk where they
    # have it, else SMS), no call.
    _reading(night, 11, 40.0)
    lower = _at(night, http_recorder, 11)
    assert sorted(p for p, _, _ in lower) == ["/im", "/im", "/im", "/im", "/sms"]
    assert all(t.startswith("【降为橙色】") for _, _, t in lower)
    assert _at(night, http_recorder, 12) == []
    # Nobody has acknowledged the red: its calls go on (a fall stands nobody down).
    assert len(_at(night, http_recorder, 13)) == 5

    # 02:14: red again. A new rise: the red policy starts again from 02:14.
    _reading(night, 14, 62.0)
    again = _at(night, http_recorder, 14)
    assert len(again) == 10
    assert all(t.startswith(("【升级为红色】", "升级为红色，")) for _, _, t in again)
    assert [_at(night, http_recorder, m) for m in (15, 16)] == [[], []]
    assert len(_at(night, http_recorder, 17)) == 5
    assert len(_at(night, http_recorder, 20)) == 5

    kinds = [t.kind for t in night.store.transitions_of(alarm.alarm_id)]
    assert kinds == [
        TransitionKind.RAISED,
        TransitionKind.LEVEL_UP,
        TransitionKind.LEVEL_DOWN,
        TransitionKind.LEVEL_UP,
    ]
    # Orange: 02:00, 02:05; red: 02:07, 02:10, 02:13; red again: 02:14, 02:17, 02:20.
    assert len(texts(http_recorder, "/voice")) == 2 + 5 * 3 + 5 * 3


def test_an_acknowledged_orange_alarm_that_rises_must_be_acknowledged_again(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")
    _reading(night, 0, 30.0)
    assert len(_at(night, http_recorder, 0)) == 2
    alarm = night.store.list_alarms()[0].alarm_id
    night.clock.set(NIGHT + 2 * MIN)
    assert night.service.ack(alarm, "hx-ops-zhou", "cli", "去现场看看").ok
    assert [_at(night, http_recorder, m) for m in range(2, 7)] == [[]] * 5  # 02:05 cancelled

    _reading(night, 7, 62.0)
    record = night.store.get(alarm)
    assert record is not None
    assert record.state is State.ACTIVE_UNACKED and record.acked_by is None
    rise = night.store.transitions_of(alarm)[-1]
    assert rise.kind is TransitionKind.LEVEL_UP
    assert "must be acknowledged again" in rise.detail
    # The calls resume, under the red policy, from 02:07.
    assert len(_at(night, http_recorder, 7)) == 10
    assert len(_at(night, http_recorder, 10)) == 5
    night.clock.set(NIGHT + 11 * MIN)
    assert night.service.ack(alarm, "hx-tech-li", "cli").ok
    notices = _at(night, http_recorder, 11)
    assert len(notices) == 4 and all("已有人确认" in t for _, _, t in notices)
    assert "/voice" not in {p for p, _, _ in notices}
    assert [_at(night, http_recorder, m) for m in range(12, 30)] == [[]] * 18
    history = night.store.history(alarm)
    assert history is not None
    assert [(a.by, a.how) for a in history.acks] == [("hx-ops-zhou", "cli"), ("hx-tech-li", "cli")]
    assert len(sent(http_recorder, "/voice")) == 1 + 5 + 5
