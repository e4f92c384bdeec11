"""An alarm that clears before anyone acknowledged it (ISA-18.2 cleared-unacked).

Its repeats stop and the steps not yet begun never begin; everyone already reached gets one
"已恢复" message on the policy's ``cleared`` channels (SMS for orange and red), and nothing
wakes anyone after that. The alarm stays cleared-unacked until someone acknowledges it, and
that acknowledgement, after the all-clear, sends nothing more at night.
"""

from __future__ import annotations

from pathlib import Path

from alerting.lifecycle import State
from alerting.store_rows import StepStatus
from earlywarn.registry import Registry
from tests.alerting.night import GAS, MIN, NIGHT, Night, open_night, sent
from tests.services.http_recorder import HttpRecorder

ZHOU = "+8613800020003"
RED_CHAIN = {"+8613800020003", "+8613800020002", "+8613800020001", "+8613800010011"}
RED_CHAIN |= {"+8613800010001"}


def _reading(night: Night, minute: int, value: float) -> None:
    night.clock.set(NIGHT + minute * MIN)
    night.reading(GAS, value)


def test_orange_clears_unacknowledged_repeats_stop_one_all_clear_ack_sends_nothing(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")
    _reading(night, 0, 30.0)
    assert night.at(0) == 2
    assert night.at(5 * MIN) == 1  # 周立军's second call
    _reading(night, 7, 3.0)  # below the clear set-point (20 %LEL)
    alarm = night.store.list_alarms()[0]
    assert alarm.state is State.CLEARED_UNACKED
    # The call due at 02:10 and 技术负责人's first SMS and call at 02:10 are cancelled.
    pending = [s for s in night.store.steps_of(alarm.alarm_id) if s.status is StepStatus.PENDING]
    assert [(s.target, s.channel) for s in pending] == [("hx-ops-zhou", "sms")]
    cancelled = [
        s for s in night.store.steps_of(alarm.alarm_id) if s.status is StepStatus.CANCELLED
    ]
    assert cancelled and all("cleared" in s.detail for s in cancelled)

    before = len(http_recorder.requests)
    assert night.at(7 * MIN) == 1
    (all_clear,) = http_recorder.requests[before:]
    assert all_clear.path == "/sms"  # the orange policy's `cleared: [sms]`, not his DingTalk
    assert all_clear.json()["to"] == ZHOU
    assert all_clear.json()["text"].startswith("【已恢复】罐区一 罐区一北侧可燃气体探测器1")
    for minute in range(8, 31):
        assert night.at(minute * MIN) == 0, f"02:{minute:02d}"
    record = night.store.get(alarm.alarm_id)
    assert record is not None and record.state is State.CLEARED_UNACKED

    # 02:31: 周立军 acknowledges in the morning-shift way, from the CLI. Nothing more is sent.
    night.clock.set(NIGHT + 31 * MIN)
    result = night.service.ack(alarm.alarm_id, "hx-ops-zhou", "cli", "探头标定后恢复")
    assert result.ok and result.record is not None
    assert result.record.state is State.CLEARED
    for minute in range(31, 50):
        assert night.at(minute * MIN) == 0
    assert len(http_recorder.requests) == 4


def test_red_clears_everyone_reached_gets_exactly_one_all_clear_by_sms(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")
    _reading(night, 0, 62.0)
    assert night.at(0) == 10
    assert night.at(3 * MIN) == 5
    _reading(night, 4, 3.0)
    assert night.at(4 * MIN) == 5
    all_clear = sent(http_recorder, "/sms")[5:]
    assert {a for a, _ in all_clear} == RED_CHAIN and len(all_clear) == 5
    assert all(t.startswith("【已恢复】") for _, t in all_clear)
    assert [r.path for r in http_recorder.requests[15:]] == ["/sms"] * 5
    for minute in range(5, 20):
        assert night.at(minute * MIN) == 0
    # Even the reconcile of a restarted service plans nothing for it.
    night.service.start()
    assert night.at(20 * MIN) == 0
    alarm = night.store.list_alarms()[0].alarm_id
    night.clock.set(NIGHT + 25 * MIN)
    assert night.service.ack(alarm, "hx-tech-li", "cli").ok
    assert night.at(25 * MIN) == 0
    # And a restarted service does not send the acknowledgement notice either.
    night.service.start()
    assert night.at(26 * MIN) == 0
