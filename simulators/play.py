"""Sending a stream of messages (a simulation, a recording) on its way, paced and shown.

Shared by ``simulate`` and ``replay``: each message is transformed (drill mark, shift to the
present), held back by the :class:`Pacer` until due, handed to every sink (the MQTT
publisher, a log file) and counted on the progress line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from simulators.messages import Message
from simulators.pacing import Pacer
from simulators.progress import Progress

Sink = Callable[[Message], None]


@dataclass(frozen=True, slots=True)
class Played:
    """How a run went: messages sent, the last one's time, and whether it was cut short."""

    count: int
    last_ms: int | None
    interrupted: bool
    late_s: float


def play(
    messages: Iterable[Message],
    sinks: Sequence[Sink],
    *,
    pacer: Pacer | None = None,
    progress: Progress | None = None,
    transforms: Sequence[Callable[[Message], Message]] = (),
    stop: Callable[[], bool] = lambda: False,
) -> Played:
    """Send every message to every sink in order; stop early when ``stop()`` says so or the
    pacer's wait is interrupted."""
    count, last = 0, None
    interrupted = False
    for original in messages:
        if stop():
            interrupted = True
            break
        message = original
        for change in transforms:
            message = change(message)
        if pacer is not None and not pacer.wait_until(message.t_ms):
            interrupted = True
            break
        for sink in sinks:
            sink(message)
        count += 1
        last = message.t_ms
        if progress is not None:
            progress.update(message.t_ms, count)
    if progress is not None and last is not None:
        progress.done(last if interrupted else max(last, progress.end_ms), count)
    return Played(count, last, interrupted, pacer.late_s if pacer is not None else 0.0)
