"""A bounded hand-over from paho's network thread to the asyncio event loop.

When the loop falls behind, :meth:`Handoff.put` blocks the network thread instead of dropping
the message. paho then stops reading the socket, the broker holds the unacknowledged QoS 1
messages of our persistent session, and nothing is lost. Every time this happens it is counted
(``backpressure``) so it is visible, never silent.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """Bounded queue: any thread puts (blocking when full), one asyncio task takes batches."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        if capacity < 1:
            msg = "handoff capacity must be at least 1"
            raise ValueError(msg)
        self.capacity = capacity
        self._loop = loop
        self._items: deque[T] = deque()
        self._space = threading.Semaphore(capacity)
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.backpressure = 0
        self.blocked_s = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> bool:
        """Add ``item``; block while full. Returns ``False`` only if closed while waiting.

        Runs in the producer thread (paho's network thread).
        """
        if not self._space.acquire(blocking=False):
            self.backpressure += 1
            started = time.monotonic()
            while not self._space.acquire(timeout=0.2):
                if self._closed:
                    return False
            self.blocked_s += time.monotonic() - started
        with self._lock:
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)
        return True

    async def get_batch(self, max_items: int) -> list[T]:
        """Wait for at least one item; return up to ``max_items`` in arrival order.

        Runs on the event loop. Returns an empty list once closed and drained.
        """
        while True:
            with self._lock:
                if self._items:
                    count = min(len(self._items), max_items)
                    batch = [self._items.popleft() for _ in range(count)]
                    break
                if self._closed:
                    return []
                waiter: asyncio.Future[None] = self._loop.create_future()
                self._waiter = waiter
            await waiter
        self._space.release(len(batch))
        return batch

    def close(self) -> None:
        """Stop accepting; wake the consumer so it can drain and finish."""
        with self._lock:
            self._closed = True
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
