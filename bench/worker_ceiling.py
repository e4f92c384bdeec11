"""The ceiling of a worker's own work, fed in bulk by a bare aiokafka consumer: what is left of
Faust's cost in ``earlywarn worker``.

A benchmark that prints figures; it asserts nothing. The same pre-loaded ``ew.readings`` as
``bench/distributed.py`` (its record builder, sites and values), and the same work per batch
as ``earlywarn worker`` (:class:`~earlywarn.worker_core.WorkerCore`: decode, rules, zones;
alarm events to ``ew.alarms`` and the changed states to the sensor changelog, each waited
for; then the commit), the records coming from aiokafka's ``getmany`` (up to ``--batch`` at
once) on every partition. Not a runner: no group, no rebalancing, no recovery, no offline
ticks. The worker reads ``ew.readings`` a fetch at a time too (:mod:`earlywarn.worker_consumer`);
this says what Faust's group, tables and consumer thread still cost it (when the worker read
record by record through a Faust stream, this ran 6.4 times as fast as the worker).

Run ``.venv/bin/python bench/worker_ceiling.py`` (``--readings``, ``--batch``); compare
with ``bench/distributed.py --only throughput`` on the same readings, right after it."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path[:1]:
    sys.path.insert(0, str(ROOT))  # before bench/, whose rules.py would shadow the package

from alerting.alarm_records import ALARMS_TOPIC, alarm_key, alarm_value  # noqa: E402
from bench.distributed import _preload, parse, throughput_messages  # noqa: E402
from earlywarn.clock import SystemClock  # noqa: E402
from earlywarn.registry import load_registry  # noqa: E402
from earlywarn.worker_app import to_inbound  # noqa: E402
from earlywarn.worker_core import WorkerCore  # noqa: E402
from ingest.kafka_records import READINGS_TOPIC  # noqa: E402
from tests.distributed.worker_harness import create_topics, write_registry  # noqa: E402
from tests.services.tansu import Tansu  # noqa: E402

CHANGELOG = "earlywarn-sensor-state-changelog"


async def _work(bootstrap: str, registry: Path, readings: int, partitions: int, batch: int) -> None:
    core = WorkerCore(load_registry(registry), SystemClock(), partitions)
    core.load(set(range(partitions)), lambda _uid: None, lambda _uid: None)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id="worker-ceiling",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=4 << 20,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await consumer.start()
    await producer.start()
    try:
        parts = [TopicPartition(READINGS_TOPIC, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        done = 0
        start = time.monotonic()
        while done < readings:
            got = await consumer.getmany(timeout_ms=200, max_records=batch)
            messages = [to_inbound(m, 0) for records in got.values() for m in records]
            if not messages:
                continue
            done += len(messages)
            out = core.handle(messages)
            sent = [
                await producer.send(ALARMS_TOPIC, alarm_value(e), key=alarm_key(e))
                for e in out.alarms
            ]
            if sent:
                await asyncio.gather(*sent)
            saved = [
                await producer.send(
                    CHANGELOG, core.sensor_value(uid), key=uid.encode(), partition=p
                )
                for uid, p in out.sensors.items()
            ]
            if saved:
                await asyncio.gather(*saved)
            await consumer.commit()
        seconds = time.monotonic() - start
        events = sum(core.counters.alarms.values())
        print(
            f"bulk (getmany, --batch {batch}): {done:,} readings in {seconds:.1f} s = "
            f"{done / seconds:,.0f} readings/s; {events:,} alarm events",
            flush=True,
        )
    finally:
        await consumer.stop()
        await producer.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Pre-load a fresh tansu, then time the bulk loop over every record."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--readings", type=int, default=120_000)
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args(argv)
    opts = parse(["--quick", "--readings", str(args.readings)])
    with tempfile.TemporaryDirectory(prefix="ew-ceiling-") as tmp:
        broker = Tansu(Path(tmp) / "tansu")
        broker.start()
        try:
            registry = write_registry(Path(tmp) / "registry", opts.sites, opts.detectors)
            create_topics(
                broker.bootstrap, opts.partitions, (READINGS_TOPIC, ALARMS_TOPIC, CHANGELOG)
            )
            per_sensor = -(-opts.readings // (opts.sites * opts.detectors))
            base_ms = int(time.time() * 1000) - (per_sensor + 120) * 1000
            asyncio.run(_preload(broker.bootstrap, throughput_messages(opts, base_ms)))
            print(
                f"{opts.readings:,} readings pre-loaded, {opts.sites}x{opts.detectors} "
                f"detectors, {opts.partitions} partitions",
                flush=True,
            )
            asyncio.run(
                _work(broker.bootstrap, registry, opts.readings, opts.partitions, args.batch)
            )
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
