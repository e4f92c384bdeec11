"""The worker's bulk consumer against a real Kafka-protocol broker (tansu): every record is
handed over once, in order; no offset is committed before its handler returned, nor past a
batch the handler refused, which it is handed again until it takes it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tests.distributed.bridge_harness import wait_until
from tests.distributed.bulk_app import GROUP
from tests.distributed.worker_harness import committed, create_topics
from tests.services.tansu import Tansu

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "t.bulk"
PARTITIONS = 2
FETCH = 50
"""Most records one fetch hands over (the app's ``broker_max_poll_records``)."""


def produce(bootstrap: str, count: int, start: int = 0) -> None:
    """``count`` records spread over the partitions by key."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            sent = [
                await producer.send(TOPIC, b"v", key=f"k{i % 7}".encode())
                for i in range(start, start + count)
            ]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(send())


@dataclass
class BulkAppProcess:
    """``tests/distributed/bulk_app.py`` in a child process, and the files that steer it."""

    tansu: Tansu
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "handed.log"

    @property
    def hold(self) -> Path:
        return self.workdir / "hold"

    @property
    def refuse(self) -> Path:
        return self.workdir / "refuse"

    @property
    def err(self) -> Path:
        return self.workdir / "app.err"

    def start(self) -> None:
        args = [self.tansu.bootstrap, TOPIC, str(PARTITIONS)]
        args += [str(self.log), str(self.hold), str(self.refuse)]
        with self.err.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.distributed.bulk_app", *args],
                cwd=ROOT,
                stdout=err,
                stderr=err,
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(60) == 0, self.err.read_text()[-3000:]
        self.proc = None

    def handed(self, since_refusal: bool = False) -> dict[int, list[int]]:
        """The offsets the handler was given, by partition, in the order given; only those
        after its last refusal if ``since_refusal``."""
        out: dict[int, list[int]] = {}
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        if since_refusal and "R" in lines:
            lines = lines[len(lines) - lines[::-1].index("R") :]
        for line in lines:
            if line != "R":
                partition, offset = map(int, line.split())
                out.setdefault(partition, []).append(offset)
        return out

    def refusals(self) -> int:
        return self.log.read_text().splitlines().count("R") if self.log.exists() else 0

    def wait_handed(self, total: int) -> dict[int, list[int]]:
        """Wait until the handler was given ``total`` records; return them by partition."""
        wait_until(lambda: sum(map(len, self.handed().values())) >= total, 60, f"{total} records")
        return self.handed()


@pytest.fixture
def app(tmp_path: Path, tansu: Tansu) -> Iterator[BulkAppProcess]:
    """The bulk app (not started) over a topic already holding 300 records."""
    create_topics(tansu.bootstrap, PARTITIONS, [TOPIC])
    produce(tansu.bootstrap, 300)
    made = BulkAppProcess(tansu, tmp_path)
    yield made
    if made.running():
        assert made.proc is not None
        made.proc.kill()
        made.proc.wait()


def in_order(handed: dict[int, list[int]]) -> dict[int, int]:
    """Check each partition's offsets came once each, in order, from 0; return the ends."""
    for partition, offsets in handed.items():
        assert offsets == list(range(len(offsets))), f"partition {partition}: {offsets}"
    return {p: len(offsets) for p, offsets in handed.items()}


def test_offsets_are_committed_only_after_the_handler_returned(app: BulkAppProcess) -> None:
    app.hold.touch()
    app.start()
    wait_until(lambda: bool(app.handed()), 60, "the first batch")
    time.sleep(1.5)  # several commit intervals (0.2 s) with the batch held
    assert app.running(), app.err.read_text()[-3000:]
    assert committed(app.tansu.bootstrap, GROUP, TOPIC) == {}, "committed a batch still held"
    assert sum(map(len, app.handed().values())) <= FETCH  # one fetch at a time, none ahead

    app.hold.unlink()
    ends = in_order(app.wait_handed(300))
    wait_until(lambda: committed(app.tansu.bootstrap, GROUP, TOPIC) == ends, 30, "the commits")
    produce(app.tansu.bootstrap, 100, start=300)
    ends = in_order(app.wait_handed(400))
    wait_until(lambda: committed(app.tansu.bootstrap, GROUP, TOPIC) == ends, 30, "the commits")
    app.stop()


def test_a_refused_batch_is_handed_again_and_never_committed_past(app: BulkAppProcess) -> None:
    app.refuse.touch()
    app.start()
    wait_until(lambda: app.refusals() >= 3, 60, "three refusals")
    handed = app.handed()
    assert committed(app.tansu.bootstrap, GROUP, TOPIC) == {}, "committed a refused batch"
    for partition, offsets in handed.items():  # each partition's first fetch, again
        assert max(offsets) < FETCH, f"partition {partition} read past its refused batch"
    assert "a fetched batch was left, to be fetched again: the test refuses it" in (
        app.err.read_text()
    )

    app.refuse.unlink()
    wait_until(
        lambda: sum(map(len, app.handed(since_refusal=True).values())) >= 300, 60, "the rest"
    )
    ends = in_order(app.handed(since_refusal=True))  # from 0: the refused batch came again
    wait_until(lambda: committed(app.tansu.bootstrap, GROUP, TOPIC) == ends, 30, "the commits")
    app.stop()
