"""``earlywarn run --api`` serves the API from the service's own loop: health, the live
counters in /metrics, the alarm it just raised, and it still stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from earlywarn.embedded_broker import free_port
from tests.api.server import make_tokens
from tests.conftest import EXAMPLE_REGISTRY, MqttProbe
from tests.services.mosquitto import Mosquitto

pytestmark = pytest.mark.integration


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_run_serves_the_api_with_live_counters(
    mosquitto: Mosquitto, probe_factory: Callable[..., MqttProbe], tmp_path: Path
) -> None:
    tokens = make_tokens(tmp_path / "tokens.yaml")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EARLYWARN_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "earlywarn",
            "run",
            "--registry",
            str(EXAMPLE_REGISTRY),
            "--mqtt",
            mosquitto.url,
            "--client-id",
            "earlywarn-api-test",
            "--store",
            str(tmp_path / "alerts.db"),
            "--api",
            f"127.0.0.1:{port}",
            "--api-tokens",
            str(tmp_path / "tokens.yaml"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    centre = {"Authorization": f"Bearer {tokens.centre}"}
    try:
        wait_for(lambda: answers(f"{base}/healthz"), "the API did not come up")
        wait_for(lambda: httpx.get(f"{base}/healthz").json()["mqtt_connected"], "no MQTT")
        device = probe_factory("device")
        reading = {"ts": time.time_ns() // 1_000_000, "v": 57.5}
        device.publish("ew/v1/laojie-restaurants/r-03/G1/up", json.dumps(reading))

        def alarm_listed() -> bool:
            return bool(httpx.get(f"{base}/api/v1/alarms", headers=centre).json())

        wait_for(alarm_listed, "the alarm was not listed")
        metrics = httpx.get(f"{base}/metrics", headers=centre).text
        assert "earlywarn_messages_received_total 1.0" in metrics
        assert 'earlywarn_alarm_events_total{level="red"} 1.0' in metrics
        assert 'earlywarn_alarms_open{level="red",state="active-unacked"} 1.0' in metrics
        own = httpx.get(
            f"{base}/api/v1/alarms", headers={"Authorization": f"Bearer {tokens.huaxin}"}
        )
        assert own.json() == []
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
    assert b"earlywarn stopped" in out
