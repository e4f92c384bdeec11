"""Same scenario, same seed: byte-identical output, through the command as a user runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from earlywarn.cli import main
from earlywarn.sim_scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def simulate(tmp_path: Path, name: str, *extra: str) -> bytes:
    out = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.jsonl"
    code = main(
        [
            "simulate",
            str(SCENARIOS / "restaurant-gas-leak-night.yaml"),
            "--out",
            str(out),
            "--quiet",
            *extra,
        ]
    )
    assert code == 0
    return out.read_bytes()


def test_the_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = simulate(tmp_path, "a")
    second = simulate(tmp_path, "b")
    assert first == second
    assert first.count(b"\n") > 10_000


def test_another_seed_gives_other_noise_but_the_same_messages(tmp_path: Path) -> None:
    first = simulate(tmp_path, "a").splitlines()
    other = simulate(tmp_path, "b", "--seed", "2").splitlines()
    assert first != other
    # Same devices and roughly the same number of messages: only the noise and jitter moved.
    assert abs(len(first) - len(other)) < len(first) * 0.01


def test_a_drill_marks_every_reading_and_nothing_else(tmp_path: Path) -> None:
    plain = simulate(tmp_path, "a").splitlines()
    drill = simulate(tmp_path, "b", "--drill").splitlines()
    assert len(plain) == len(drill)
    readings = [line for line in drill if b'/up"' in line]
    assert readings and all(b'\\"drill\\": true' in line for line in readings)
    statuses = [line for line in drill if b'/status"' in line]
    assert statuses and all(b"drill" not in line for line in statuses)


@pytest.mark.parametrize("name", sorted(p.name for p in SCENARIOS.glob("*.yaml")))
def test_every_shipped_scenario_loads(name: str) -> None:
    loaded = load_scenario(SCENARIOS / name)
    assert loaded.scenario.events, f"{name} has an empty timeline"
