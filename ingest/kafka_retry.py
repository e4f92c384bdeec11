"""Waiting for Kafka: start a client while the broker is away, sleep unless stopped.

The bridge's producer and the alerter's consumers both start on a machine where Kafka may
not answer yet (a host booting, a broker restarting). They wait for it, saying so in plain
words, backing off from ``retry_min_s`` doubling to ``retry_max_s``, and give up only when
asked to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


class KafkaClient(Protocol):
    """What starting needs of an aiokafka producer or consumer."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


C = TypeVar("C", bound=KafkaClient)


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def start_when_kafka_answers(
    make: Callable[[], C],
    stop: asyncio.Event,
    kafka: str,
    retry_min_s: float,
    retry_max_s: float,
) -> C | None:
    """A client made by ``make`` and started; while Kafka at ``kafka`` does not answer, log
    it and try a new one after a doubling pause. ``None`` when stopped first."""
    delay = retry_min_s
    while not stop.is_set():
        client = make()
        try:
            await client.start()
        except KafkaError as exc:
            await client.stop()
            log.warning(
                "Kafka at %s does not answer (%s); trying again in %.1f s", kafka, exc, delay
            )
            await sleep_unless(stop, delay)
            delay = min(delay * 2, retry_max_s)
            continue
        return client
    return None
