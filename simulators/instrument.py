"""The instrument between the physics and the payload: noise, zero drift, range, resolution
and faults.

A real transmitter never reports the true value: it adds noise, its zero wanders slowly
(catalytic and electrochemical gas cells drift between calibrations), it saturates at the
ends of its range (a detector at full scale shows full scale, however much gas there is),
and it rounds to its resolution. Faults replace what it reports: ``stuck`` freezes the last
good value, ``spike`` shows a wild value once (or at random), ``drift`` adds an offset that
grows by the hour; ``dropout`` loses whole messages and is decided by the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulators.scenario import ChannelSpec, Fault

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Grade:
    """Noise (standard deviation) and zero drift (per √day) as fractions of the span, and
    the decimals reported."""

    noise: float
    drift: float
    decimals: int


GRADES: dict[str, Grade] = {
    "combustible_gas": Grade(0.002, 0.002, 1),
    "toxic_gas": Grade(0.002, 0.002, 1),
    "oxygen": Grade(0.002, 0.0, 2),
    "tank_level": Grade(0.0001, 0.0, 3),
    "temperature": Grade(0.0005, 0.0, 1),
    "pressure": Grade(0.001, 0.0, 1),
    "flow": Grade(0.005, 0.0, 2),
    "rainfall": Grade(0.0, 0.0, 1),
    "water_level": Grade(0.0003, 0.0, 3),
}
"""Per sensor kind; a kind not listed gets :data:`DEFAULT_GRADE`."""

DEFAULT_GRADE = Grade(0.002, 0.0, 2)


class Instrument:
    """One channel's transmitter."""

    def __init__(
        self,
        channel: ChannelSpec,
        rng: np.random.Generator,
        faults: Sequence[Fault],
        start_ms: int,
    ) -> None:
        self.channel = channel
        self.grade = GRADES.get(channel.kind, DEFAULT_GRADE)
        self.span = channel.high - channel.low
        self.rng = rng
        self.faults = tuple(f for f in faults if f.sensor == channel.uid)
        self.zero = 0.0
        self.t_ms = start_ms
        self.last: float | None = None
        self._frozen: dict[int, float] = {}
        self._spiked: set[int] = set()

    def dropped(self, t_ms: int, rng: np.random.Generator) -> bool:
        """Whether a dropout fault loses the message at ``t_ms``."""
        for f in self.faults:
            if f.type == "dropout" and f.window.contains(t_ms):
                p = 0.5 if f.probability is None else f.probability
                if rng.random() < p:
                    return True
        return False

    def measure(self, t_ms: int, true_value: float) -> float:
        """What the transmitter reports at ``t_ms`` for the physical ``true_value``."""
        g = self.grade
        if g.drift > 0.0 and t_ms > self.t_ms:
            days = (t_ms - self.t_ms) / DAY_MS
            self.zero += float(self.rng.normal(0.0, g.drift * self.span * math.sqrt(days)))
        self.t_ms = max(self.t_ms, t_ms)
        value = true_value + self.zero
        if g.noise > 0.0:
            value += float(self.rng.normal(0.0, g.noise * self.span))
        for i, f in enumerate(self.faults):
            if f.window.contains(t_ms):
                value = self._fault(i, f, t_ms, value)
            else:
                self._frozen.pop(i, None)
        value = min(max(value, self.channel.low), self.channel.high)
        value = round(value, g.decimals) + 0.0  # + 0.0: never "-0.0" in a payload
        if not any(f.type == "stuck" and f.window.contains(t_ms) for f in self.faults):
            self.last = value
        return value

    def _fault(self, index: int, fault: Fault, t_ms: int, value: float) -> float:
        if fault.type == "stuck":
            if index not in self._frozen:
                self._frozen[index] = self.last if self.last is not None else value
            return self._frozen[index]
        if fault.type == "drift":
            return value + fault.rate_per_h * (t_ms - fault.window.start_ms) / 3_600_000
        if fault.type == "spike":
            shown = fault.value if fault.value is not None else self.channel.high
            if fault.probability is None:
                if index not in self._spiked:
                    self._spiked.add(index)
                    return shown
            elif self.rng.random() < fault.probability:
                return shown
        return value
