"""Through a real Mosquitto: devices publish with their own ids and wills; record and replay
give back exactly what was sent."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from earlywarn.cli import main
from simulators.engine import Simulation
from simulators.messages import LogWriter, Message, read_log
from simulators.mqtt_out import Broker, DevicePublisher
from simulators.recorder import Recorder
from simulators.scenario import Offline, Window
from tests.services.mosquitto import Mosquitto
from tests.simulators.scenarios import START, gas_device, scenario

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


class Capture:
    """A recorder running in a thread until stopped."""

    def __init__(self, broker: Mosquitto, out: Path, topics: tuple[str, ...] | None = None):
        self.out = out
        self.file = out.open("w", encoding="utf-8")
        kwargs = {"topics": topics} if topics else {}
        self.recorder = Recorder(
            Broker("127.0.0.1", broker.port), client_id=f"rec-{out.stem}", **kwargs
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self.recorder.run, args=(LogWriter(self.file, "record"), self.stop)
        )
        self.thread.start()
        assert self.recorder.ready.wait(10)

    def messages(self, count: int) -> list[Message]:
        deadline = threading.Event()
        for _ in range(200):
            self.file.flush()
            found = list(read_log(self.out))
            if len(found) >= count:
                break
            deadline.wait(0.05)
        self.stop.set()
        self.thread.join(10)
        self.file.close()
        return list(read_log(self.out))


def by_topic(messages: list[Message]) -> dict[str, list[tuple[bytes, bool]]]:
    """Each topic's messages in order. MQTT keeps the order of one connection; devices have
    a connection each, so their interleaving is the network's business."""
    out: dict[str, list[tuple[bytes, bool]]] = {}
    for m in messages:
        out.setdefault(m.topic, []).append((m.payload, m.retain))
    return out


def small_run() -> list[Message]:
    devices = (gas_device("e/s/G1"), gas_device("e/s/G2"))
    outage = Offline(Window(START + 5 * 60_000, START + 8 * 60_000), ("e/s/G2",))
    return list(Simulation(scenario(devices, (outage,), hours=0.25)).messages())


def test_devices_publish_with_their_own_ids_and_the_broker_sends_the_last_will(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    sent = small_run()
    capture = Capture(mosquitto, tmp_path / "rec.jsonl")
    publisher = DevicePublisher(Broker("127.0.0.1", mosquitto.port))
    for message in sent:
        publisher.send(message)
    assert publisher.close() == 0
    got = capture.messages(len(sent))
    assert by_topic(got) == by_topic(sent)
    will = [m for m in got if m.payload == b"offline"]
    assert len(will) == 1 and will[0].retain and will[0].topic == "ew/v1/e/s/G2/status"
    backfill = [m for m in got if m.payload.startswith(b"[")]
    assert len(backfill) == 1 and len(json.loads(backfill[0].payload)) > 30
    assert {m.client for m in sent if m.client} == {"sim-e.s.G1", "sim-e.s.G2"}


def test_record_then_replay_gives_back_the_same_messages(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    simulated = tmp_path / "sim.jsonl"
    assert (
        main(
            [
                "simulate",
                str(SCENARIOS / "restaurant-gas-leak-night.yaml"),
                "--out",
                str(simulated),
                "--quiet",
            ]
        )
        == 0
    )
    first = tmp_path / "first.jsonl"
    only_r03 = ("ew/v1/laojie-restaurants/r-03/+/up", "ew/v1/laojie-restaurants/r-03/+/status")
    capture = Capture(mosquitto, first, only_r03)
    subset = tmp_path / "subset.jsonl"
    wanted = [m for m in read_log(simulated) if "/r-03/" in m.topic][:400]
    with subset.open("w", encoding="utf-8") as f:
        write = LogWriter(f, "test")
        for m in wanted:
            write(m)
    assert main(["replay", str(subset), "--mqtt", mosquitto.url, "--quiet"]) == 0
    recorded = capture.messages(len(wanted))
    assert by_topic(recorded) == by_topic(wanted)

    # The first replay left the devices' statuses retained: clear them, or the next
    # subscriber would get them twice (once retained, once replayed).
    cleaner = DevicePublisher(Broker("127.0.0.1", mosquitto.port), prefix="cleaner-")
    for topic in {m.topic for m in recorded if m.topic.endswith("/status")}:
        cleaner.send(Message(0, topic, b"", retain=True, client="cleaner"))
    assert cleaner.close() == 0
    second = tmp_path / "second.jsonl"
    capture = Capture(mosquitto, second, only_r03)
    assert main(["replay", str(first), "--mqtt", mosquitto.url, "--quiet"]) == 0
    again = capture.messages(len(recorded))
    assert by_topic(again) == by_topic(recorded)


def test_simulate_over_mqtt_at_speed_publishes_what_the_file_holds(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    sent = small_run()
    log = tmp_path / "sim.jsonl"
    with log.open("w", encoding="utf-8") as f:
        write = LogWriter(f, "simulate")
        for m in sent:
            write(m)
    capture = Capture(mosquitto, tmp_path / "rec.jsonl")
    # 15 minutes at speed 900: one second of real time, paced.
    assert (
        main(["replay", str(log), "--mqtt", mosquitto.url, "--speed", "900", "--drill", "--quiet"])
        == 0
    )
    got = capture.messages(len(sent))
    readings = [m for m in got if m.topic.endswith("/up")]
    assert readings and all(b'"drill": true' in m.payload for m in readings)
    span_real = (got[-1].t_ms - got[0].t_ms) / 1000
    span_sim = (sent[-1].t_ms - sent[0].t_ms) / 1000
    assert span_sim / 900 * 0.8 < span_real < span_sim / 900 + 2.0


def test_simulate_publishes_over_mqtt_shifted_to_now_and_marked_as_a_drill(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    scenario_file = str(SCENARIOS / "restaurant-gas-leak-night.yaml")
    reference = tmp_path / "reference.jsonl"
    assert main(["simulate", scenario_file, "--out", str(reference), "--quiet"]) == 0
    expected = [m for m in read_log(reference) if "/r-03/" in m.topic]
    only_r03 = ("ew/v1/laojie-restaurants/r-03/+/up", "ew/v1/laojie-restaurants/r-03/+/status")
    capture = Capture(mosquitto, tmp_path / "rec.jsonl", only_r03)
    began = time.time_ns() // 1_000_000
    code = main(
        [
            "simulate",
            scenario_file,
            "--mqtt",
            mosquitto.url,
            "--speed",
            "3000",
            "--shift-to-now",
            "--drill",
            "--quiet",
        ]
    )
    assert code == 0
    got = capture.messages(len(expected))
    assert len(got) == len(expected)
    assert {m.topic for m in got} == {m.topic for m in expected}
    readings = [json.loads(m.payload) for m in got if m.topic.endswith("/up")]
    flat = [r for doc in readings for r in (doc if isinstance(doc, list) else [doc])]
    assert all(r["drill"] is True for r in flat)
    # Shifted: the 90 minutes end about now, never ahead of the clock they arrived by.
    assert max(r["ts"] for r in flat) <= max(m.t_ms for m in got) + 1000
    assert min(r["ts"] for r in flat) < began - 80 * 60_000
