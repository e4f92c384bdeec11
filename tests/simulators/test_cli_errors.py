"""Bad input gets plain words and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.services.process import free_port

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "examples" / "scenarios"


def earlywarn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "earlywarn", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


HEAD = f"""name: test
registry: {ROOT / "examples" / "registry"}
seed: 1
start: "2026-11-22T00:00:00+08:00"
duration: 2h
"""


def test_a_missing_scenario(tmp_path: Path) -> None:
    result = earlywarn("simulate", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "scenario file not found" in result.stderr
    no_traceback(result)


def test_neither_broker_nor_file() -> None:
    result = earlywarn("simulate", str(SCENARIOS / "tank-overfill.yaml"))
    assert result.returncode == 2
    assert "--mqtt URL to publish, --out FILE to write" in result.stderr


def test_every_problem_of_a_scenario_is_reported_as_file_line_message(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD
        + """colour: red
timeline:
  - at: 14:00
    leak: {sensor: r-03/G2, rate: 0.5}
  - at: "01:00"
    until: "00:30"
    leak: {sensor: r-03/G2, rate: 0.5}
  - at: "01:00"
    leak: {sensor: RG-P1, rate: 0.5}
  - at: "01:00"
    storm: {gauges: [RG-P9], return_period: 50, duration: 3h}
  - at: "05:00"
    rain: {gauges: [RG-P1], intensity: 10}
  - at: "01:00"
    flood: {}
""",
    )
    result = earlywarn("simulate", str(path), "--out", str(tmp_path / "out.jsonl"))
    assert result.returncode == 2
    no_traceback(result)
    lines = result.stderr.splitlines()
    expected = {
        6: "unknown field 'colour'",
        8: "must be quoted text",
        11: "'until' must come after 'at'",
        14: "is a rainfall sensor; this needs combustible_gas or toxic_gas",
        16: "no sensor 'RG-P9' in the registry",
        17: "lies outside the scenario's run",
        19: "exactly one event",
        20: "unknown field 'flood'",
    }
    for number, words in expected.items():
        assert any(line.startswith(f"{path}:{number}:") and words in line for line in lines), (
            number,
            lines,
        )
    assert lines[-1].endswith(f"{len(expected)} problems")
    assert not (tmp_path / "out.jsonl").exists()


def test_a_broker_that_is_not_there(tmp_path: Path) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    result = earlywarn("simulate", str(SCENARIOS / "tank-overfill.yaml"), "--mqtt", url)
    assert result.returncode == 1
    assert "cannot reach the MQTT broker at 127.0.0.1:" in result.stderr
    no_traceback(result)
    log = tmp_path / "log.jsonl"
    log.write_text('{"t": 1, "topic": "ew/v1/a/b/c/up", "payload": "{}"}\n', encoding="utf-8")
    for args in (("replay", str(log), "--mqtt", url), ("record", "--mqtt", url, "--out", str(log))):
        result = earlywarn(*args)
        assert result.returncode == 1, args
        assert "cannot reach the MQTT broker" in result.stderr
        no_traceback(result)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("not json", "not JSON"),
        ('{"t": "soon", "topic": "a/b", "payload": ""}', "'t' must be epoch milliseconds"),
        ('{"t": 1, "topic": "a/#", "payload": ""}', "no wildcards"),
        ('{"t": 1, "topic": "a/b"}', "needs 'payload'"),
    ],
)
def test_a_bad_recording_names_its_line(tmp_path: Path, line: str, words: str) -> None:
    log = tmp_path / "bad.jsonl"
    good = '{"t": 1, "topic": "ew/v1/a/b/c/up", "payload": "{}"}'
    log.write_text(f"{good}\n{line}\n", encoding="utf-8")
    result = earlywarn("replay", str(log), "--mqtt", "mqtt://127.0.0.1:1")
    assert result.returncode == 2
    assert result.stderr.startswith(f"{log}:2: ") and words in result.stderr, result.stderr
    no_traceback(result)


def test_a_missing_recording_and_a_bad_url(tmp_path: Path) -> None:
    result = earlywarn("replay", str(tmp_path / "none.jsonl"), "--mqtt", "mqtt://127.0.0.1:1")
    assert result.returncode == 2 and "recording not found" in result.stderr
    result = earlywarn("simulate", str(SCENARIOS / "tank-overfill.yaml"), "--mqtt", "http://x")
    assert result.returncode == 2 and "use mqtt://host:port" in result.stderr
    no_traceback(result)


def test_the_progress_line_shows_simulated_time(tmp_path: Path) -> None:
    result = earlywarn(
        "simulate",
        str(SCENARIOS / "restaurant-gas-leak-night.yaml"),
        "--out",
        str(tmp_path / "o.jsonl"),
    )
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if "simulated 2026-11-22" in line]
    assert len(progress) >= 10
    assert "100%" in progress[-1] and "(+1h30m of 1h30m)" in progress[-1]
