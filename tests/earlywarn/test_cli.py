"""The command line as a user runs it: check-registry, run (with signals) and demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alerting.store import AlertStore
from earlywarn.cli import main
from tests.conftest import EXAMPLE_REGISTRY, MqttProbe
from tests.services.mosquitto import Mosquitto

EARLYWARN = [sys.executable, "-m", "earlywarn"]


def earlywarn(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EARLYWARN, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_check_registry_prints_a_summary_table() -> None:
    result = earlywarn("check-registry", str(EXAMPLE_REGISTRY))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "OK" in out
    for word in (
        "enterprises",
        "sites",
        "sensors",
        "people",
        "combustible_gas",
        "tank_level",
        "rainfall",
        "water_level",
        "huaxin-chem",
        "laojie-restaurants",
    ):
        assert word in out


def test_check_registry_lists_every_problem_as_file_line_message(tmp_path: Path) -> None:
    for f in EXAMPLE_REGISTRY.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    ent = tmp_path / "huaxin-chem.yaml"
    text = ent.read_text(encoding="utf-8")
    text = text.replace("kind: tank_level", "kind: tank_levle", 1)
    text = text.replace("preset: combustible_gas", "preset: no_such_preset", 1)
    ent.write_text(text, encoding="utf-8")
    result = earlywarn("check-registry", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert any(
        line.startswith(f"{ent}:") and "unknown sensor kind 'tank_levle'" in line for line in lines
    ), lines
    assert any(
        line.startswith(f"{ent}:") and "unknown preset 'no_such_preset'" in line for line in lines
    ), lines
    assert lines[-1].endswith("2 problems")
    for line in lines[:-1]:
        file, number, message = line.split(":", 2)
        assert Path(file).exists() and int(number) > 0 and message.strip()
    assert "routing.yaml will be checked once the registry loads" in result.stdout


def test_check_registry_on_a_missing_directory(tmp_path: Path) -> None:
    result = earlywarn("check-registry", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "registry directory not found" in result.stderr


@pytest.mark.integration
def test_run_serves_until_sigterm_and_prints_its_counters(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            *EARLYWARN,
            "run",
            "--registry",
            str(EXAMPLE_REGISTRY),
            "--mqtt",
            mosquitto.url,
            "--client-id",
            "earlywarn-cli-test",
            "--store",
            str(tmp_path / "alerts.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        probe = MqttProbe(mosquitto.port, "device")
        probe.subscribe("ew/v1/laojie-restaurants/r-03/G1/alarm")
        deadline = time.monotonic() + 20
        # Publish until the service (still starting) has subscribed and answers with an alarm.
        while not probe.messages and time.monotonic() < deadline:
            probe.publish(
                "ew/v1/laojie-restaurants/r-03/G1/up",
                json.dumps({"ts": time.time_ns() // 1_000_000, "v": 33}),
            )
            time.sleep(0.2)
        assert probe.messages, "the service never published an alarm"
        probe.close()
        # Escalation sends within a second of the alarm; wait for it in the store.
        while time.monotonic() < deadline and not _console_sent(tmp_path / "alerts.db"):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "ORANGE" in out and "清江鱼庄" in out
    assert "earlywarn stopped" in out and "messages received" in out
    # No channels.yaml: SMS and calls are not configured, so each person's notification
    # falls through to the console, the last resort, and the store records why.
    assert "notify console → 吴晓东" in out
    with AlertStore(tmp_path / "alerts.db") as store:
        (record,) = store.list_alarms()
        contacts = {
            (c.person, c.channel, c.last_outcome.value)
            for c in store.who_was_called(record.alarm_id)
        }
        assert ("lj-ops-wu", "sms", "permanent") in contacts
        assert ("lj-ops-wu", "console", "sent") in contacts


def _console_sent(path: Path) -> bool:
    if not path.exists():
        return False
    with AlertStore(path) as store:
        return any(
            c.channel == "console"
            for r in store.list_alarms()
            for c in store.who_was_called(r.alarm_id)
        )


def test_run_with_a_bad_url_says_so() -> None:
    result = earlywarn("run", "--registry", str(EXAMPLE_REGISTRY), "--mqtt", "http://x")
    assert result.returncode == 2
    assert "unsupported scheme 'http'" in result.stderr


def test_demo_shows_readings_alarms_and_a_summary() -> None:
    result = earlywarn("demo", "--speed", "15", timeout=90)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "readings" in out and "published" in out
    lines = out.splitlines()
    leak = [line for line in lines if "| G1 " in line and "清江鱼庄" in line]
    assert any("ORANGE" in line and "raised" in line for line in leak)
    assert any("RED" in line and "higher" in line for line in leak)
    tank = [line for line in lines if "T101-LT" in line and "高高限" in line]
    assert any("RED" in line for line in tank)
    assert "dead-letter" in out
    assert "summary" in out and "alarm events" in out
    assert "demo OK" in out
    # Faster than real time, the devices' timestamps run ahead of the wall clock; no device
    # is silent, so no offline alarm may appear (offline judges arrival, not timestamps).
    assert not [line for line in lines if " offline " in line]
    # Two north detectors at orange together raise the zone's red alarm.
    assert any("RED" in line and "tank-farm-1-north" in line for line in lines)
    # Gauges that only wobble raise nothing (no trend alarm from seconds of noise).
    assert not [line for line in lines if "water_level" in line]


def test_demo_forever_stops_on_ctrl_c_with_a_summary() -> None:
    proc = subprocess.Popen(
        [*EARLYWARN, "demo", "--forever", "--speed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while "readings" not in proc.stdout.readline():  # wait until data flows
            assert time.monotonic() < deadline, "the demo never showed readings"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "summary" in out and "demo stopped by Ctrl-C" in out


# --- check-registry: the alerting files and channels.yaml ------------------------------------


def copy_example(tmp_path: Path) -> Path:
    for f in EXAMPLE_REGISTRY.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["check-registry", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_registry_summarises_routes_policies_and_channels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = check(EXAMPLE_REGISTRY, capsys)
    assert code == 0, err
    assert (
        "routing.yaml      3 top-level route(s): flood-to-county, shop-owner (+5 inside), chain"
        in out
    )
    assert "a drill route; flood control above 5 alarms per site within 2min" in out
    assert "escalation.yaml   none: the built-in policies" in out
    assert "built-in policies: blue, yellow, orange, red" in out
    assert "channels.yaml     none: the console channel only" in out


def test_check_registry_reads_channels_without_their_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = copy_example(tmp_path)
    (registry / "channels.yaml").write_text(CHANNELS, encoding="utf-8")
    (registry / "escalation.yaml").write_text(
        "policies:\n  tunnel-red:\n    steps:\n      - {channels: [voice], repeat: 2min}\n",
        encoding="utf-8",
    )
    monkeypatch.delenv("EARLYWARN_SMS_KEY", raising=False)
    monkeypatch.delenv("EARLYWARN_SMTP_PASSWORD", raising=False)
    code, out, err = check(registry, capsys)
    assert code == 0, err
    assert "channels.yaml     2 channel(s)" in out
    assert "uses ${EARLYWARN_SMS_KEY}" in out and "uses ${EARLYWARN_SMTP_PASSWORD}" in out
    assert (
        "environment variables needed at run time (not checked here): "
        "EARLYWARN_SMS_KEY, EARLYWARN_SMTP_PASSWORD"
    ) in out
    assert "escalation.yaml   1 policy: tunnel-red (1 step)" in out
    assert "contacts name channels channels.yaml does not define: dingtalk, voice" in out


CHANNELS = """\
channels:
  sms:
    type: http
    url: https://sms.example.cn/api/send
    headers: {X-Api-Key: "${EARLYWARN_SMS_KEY}"}
    body: '{"phone": "{address}", "text": "{subject}"}'
  email:
    type: smtp
    host: smtp.example.cn
    from: "安县应急预警 <alarm@example.cn>"
    username: alarm@example.cn
    password: ${EARLYWARN_SMTP_PASSWORD}
"""


def test_check_registry_reports_routing_and_channels_problems_as_file_line(
    tmp_path: Path,
) -> None:
    registry = copy_example(tmp_path)
    routing = registry / "routing.yaml"
    text = routing.read_text(encoding="utf-8")
    typo = (
        "  - name: typo\n"
        "    match: {enterprise: huaxin-chem}\n"
        "    notify: [hx-ops-zhuo]\n"
        "    channels: [pager]\n"
        "  - name: chain\n"
    )
    routing.write_text(text.replace("  - name: chain\n", typo, 1), encoding="utf-8")
    typo_line = (
        routing.read_text(encoding="utf-8").splitlines().index("    notify: [hx-ops-zhuo]") + 1
    )
    channels = registry / "channels.yaml"
    channels.write_text(CHANNELS + "  voice:\n    type: telepathy\n", encoding="utf-8")
    result = earlywarn("check-registry", str(registry))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert any(
        line.startswith(f"{routing}:{typo_line}:") and "hx-ops-zhuo" in line for line in lines
    ), lines
    assert any(line.startswith(f"{routing}:") and "'pager'" in line for line in lines), lines
    assert f"{channels}:14: channel 'voice': unknown type 'telepathy'" in result.stderr
    assert lines[-1] == f"registry {registry}: {len(lines) - 1} problems"
    for line in lines[:-1]:
        file, number, message = line.split(":", 2)
        assert Path(file).exists() and int(number) > 0 and message.strip()
    assert "OK" not in result.stdout
