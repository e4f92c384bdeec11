"""The simulation: every device's messages, in time order, from a scenario and its seed.

A heap of due happenings (connections, reports, outages, last wills) is worked through in
time order; physics is advanced lazily to each report's instant. Nothing here reads a clock
or sleeps: pacing against real time is :mod:`simulators.pacing`'s job, so the same scenario
gives byte-identical messages at any speed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from simulators.device import SimDevice
from simulators.messages import Message
from simulators.scenario import Offline, Scenario
from simulators.world import World

# Order of happenings at the same millisecond: a device connects before anything else, comes
# back before its next report, and a report due at the instant an outage starts is buffered.
_CONNECT, _BACK, _WILL, _DROP, _REPORT = range(5)


@dataclass(frozen=True, slots=True)
class Outage:
    """One outage of one device (for the last will: published only if still pending)."""

    device: int
    number: int


class Simulation:
    """Iterate :meth:`messages` once; ``world`` exposes the models for inspection."""

    def __init__(self, scenario: Scenario, *, drill: bool = False) -> None:
        self.scenario = scenario
        self.world = World(scenario, drill=drill)
        self.devices: list[SimDevice] = self.world.devices
        self._index = {d.spec.key: i for i, d in enumerate(self.devices)}
        self._outages = [0] * len(self.devices)
        self._will_pending = [False] * len(self.devices)

    def messages(self) -> Iterator[Message]:
        """Every message of the run, ordered by time (ties in a fixed order)."""
        heap: list[tuple[int, int, int, int, object]] = []
        seq = 0

        def push(t_ms: int, what: int, device: int, arg: object = None) -> None:
            nonlocal seq
            heapq.heappush(heap, (t_ms, what, seq, device, arg))
            seq += 1

        start, end = self.scenario.start_ms, self.scenario.end_ms
        for i, device in enumerate(self.devices):
            push(start, _CONNECT, i)
            push(device.first_report_ms(), _REPORT, i)
        for event in self.scenario.events:
            if isinstance(event, Offline):
                for key in event.devices:
                    i = self._index[key]
                    push(event.window.start_ms, _DROP, i, event)
                    if event.window.end_ms is not None:
                        push(event.window.end_ms, _BACK, i, event)
        while heap:
            t, what, _seq, i, arg = heapq.heappop(heap)
            if t >= end:
                break
            device = self.devices[i]
            if what == _CONNECT:
                yield device.online(t)
            elif what == _REPORT:
                message = device.report(t)
                if message is not None:
                    yield message
                push(device.next_report_ms(t), _REPORT, i)
            elif what == _DROP and isinstance(arg, Offline):
                if device.go_offline(arg.buffer):
                    self._outages[i] += 1
                    self._will_pending[i] = True
                    push(t + device.will_delay_ms, _WILL, i, Outage(i, self._outages[i]))
            elif what == _WILL and isinstance(arg, Outage):
                if self._will_pending[i] and arg.number == self._outages[i]:
                    self._will_pending[i] = False
                    yield device.will(t)
            elif what == _BACK:
                back = device.come_back(t)
                if back and self._will_pending[i]:
                    # Reconnecting before the broker noticed: taking over the old session
                    # closes it, and the broker publishes its will first.
                    self._will_pending[i] = False
                    yield device.will(t)
                yield from back
