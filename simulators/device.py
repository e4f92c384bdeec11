"""A device as the network sees it: when it reports, what its clock says, what it sends.

- **Interval with jitter**: each report follows the previous one after the interval times
  ``1 ± jitter`` (uniform), starting at a random phase: devices are never in step.
- **Clock**: the device stamps its own time, off by ``skew_s`` and running fast or slow by
  ``drift_ppm``; a device whose clock is over five minutes ahead gets its readings rejected as
  ``future_timestamp``, as a real one would.
- **Connection**: ``online`` is published (retained) on its status topic when it connects;
  when it drops off, the broker publishes its last will ``offline`` once the keep-alive
  expires (1.5 × keep-alive). It keeps measuring while offline and, back online, sends
  ``online`` and then everything it buffered as one JSON array (the newest ``buffer``
  readings; older ones are lost, as on a device whose memory filled up).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.instrument import Instrument
from simulators.messages import Message
from simulators.scenario import DeviceSpec

ONLINE, OFFLINE = b"online", b"offline"
MAX_BACKFILL = 5000
"""The contract's limit of readings in one back-fill array; longer buffers go in several."""


@dataclass(frozen=True, slots=True)
class Channel:
    """One measured quantity: the physics giving its true value, and its transmitter."""

    key: str
    true_value: Callable[[int], float]
    instrument: Instrument


class SimDevice:
    """Produces a device's messages; the simulation tells it when things happen."""

    def __init__(
        self,
        spec: DeviceSpec,
        channels: Sequence[Channel],
        start_ms: int,
        schedule_rng: np.random.Generator,
        fault_rng: np.random.Generator,
        *,
        drill: bool = False,
    ) -> None:
        self.spec = spec
        self.channels = tuple(channels)
        self.start_ms = start_ms
        self.schedule_rng = schedule_rng
        self.fault_rng = fault_rng
        self.drill = drill
        self.offline_depth = 0
        self.buffering = False
        self.buffer: list[dict[str, Any]] = []
        self.lost = 0
        self._interval_ms = spec.interval_s * 1000.0

    # -- timing ----------------------------------------------------------------------------

    def first_report_ms(self) -> int:
        """A random phase within the first interval."""
        return self.start_ms + round(float(self.schedule_rng.uniform(0.0, self._interval_ms)))

    def next_report_ms(self, t_ms: int) -> int:
        """When the report after the one at ``t_ms`` is due."""
        jitter = self.spec.jitter
        factor = 1.0 + float(self.schedule_rng.uniform(-jitter, jitter)) if jitter else 1.0
        return t_ms + max(1, round(self._interval_ms * factor))

    def device_ts(self, t_ms: int) -> int:
        """The device's own clock at true time ``t_ms``."""
        drift = self.spec.drift_ppm * (t_ms - self.start_ms) / 1e6
        return t_ms + round(self.spec.skew_s * 1000.0 + drift)

    @property
    def will_delay_ms(self) -> int:
        """How long the broker takes to notice a silent connection is dead."""
        return round(1.5 * self.spec.keepalive_s * 1000.0)

    # -- messages --------------------------------------------------------------------------

    def _doc(self, t_ms: int) -> dict[str, Any] | None:
        if any(c.instrument.dropped(t_ms, self.fault_rng) for c in self.channels):
            return None
        values = {c.key: c.instrument.measure(t_ms, c.true_value(t_ms)) for c in self.channels}
        doc: dict[str, Any] = {"ts": self.device_ts(t_ms)}
        if self.spec.single_value:
            doc["v"] = values["v"]
        else:
            doc["values"] = values
        if self.drill:
            doc["drill"] = True
        return doc

    def report(self, t_ms: int) -> Message | None:
        """The reading due at ``t_ms``: published, buffered while offline, or lost."""
        doc = self._doc(t_ms)
        if doc is None:
            return None
        if self.offline_depth == 0:
            return self._publish(t_ms, self.spec.topic, json.dumps(doc).encode())
        if self.buffering:
            self.buffer.append(doc)
            if len(self.buffer) > self.spec.buffer:
                self.buffer.pop(0)
                self.lost += 1
        return None

    def go_offline(self, buffer: bool) -> bool:
        """The connection drops; ``True`` when this is the start of an outage."""
        self.offline_depth += 1
        self.buffering = self.buffering or buffer
        return self.offline_depth == 1

    def come_back(self, t_ms: int) -> list[Message]:
        """An outage ends: ``online``, then the back-fill (when the last outage ended)."""
        self.offline_depth = max(self.offline_depth - 1, 0)
        if self.offline_depth:
            return []
        out = [self.online(t_ms)]
        buffered, self.buffer, self.buffering = self.buffer, [], False
        for i in range(0, len(buffered), MAX_BACKFILL):
            chunk = buffered[i : i + MAX_BACKFILL]
            out.append(self._publish(t_ms, self.spec.topic, json.dumps(chunk).encode()))
        return out

    def online(self, t_ms: int) -> Message:
        """The retained ``online`` status a device sends when it connects."""
        return self._publish(t_ms, self.spec.status_topic, ONLINE, retain=True)

    def will(self, t_ms: int) -> Message:
        """Its last will, which the broker publishes for it."""
        return Message(
            t_ms, self.spec.status_topic, OFFLINE, True, 1, self.spec.client_id, will=True
        )

    def _publish(self, t_ms: int, topic: str, payload: bytes, *, retain: bool = False) -> Message:
        return Message(t_ms, topic, payload, retain, 1, self.spec.client_id)
