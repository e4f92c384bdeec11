"""Device behaviour on the wire: jitter, clock skew, outages, last wills and back-fills."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

from simulators.engine import Simulation
from simulators.scenario import Fault, Offline, Window
from tests.simulators.scenarios import START, gas_device, scenario

MINUTE = 60_000


def test_an_outage_sends_the_will_then_online_and_the_newest_buffered_readings() -> None:
    device = replace(gas_device(), buffer=10, keepalive_s=20)
    outage = Offline(Window(START + 10 * MINUTE, START + 20 * MINUTE), (device.key,))
    messages = list(Simulation(scenario((device,), (outage,), hours=0.5)).messages())
    statuses = [(m.t_ms - START, m.payload, m.will) for m in messages if "/status" in m.topic]
    assert statuses == [
        (0, b"online", False),
        (10 * MINUTE + 30_000, b"offline", True),  # the broker notices after 1.5 × keep-alive
        (20 * MINUTE, b"online", False),
    ]
    readings = [m for m in messages if m.topic.endswith("/up")]
    during = [m for m in readings if START + 10 * MINUTE <= m.t_ms < START + 20 * MINUTE]
    (backfill,) = [m for m in readings if m.payload.startswith(b"[")]
    assert backfill.t_ms == START + 20 * MINUTE
    items = json.loads(backfill.payload)
    assert len(items) == 10  # the buffer kept the newest ten of about 120
    assert items[-1]["ts"] < START + 20 * MINUTE and items[0]["ts"] > START + 19 * MINUTE
    assert [i["ts"] for i in items] == sorted(i["ts"] for i in items)
    assert during == []  # nothing live while offline


def test_a_device_back_before_the_broker_noticed_still_has_its_will_published_first() -> None:
    device = replace(gas_device(), keepalive_s=60)
    outage = Offline(Window(START + 10 * MINUTE, START + 10 * MINUTE + 20_000), (device.key,))
    messages = list(Simulation(scenario((device,), (outage,), hours=0.25)).messages())
    statuses = [(m.t_ms - START, m.payload) for m in messages if "/status" in m.topic]
    back = 10 * MINUTE + 20_000
    assert statuses == [(0, b"online"), (back, b"offline"), (back, b"online")]


def test_reports_jitter_around_the_interval_and_carry_the_device_clock() -> None:
    device = replace(gas_device(interval_s=10), jitter=0.1, skew_s=40, drift_ppm=1000)
    messages = [
        m for m in Simulation(scenario((device,), hours=1)).messages() if m.topic.endswith("/up")
    ]
    gaps = [b.t_ms - a.t_ms for a, b in itertools.pairwise(messages)]
    assert min(gaps) >= 9_000 and max(gaps) <= 11_000 and len(set(gaps)) > 50
    last = messages[-1]
    ts = json.loads(last.payload)["ts"]
    expected = last.t_ms + 40_000 + round((last.t_ms - START) * 1000 / 1e6)
    assert abs(ts - expected) <= 1


def test_faults_freeze_drop_and_spike() -> None:
    uid = "e/s/G1"
    device = gas_device(uid)
    events = (
        Fault(Window(START + 10 * MINUTE, START + 20 * MINUTE), uid, "stuck"),
        Fault(Window(START + 30 * MINUTE, START + 40 * MINUTE), uid, "dropout", probability=1.0),
        Fault(Window(START + 45 * MINUTE), uid, "spike", value=99.0),
    )
    messages = [
        m for m in Simulation(scenario((device,), events, hours=1)).messages() if "/up" in m.topic
    ]

    def values(a: int, b: int) -> list[float]:
        return [
            json.loads(m.payload)["v"]
            for m in messages
            if START + a * MINUTE <= m.t_ms < START + b * MINUTE
        ]

    assert len(set(values(10, 20))) == 1 and len(set(values(0, 10))) > 1
    assert values(30, 40) == []
    assert values(45, 60).count(99.0) == 1
