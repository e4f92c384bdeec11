"""What the worker does with a batch when something goes wrong, without a broker: Kafka not
taking the results (sent again whole until it does), readings of a partition it does not own,
an evaluation that fails (neither is acknowledged; a failure stops the worker loudly).

The Faust app is built but not started. The seams are ours: ``Worker._send`` (the produce
calls of one attempt), ``Worker.sleep``, ``Worker.halt`` and the :class:`WorkerCore`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import ConsumerRecord

from earlywarn.clock import ManualClock
from earlywarn.registry import load_registry
from earlywarn.worker_app import SEND_RETRY_S, Worker, WorkerSettings
from earlywarn.worker_consumer import BatchNotTakenError
from earlywarn.worker_core import Outcome, partition_of
from ingest.kafka_records import record_for
from ingest.mqtt import Inbound
from tests.distributed.worker_harness import T0, reading, write_registry

PARTITIONS = 4


@pytest.fixture
def worker(tmp_path: Path) -> Worker:
    """A worker owning every partition, its Faust app not started."""
    path = write_registry(tmp_path / "registry", sites=2, detectors=2)
    settings = WorkerSettings(registry=path, partitions=PARTITIONS, data_dir=tmp_path / "data")
    made = Worker(settings, load_registry(path), ManualClock(T0))
    made.core.load(set(range(PARTITIONS)), lambda _uid: None, lambda _uid: None)
    return made


def consumer_record(message: tuple[str, bytes], offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    """The ``ew.readings`` record the bridge makes of an MQTT message, as a fetch gives it."""
    r = record_for(message[0], message[1], T0)
    assert r.key is not None
    return ConsumerRecord(
        r.topic,
        partition_of(r.key, PARTITIONS),
        offset,
        T0,
        0,
        r.key,
        r.value,
        None,
        len(r.key),
        len(r.value),
        list(r.headers),
    )


def test_a_batch_kafka_refuses_is_sent_again_whole_until_taken(worker: Worker) -> None:
    topic, payload = reading(1, 0, 1, 30.0)  # orange: raises an alarm
    out = worker.core.handle([Inbound(topic, payload, 0, 1, T0)])
    assert len(out.alarms) == 1 and out.sensors

    attempts: list[tuple[int, list[tuple[str, int, bytes, bytes]]]] = []
    pauses: list[float] = []

    async def send(outcome: Outcome, writes: Sequence[tuple[str, int, bytes, bytes]]) -> None:
        attempts.append((len(outcome.alarms), list(writes)))
        if len(attempts) <= 5:
            raise KafkaConnectionError("broker down")

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    worker._send = send  # type: ignore[method-assign]
    worker.sleep = pause
    asyncio.run(worker._save(out))

    assert len(attempts) == 6
    assert all(a == attempts[0] for a in attempts), "every attempt sends the same records"
    assert attempts[0][0] == 1 and attempts[0][1], "the alarm and the sensor's state"
    assert pauses == [*SEND_RETRY_S, SEND_RETRY_S[-1]]
    assert worker.stats["alarm events sent"] == 1


def test_readings_of_a_partition_not_owned_are_left_not_evaluated(worker: Worker) -> None:
    record = consumer_record(reading(1, 0, 1, 30.0))
    worker.core.load(set(range(PARTITIONS)) - {record.partition}, lambda _u: None, lambda _u: None)
    with pytest.raises(BatchNotTakenError, match="does not own"):
        asyncio.run(worker._evaluate([record]))
    assert worker.core.counters.snapshot()["readings"] == 0
    assert worker.fatal is None


def test_a_failing_evaluation_stops_the_worker_and_leaves_the_batch(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    halted: list[bool] = []
    worker.halt = lambda: halted.append(True)

    def broken(_messages: Sequence[Inbound]) -> Outcome:
        raise ZeroDivisionError("a defect")

    worker.core.handle = broken  # type: ignore[method-assign]
    with pytest.raises(BatchNotTakenError):
        asyncio.run(worker._evaluate([consumer_record(reading(1, 0, 1, 30.0))]))
    assert halted == [True]
    assert worker.fatal is not None and "ZeroDivisionError('a defect')" in worker.fatal
    assert "evaluating 1 readings failed" in caplog.text
    with pytest.raises(BatchNotTakenError, match="this worker is stopping"):
        asyncio.run(worker._evaluate([consumer_record(reading(1, 0, 2, 3.0), 1)]))
