"""The bounded hand-off: a full queue makes the producer wait (counted), nothing is dropped."""

from __future__ import annotations

import asyncio
import threading

from ingest.handoff import Handoff


def test_a_slow_consumer_gets_everything_in_order_and_backpressure_is_counted() -> None:
    async def main() -> tuple[list[int], int]:
        handoff: Handoff[int] = Handoff(asyncio.get_running_loop(), capacity=8)

        def produce() -> None:
            for i in range(2000):
                assert handoff.put(i)

        producer = threading.Thread(target=produce)
        producer.start()
        got: list[int] = []
        while len(got) < 2000:
            got.extend(await handoff.get_batch(5))
            await asyncio.sleep(0.0005)  # a consumer slower than the producer
        producer.join(5)
        assert len(handoff) == 0
        return got, handoff.backpressure

    got, waits = asyncio.run(main())
    assert got == list(range(2000))
    assert waits > 0


def test_close_wakes_the_consumer_and_releases_a_blocked_producer() -> None:
    async def main() -> tuple[list[int], bool | None]:
        handoff: Handoff[int] = Handoff(asyncio.get_running_loop(), capacity=1)
        handoff.put(1)
        result: list[bool] = []
        blocked = threading.Thread(target=lambda: result.append(handoff.put(2)))
        blocked.start()
        await asyncio.sleep(0.05)
        handoff.close()
        await asyncio.to_thread(blocked.join, 5)
        drained = await handoff.get_batch(10)
        assert await handoff.get_batch(10) == []
        return drained, result[0] if result else None

    drained, put_result = asyncio.run(main())
    assert drained == [1]
    assert put_result is False, "a put refused at close is reported, so it is not acknowledged"
