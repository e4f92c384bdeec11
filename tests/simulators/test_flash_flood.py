"""The shipped flash-flood scenario, through ingest and the real rules of the example registry:
red on the gauges under the storm, nothing on the one at its fringe."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path

from earlywarn.backtest import run_backtest
from earlywarn.sim_scenario import load_scenario
from ingest.decode import decode_reading_message
from simulators.engine import Simulation

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "flash-flood-storm.yaml"
ORDER = ["blue", "yellow", "orange", "red"]


def test_the_storm_raises_red_rainfall_alarms_under_it_and_none_elsewhere(tmp_path: Path) -> None:
    loaded = load_scenario(SCENARIO)
    rows: list[str] = []
    rejected: list[str] = []
    for message in Simulation(loaded.scenario).messages():
        if not message.topic.endswith("/up"):
            continue
        decoded = decode_reading_message(
            message.topic, message.payload, loaded.registry, message.t_ms
        )
        rejected += [f"{message.topic}: {r.reason} {r.detail}" for r in decoded.rejections]
        if "/qingjiang-water/" in message.topic:
            rows += [
                json.dumps({"sensor": r.sensor, "ts": r.ts_ms, "value": r.value})
                for r in decoded.readings
            ]
    assert not rejected, rejected[:5]  # the simulators publish only what the contract accepts
    readings = tmp_path / "readings.jsonl"
    readings.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    run_backtest(loaded.registry, readings, out, err, fmt="jsonl")

    highest: dict[tuple[str, str], int] = defaultdict(lambda: -1)
    for line in out.getvalue().splitlines():
        event = json.loads(line)
        if event["level"] is not None:
            key = (event["sensor_id"], event["rule"])
            highest[key] = max(highest[key], ORDER.index(event["level"]))
    for gauge in ("RG-P1", "RG-P2", "RG-P3"):
        assert highest[(gauge, "flash_flood")] == ORDER.index("red"), gauge
        assert highest[(gauge, "rainstorm_cma")] == ORDER.index("red"), gauge
    assert not [k for k in highest if k[0] == "RG-P4"], "the fringe gauge must stay quiet"
    # The rivers answer hours later: both reach their warning level (警戒水位, yellow).
    assert highest[("WL-H2", "water_level")] >= ORDER.index("yellow")
    assert highest[("WL-H1", "water_level")] >= ORDER.index("yellow")
    assert not [k for k in highest if k[0] == "WL-R1"]
