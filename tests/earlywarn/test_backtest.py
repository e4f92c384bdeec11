"""``earlywarn backtest``: recorded readings through the rules on a simulated clock."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from earlywarn.backtest import run_backtest
from earlywarn.registry import Registry
from tests.conftest import EXAMPLE_REGISTRY

T0 = 1_795_284_000_000
G1 = "laojie-restaurants/r-03/G1"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_events_as_json_lines_and_bad_lines_reported_by_number(
    registry: Registry, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "in.csv",
        "\n".join(
            [
                "sensor,ts,value",
                f"{G1},{T0},3",
                f"{G1},{T0 + 1000},27",
                f"nosuch,{T0 + 2000},1",
                f"{G1},{T0 + 3000},abc",
                f"{G1},yesterday,5",
                f"{G1},{T0 + 4000},55",
                f"{G1},{T0 + 5000},1",
            ]
        )
        + "\n",
    )
    out, err = io.StringIO(), io.StringIO()
    result = run_backtest(registry, path, out, err, fmt="jsonl")
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["rule"], e["level"], e["state"]) for e in events] == [
        ("combustible_gas", "orange", "active"),
        ("combustible_gas", "red", "active"),
        ("combustible_gas", None, "cleared"),
    ]
    for e in events:
        assert {"ts", "sensor", "rule", "level", "state", "value"} <= set(e)
    assert events[0]["value"] == 27.0 and events[0]["sensor"] == G1
    errors = err.getvalue().splitlines()
    assert errors[0] == f"{path}:4: sensor 'nosuch' is not in the registry (skipped)"
    assert errors[1] == f"{path}:5: value 'abc' is not a number (skipped)"
    assert errors[2].startswith(f"{path}:6: 'ts' 'yesterday' is not an ISO-8601 time")
    summary = json.loads(errors[-1])["summary"]
    assert summary["readings"] == 4 and summary["bad_lines"] == 3
    assert result.by_level == {"orange": 1, "red": 1, "cleared": 1}


def test_json_lines_input_out_of_order_is_evaluated_in_time_order(
    registry: Registry, tmp_path: Path
) -> None:
    lines = [
        {"sensor": G1, "ts": T0 + 2000, "value": 60},
        {"sensor": G1, "ts": T0, "value": 0},
        {"sensor": G1, "ts": T0 + 1000, "value": 30},
        "not json",
    ]
    text = "\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n"
    out, err = io.StringIO(), io.StringIO()
    run_backtest(registry, write(tmp_path, "in.jsonl", text), out, err, fmt="jsonl")
    levels = [json.loads(line)["level"] for line in out.getvalue().splitlines()]
    assert levels == ["orange", "red"]
    assert f"{tmp_path / 'in.jsonl'}:4: not JSON" in err.getvalue()


def test_offline_rules_run_on_the_simulated_clock(registry: Registry, tmp_path: Path) -> None:
    rows = [f"{G1},{T0 + i * 5000},1" for i in range(4)] + [f"{G1},{T0 + 120_000},1"]
    out, err = io.StringIO(), io.StringIO()
    run_backtest(
        registry,
        write(tmp_path, "in.csv", "sensor,ts,value\n" + "\n".join(rows)),
        out,
        err,
        fmt="jsonl",
        tick_ms=1000,
    )
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    offline = [(e["ts_ms"] - T0, e["state"]) for e in events if e["rule"] == "offline"]
    # Last reading at 15 s; 3 x the 5 s interval of silence is reached at 30 s.
    assert offline == [(30_000, "active"), (120_000, "cleared")]
    assert {e["sensor"] for e in events} == {G1}, "sensors not in the file are not watched"


def test_chattering_and_alarm_rate_figures(registry: Registry, tmp_path: Path) -> None:
    values = [30, 0] * 4  # raised four times within 8 s
    rows = [f"{G1},{T0 + i * 1000},{v}" for i, v in enumerate(values)]
    out, err = io.StringIO(), io.StringIO()
    result = run_backtest(
        registry, write(tmp_path, "in.csv", "sensor,ts,value\n" + "\n".join(rows)), out, err
    )
    assert result.chattering == [(f"{G1}/combustible_gas", 2)]
    assert result.raised_per_10min_peak == 4
    text = out.getvalue()
    assert "backtest figures" in text and "chattering alarms    1" in text


def test_cli_backtest(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", f"sensor,ts,value\n{G1},{T0},60\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "earlywarn",
            "backtest",
            "--registry",
            str(EXAMPLE_REGISTRY),
            "--input",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "RED" in result.stdout and "backtest figures" in result.stdout
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "earlywarn",
            "backtest",
            "--registry",
            str(EXAMPLE_REGISTRY),
            "--input",
            str(tmp_path / "none.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2 and "not found" in missing.stderr
