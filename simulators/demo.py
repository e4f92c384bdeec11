"""The built-in demo scenario: quiet plant and street, then a restaurant gas leak and a tank
overfill, each rising through the alarm levels and coming back, plus one faulty device.

``DemoScenario.readings_at(t)`` is a pure function of the scenario time, so the same seed and
times always give the same payloads, whatever speed the demo runs at.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass

LENGTH_S = 45.0
"""Scenario length in simulated seconds; the demo loops it with ``--forever``."""

LEAK_START_S, LEAK_PEAK, LEAK_TAU_S, VENT_AT_S, VENT_TAU_S = 6.0, 62.0, 10.0, 34.0, 2.5
FILL_START_S, FILL_RATE, VALVE_CLOSE_S, PUMP_RATE = 4.0, 0.3, 30.0, 0.5
FAULT_AT_S = 18.0
CLOUD_START_S, CLOUD_PEAK, CLOUD_END_S = 14.0, 31.0, 36.0
"""A small release drifting over two neighbouring detectors: a plume, not a leak at one."""


@dataclass(frozen=True, slots=True)
class DemoChannel:
    """One measured quantity of a device: plain data taken from the registry by the caller."""

    sensor_id: str
    channel: str | None
    kind: str
    unit: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class DemoDevice:
    """A device publishing on ``ew/v1/{enterprise}/{site}/{device}/up``."""

    enterprise: str
    site: str
    device: str
    channels: tuple[DemoChannel, ...]

    @property
    def topic(self) -> str:
        """Its readings topic."""
        return f"ew/v1/{self.enterprise}/{self.site}/{self.device}/up"


@dataclass(frozen=True, slots=True)
class Publication:
    """What a device publishes at one instant."""

    topic: str
    payload: bytes
    device: DemoDevice
    values: dict[str, float]


_BASELINE = {
    "combustible_gas": (0.02, 0.015),
    "toxic_gas": (0.03, 0.02),
    "oxygen": (0.52, 0.01),
    "tank_level": (0.55, 0.002),
    "temperature": (0.30, 0.01),
    "pressure": (0.45, 0.01),
    "flow": (0.40, 0.02),
    "rainfall": (0.0, 0.0),
    "water_level": (0.35, 0.002),
}
"""Normal value and noise per kind, as fractions of the instrument range."""


class DemoScenario:
    """Readings of every device at any scenario time, with a leak and an overfill in them."""

    def __init__(
        self,
        devices: list[DemoDevice],
        leak: tuple[str, str, str],
        overfill: tuple[str, str, str],
        seed: int = 7,
        cloud: tuple[tuple[str, str, str], ...] = (),
    ) -> None:
        self.devices = devices
        self.leak = leak
        self.overfill = overfill
        self.seed = seed
        self.cloud = cloud

    def value(self, device: DemoDevice, ch: DemoChannel, t_s: float) -> float:
        """The physical value of one channel at scenario time ``t_s``."""
        key = (device.enterprise, device.site, ch.sensor_id)
        span = ch.high - ch.low
        rng = random.Random(f"{self.seed}:{key}:{round(t_s * 1000)}")
        base, noise = _BASELINE.get(ch.kind, (0.3, 0.01))
        value = ch.low + span * (base + noise * rng.uniform(-1.0, 1.0))
        if key == self.leak and t_s >= LEAK_START_S:
            rise = LEAK_PEAK * (1.0 - math.exp(-(min(t_s, VENT_AT_S) - LEAK_START_S) / LEAK_TAU_S))
            if t_s > VENT_AT_S:
                rise *= math.exp(-(t_s - VENT_AT_S) / VENT_TAU_S)
            value += rise
        if key in self.cloud and CLOUD_START_S <= t_s <= CLOUD_END_S:
            # A gentle bell: up to CLOUD_PEAK %LEL at mid-window, back to background by the end.
            phase = (t_s - CLOUD_START_S) / (CLOUD_END_S - CLOUD_START_S)
            value += CLOUD_PEAK * math.sin(math.pi * phase)
        if key == self.overfill and t_s >= FILL_START_S:
            risen = FILL_RATE * (min(t_s, VALVE_CLOSE_S) - FILL_START_S)
            if t_s > VALVE_CLOSE_S:
                risen -= PUMP_RATE * (t_s - VALVE_CLOSE_S)
            value += max(risen, 0.0)
        return round(min(max(value, ch.low), ch.high), 3)

    def readings_at(self, t_s: float, ts_ms: int) -> list[Publication]:
        """What every device publishes at scenario time ``t_s``, stamped ``ts_ms``."""
        out: list[Publication] = []
        for device in self.devices:
            values = {ch.channel or "v": self.value(device, ch, t_s) for ch in device.channels}
            if len(device.channels) == 1 and device.channels[0].channel is None:
                doc: dict[str, object] = {"ts": ts_ms, "v": values["v"]}
            else:
                doc = {"ts": ts_ms, "values": values}
            out.append(Publication(device.topic, json.dumps(doc).encode(), device, values))
        return out

    def faults_at(self, t_s: float, previous_t_s: float, ts_ms: int) -> list[tuple[str, bytes]]:
        """Bad messages a faulty device sends (once, when ``FAULT_AT_S`` is passed)."""
        if not previous_t_s < FAULT_AT_S <= t_s or not self.devices:
            return []
        device = self.devices[-1]
        return [
            (device.topic, json.dumps({"ts": ts_ms, "v": "ERR"}).encode()),
            (device.topic, b"\x00\x17garbled frame"),
        ]
