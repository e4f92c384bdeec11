"""End to end with escalation: a reading published to a real Mosquitto becomes an alarm,
the alarm becomes SMS and calls to a real HTTP gateway (a local recorder), and the link in
the SMS, posted to the runner's real acknowledgement server, stops it.

The clock is the system's: this test checks the wiring of ``run`` (sink, pump task, server,
store in the runner's thread), not timing, which the alerting tests drive on a ManualClock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from alerting.store import AlertStore
from earlywarn.alert_wiring import AlertingRuntime, open_alerting
from earlywarn.clock import SystemClock
from earlywarn.embedded_broker import free_port
from earlywarn.registry import Registry
from earlywarn.settings import RunSettings
from tests.alerting.night import channels_to, link_in, sent
from tests.conftest import MqttProbe
from tests.services.http_recorder import HttpRecorder
from tests.services.mosquitto import Mosquitto
from tests.services.runner_thread import RunnerThread

pytestmark = pytest.mark.integration

TANK_GAS = "ew/v1/huaxin-chem/tank-farm-1/GD-03/up"
OPS_PHONE = "+8613800020003"


def test_published_reading_calls_the_chain_and_the_link_stops_it(
    mosquitto: Mosquitto,
    registry: Registry,
    http_recorder: HttpRecorder,
    probe_factory: Callable[..., MqttProbe],
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = RunSettings(
        mqtt_url=mosquitto.url,
        client_id="earlywarn-e2e-alerting",
        ack_listen=f"127.0.0.1:{port}",
        link_secret="e2e-link-secret-0123456789abcdef",
        escalate_s=0.05,
    )
    clock = SystemClock()

    def alerting() -> AlertingRuntime:
        return open_alerting(
            registry, settings, clock, tmp_path / "alerts.db", channels_to(http_recorder)
        )

    runner = RunnerThread(registry, settings, clock, alerting=alerting).start()
    try:
        device = probe_factory("device")
        device.publish(TANK_GAS, json.dumps({"ts": time.time_ns() // 1_000_000, "v": 63.0}))
        runner.wait_for(lambda: len(sent(http_recorder, "/voice")) == 5, 15, "five calls")
        sms = next(
            r for r in http_recorder.requests if r.path == "/sms" and r.json()["to"] == OPS_PHONE
        )
        body = sms.json()["body"]
        assert "回复" in body
        link = link_in(sms)
        assert link.startswith(f"http://127.0.0.1:{port}/a/"), body
        page = requests.get(link, timeout=5)
        assert page.status_code == 200 and "确认收到" in page.text
        done = requests.post(link, data={"comment": "现场确认为误报"}, timeout=5)
        assert done.status_code == 200 and "已确认" in done.text
        runner.wait_for(
            lambda: len([r for r in http_recorder.requests if r.path in ("/sms", "/im")]) >= 9,
            10,
            "the acknowledged-by notices to the four others",
        )
    finally:
        runner.stop()
    with AlertStore(tmp_path / "alerts.db") as store:
        (record,) = store.list_alarms()
        assert record.state.value == "active-acked"
        assert record.acked_by == "hx-ops-zhou"
        assert store.verify_audit() == []


def test_a_drill_reading_raises_a_drill_alarm_for_the_drill_roster_only(
    mosquitto: Mosquitto,
    registry: Registry,
    http_recorder: HttpRecorder,
    probe_factory: Callable[..., MqttProbe],
    tmp_path: Path,
) -> None:
    """``"drill": true`` in the payload (``simulate --drill``): the alarm is recorded as a
    drill, says 【演练】, goes to the township duty officer, not the plant's chain, and the
    retained alarm state says so; a real reading next to it is a real alarm."""
    settings = RunSettings(mqtt_url=mosquitto.url, client_id="earlywarn-e2e-drill", escalate_s=0.05)
    clock = SystemClock()

    def alerting() -> AlertingRuntime:
        return open_alerting(
            registry, settings, clock, tmp_path / "alerts.db", channels_to(http_recorder)
        )

    watcher = probe_factory("watcher")
    watcher.subscribe("ew/v1/huaxin-chem/+/+/alarm")
    runner = RunnerThread(registry, settings, clock, alerting=alerting).start()
    try:
        device = probe_factory("device")
        now = time.time_ns() // 1_000_000
        device.publish(TANK_GAS, json.dumps({"ts": now, "v": 63.0, "drill": True}))
        runner.wait_for(
            lambda: {r.path for r in http_recorder.requests} >= {"/sms", "/im"},
            15,
            "the drill notice by SMS and IM (sent in the same step as any wrong call would be)",
        )
        bodies = [r.json() for r in http_recorder.requests]
        texts = [b.get("text") or b.get("title") or b.get("message") for b in bodies]
        assert all(str(t).startswith("【演练】") for t in texts), texts
        assert sent(http_recorder, "/voice") == [], "a drill wakes nobody by phone"
        assert all(to != OPS_PHONE for to, _ in sent(http_recorder, "/sms"))
        retained = json.loads(watcher.wait_for(TANK_GAS.replace("/up", "/alarm"))[-1].payload)
        assert retained["level"] == "red" and retained["event"]["drill"] is True
        assert retained["active"][0]["drill"] is True
    finally:
        runner.stop()
    with AlertStore(tmp_path / "alerts.db") as store:
        (record,) = store.list_alarms()
        assert record.drill is True
