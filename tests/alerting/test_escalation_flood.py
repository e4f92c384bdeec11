"""Flood control: fifty gas detectors of one tank farm go off within two minutes.

A burst that size at one site is one incident (a gas cloud over the tanks). The first five
alarms are sent one by one, as any alarm; the rest are folded into one grouped message per
site and window, sent when the window closes so that it says how many there were, instead of
fifty messages and fifty calls. Every alarm is still recorded. An alarm of a higher level than
all the others of the burst (the first red one) is not folded: it escalates on its own.

Real pieces: the registry (a copy of the example with a fifty-detector site), the pipeline and
rules, the SQLite store, the HTTP provider and Apprise channels against a local recorder.
"""

from __future__ import annotations

from pathlib import Path

from alerting.lifecycle import State
from alerting.store_rows import StepStatus
from earlywarn.model import Level
from earlywarn.registry import load_registry
from tests.alerting.night import (
    MIN,
    NIGHT,
    TANKS,
    Night,
    open_night,
    registry_with_tank_farm,
    texts,
)
from tests.alerting.night import sent as sent_to
from tests.services.http_recorder import HttpRecorder

SEC = 1_000
RED_AT = (30, 40)
"""Detectors that read red; every other one reads orange."""


def _burst(night: Night, recorder: HttpRecorder) -> dict[int, int]:
    """Detector n goes off at 02:00 + 2n s (all fifty within 100 s, inside one 2-minute
    window); the control room pumps after each. Returns the requests each alarm caused."""
    caused: dict[int, int] = {}
    for n in range(1, 51):
        night.clock.set(NIGHT + 2 * n * SEC)
        night.reading(f"{TANKS}/GD-{n:02d}", 62.0 if n in RED_AT else 30.0)
        before = len(recorder.requests)
        night.service.pump()
        caused[n] = len(recorder.requests) - before
    return caused


def test_fifty_alarms_at_one_site_become_five_alarms_and_one_grouped_message(
    http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    registry = load_registry(registry_with_tank_farm(tmp_path))
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")

    caused = _burst(night, http_recorder)

    # The first five: an SMS and a call to 高明 (first rung of the orange chain) each.
    assert [caused[n] for n in range(1, 6)] == [2] * 5
    # The first red one is above everything before it: the whole red chain, on its own.
    assert caused[30] == 10
    # Everything else is folded (the second red one too: a red came before it).
    assert all(caused[n] == 0 for n in caused if n > 5 and n != 30)
    red = [t for t in texts(http_recorder, "/voice") if "探测器30 " in t]
    assert len(red) == 5 and all(t.startswith("红色预警，") for t in red)

    # Every alarm is recorded, at its own level, waiting for acknowledgement.
    alarms = night.store.list_alarms(enterprise="xinhe-chem", site="tanks", limit=100)
    assert len(alarms) == 50
    assert {a.state for a in alarms} == {State.ACTIVE_UNACKED}
    assert sorted(a.peak for a in alarms).count(Level.RED) == 2

    # Someone acknowledges one folded alarm before the window closes: the others still
    # need the grouped message.
    folded = next(a for a in alarms if a.sensor == f"{TANKS}/GD-06")
    night.clock.set(NIGHT + 110 * SEC)
    assert night.service.ack(folded.alarm_id, "xh-ops-gao", "cli").ok

    # Nothing more until the window closes at 02:02:00…
    assert night.at(119 * SEC) == 0
    assert len(http_recorder.requests) == 20
    # …then one grouped message to 高明, on each written channel he has (DingTalk and SMS),
    # counting the whole burst and naming the latest alarm.
    assert night.at(2 * MIN) == 2
    im = texts(http_recorder, "/im")
    group_sms = [t for a, t in sent_to(http_recorder, "/sms") if "条】" in t]
    assert len(im) == 1 and len(group_sms) == 1
    for text in (im[0], group_sms[0]):
        assert text.startswith("【红色预警·50条】储罐区 2 分钟内 50 条报警，最新：")
        assert "探测器50 " in text
    assert sent_to(http_recorder, "/sms")[-1][0] == "+8613800050001"

    # Each folded alarm held a share of the grouped message; one message went out.
    steps = [
        s
        for a in alarms
        for s in night.store.steps_of(a.alarm_id)
        if s.payload.get("purpose") == "grouped"
    ]
    group_steps = [s for s in steps if s.target == "rung"]
    deliveries = [s for s in steps if s.target != "rung"]
    assert len(group_steps) == 44  # 50 - the first five - the first red
    assert [s.status for s in deliveries] == [StepStatus.SENT] * 2
    # And no second grouped message later on.
    for minute in (3, 4):
        night.at(minute * MIN)
    assert len(texts(http_recorder, "/im")) == 1
    assert night.store.verify_audit() == []


def test_a_burst_across_two_windows_is_two_grouped_messages(
    http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    """Windows are fixed (02:00–02:02, 02:02–02:04): a burst across a boundary is two
    grouped messages, each counting its own window."""
    registry = load_registry(registry_with_tank_farm(tmp_path))
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")
    groups_by_window_end: list[int] = []
    for n in range(1, 13):  # 02:01:25, 02:01:30 … 02:02:20: seven, then five
        night.clock.set(NIGHT + 80 * SEC + 5 * n * SEC)
        night.reading(f"{TANKS}/GD-{n:02d}", 30.0)
        night.service.pump()
        groups_by_window_end.append(len(texts(http_recorder, "/im")))
    assert len(sent_to(http_recorder, "/voice")) == 5
    # The first window's message went out with the pump at 02:02:00 (reading 8), not before.
    assert groups_by_window_end == [0] * 7 + [1] * 5
    assert night.at(4 * MIN) == 2
    groups = texts(http_recorder, "/im")
    assert [g.split("】")[0] for g in groups] == ["【橙色预警·7条", "【橙色预警·5条"]
