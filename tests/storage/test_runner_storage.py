"""The embedded runner with storage, end to end: readings published to a real Mosquitto and the
alarm they raise, its SMS and calls (to a local HTTP gateway) and the site snapshot arrive in a
real line-protocol server (VictoriaMetrics, on InfluxDB's ``/api/v2/write``) — also when that
server is down while it all happens, and comes back later.

VictoriaMetrics keeps numeric fields only (``reading_value``, ``alarm_severity``,
``notification_attempt``, ``site_status`` …); the string fields are checked on the spooled
lines in ``tests/earlywarn/test_storage_feed.py`` and against InfluxDB 1.x by the dashboard
tests. It runs without deduplication here, so a point written twice would show.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from alerting.store import AlertStore
from earlywarn.alert_wiring import AlertingRuntime, open_alerting
from earlywarn.clock import SystemClock
from earlywarn.registry import Registry
from earlywarn.settings import RunSettings, StorageSettings
from earlywarn.storage_wiring import StorageRuntime
from tests.alerting.night import channels_to, sent
from tests.conftest import MqttProbe
from tests.services.http_recorder import HttpRecorder
from tests.services.mosquitto import Mosquitto
from tests.services.runner_thread import RunnerThread
from tests.services.victoria import VictoriaMetrics

pytestmark = pytest.mark.integration


GAS = "ew/v1/huaxin-chem/tank-farm-1/GD-03/up"
GAS_LABELS = "enterprise=huaxin-chem,kind=combustible_gas,sensor=GD-03,site=tank-farm-1"


def _runner(
    registry: Registry,
    mosquitto: Mosquitto,
    victoria: VictoriaMetrics,
    http_recorder: HttpRecorder,
    tmp_path: Path,
) -> RunnerThread:
    settings = RunSettings(
        mqtt_url=mosquitto.url, client_id="earlywarn-e2e-storage", escalate_s=0.05
    )
    clock = SystemClock()

    def alerting() -> AlertingRuntime:
        return open_alerting(
            registry, settings, clock, tmp_path / "alerts.db", channels_to(http_recorder)
        )

    def storage(store: AlertStore | None) -> StorageRuntime:
        spool = StorageSettings(influx_url=victoria.url, spool_path=str(tmp_path / "spool.db"))
        # The drain's minimum backoff is 1 s: the test sees the server come back fast.
        return StorageRuntime(spool, registry, clock, store)

    return RunnerThread(registry, settings, clock, alerting=alerting, storage=storage)


def _publish_leak(device: MqttProbe, n: int) -> list[int]:
    """``n`` quiet readings then one far above the red set-point; their timestamps."""
    now = time.time_ns() // 1_000_000 - n * 1000
    stamps = []
    for i in range(n):
        stamps.append(now + i * 1000)
        device.publish(GAS, json.dumps({"ts": stamps[-1], "v": 2.0 + i % 3}))
    stamps.append(now + n * 1000)
    device.publish(GAS, json.dumps({"ts": stamps[-1], "v": 63.0}))
    return stamps


def _stored(victoria: VictoriaMetrics, name: str) -> list[tuple[str, str, int, float]]:
    return [p for p in victoria.points(f'{{__name__="{name}"}}') if p[0] == name]


@pytest.mark.parametrize("outage", [False, True], ids=["influx-up", "influx-down-then-back"])
def test_readings_alarms_and_notifications_reach_the_line_protocol_server(
    mosquitto: Mosquitto,
    registry: Registry,
    http_recorder: HttpRecorder,
    probe_factory: Callable[..., MqttProbe],
    victoria: VictoriaMetrics,
    tmp_path: Path,
    outage: bool,
) -> None:
    if outage:
        victoria.stop()
    runner = _runner(registry, mosquitto, victoria, http_recorder, tmp_path).start()
    try:
        stamps = _publish_leak(probe_factory("device"), 40)
        # Alarms do not wait for storage: the calls go out whether InfluxDB is there or not.
        runner.wait_for(lambda: len(sent(http_recorder, "/voice")) == 5, 15, "five calls")
        runner.wait_for(lambda: runner.snapshot()["evaluated"] == 41, 10, "41 readings")
        storage = runner.runner.storage
        assert storage is not None
        if outage:
            runner.wait_for(
                lambda: runner.call(lambda: storage.status().backlog) >= 41 + 2,
                10,
                "the readings and the alarm waiting in the spool",
            )
            runner.wait_for(
                lambda: runner.call(lambda: storage.status().last_error) is not None,
                10,
                "the drain to report InfluxDB unreachable",
            )
            victoria.start()

        def arrived() -> bool:
            return (
                len(_stored(victoria, "reading_value")) >= 41
                and len(_stored(victoria, "notification_attempt")) >= 10
                and bool(_stored(victoria, "alarm_severity"))
                and any(
                    "site=tank-farm-1" in labels and value == 4
                    for _n, labels, _t, value in _stored(victoria, "site_status")
                )
            )

        runner.wait_for(arrived, 30, "every point in VictoriaMetrics")
        runner.wait_for(lambda: runner.call(lambda: storage.status().backlog) == 0, 10, "drained")
    finally:
        runner.stop()

    readings = _stored(victoria, "reading_value")
    assert [(labels, t) for _n, labels, t, _v in readings] == [(GAS_LABELS, t) for t in stamps]
    assert [v for *_x, v in readings][-1] == 63.0
    severity = _stored(victoria, "alarm_severity")
    assert severity[0][3] == 4, "a red alarm"
    assert "sensor=GD-03" in severity[0][1] and "level=red" in severity[0][1]
    calls = [p for p in _stored(victoria, "notification_attempt") if "channel=voice" in p[1]]
    assert len(calls) == len(sent(http_recorder, "/voice")) == 5
    farm = [p for p in _stored(victoria, "site_status") if "site=tank-farm-1" in p[1]]
    assert farm and farm[-1][3] == 4, "the tank farm is red on the map"
    # Exactly once: no sample repeated (raw server, no deduplication).
    everything = victoria.points()
    assert len(everything) == len(set(everything))


def test_a_killed_drain_process_is_restarted_and_nothing_is_lost(
    mosquitto: Mosquitto,
    registry: Registry,
    http_recorder: HttpRecorder,
    probe_factory: Callable[..., MqttProbe],
    victoria: VictoriaMetrics,
    tmp_path: Path,
) -> None:
    """SIGKILL of the drain child mid-run: the runner logs it, starts a new one, and every
    reading arrives exactly once; alarms never depended on it."""
    runner = _runner(registry, mosquitto, victoria, http_recorder, tmp_path).start()
    try:
        storage = runner.runner.storage
        assert storage is not None
        storage.drain.restart_after_s = 0.2
        device = probe_factory("device")
        first = _publish_leak(device, 20)
        runner.wait_for(lambda: len(_stored(victoria, "reading_value")) >= 21, 20, "first part")
        pid = storage.drain.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        now = time.time_ns() // 1_000_000
        more = [now + i for i in range(30)]
        for ts in more:
            device.publish(GAS, json.dumps({"ts": ts, "v": 3.0}))
        runner.wait_for(lambda: storage.drain.restarts == 1, 20, "a new drain process")
        assert storage.drain.pid != pid
        runner.wait_for(lambda: len(_stored(victoria, "reading_value")) >= 51, 30, "the rest")
        runner.wait_for(lambda: runner.call(lambda: storage.status().backlog) == 0, 10, "drained")
    finally:
        runner.stop()
    readings = _stored(victoria, "reading_value")
    assert sorted(t for *_x, t, _v in readings) == sorted(first + more)
    everything = victoria.points()
    assert len(everything) == len(set(everything))
