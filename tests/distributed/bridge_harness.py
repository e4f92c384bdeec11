"""What the bridge tests share: a bridge subprocess, a fast QoS 1 publisher, a Kafka reader.

The bridge runs as ``python -m earlywarn.cli bridge`` so a test can SIGKILL it like a crash.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaConsumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` every 50 ms until true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout_s} s waiting for {what}"
            raise AssertionError(msg)
        time.sleep(0.05)


class ChildProcess:
    """An earlywarn command in a child process, its stdout and stderr in files."""

    err: Path
    proc: subprocess.Popen[bytes] | None

    def log(self) -> str:
        """Everything it logged so far (all its runs)."""
        return self.err.read_text(errors="replace") if self.err.exists() else ""

    def exited(self) -> bool:
        """True once the process has ended."""
        return self.proc is not None and self.proc.poll() is not None

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed, nothing acknowledged or committed afterwards."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def close(self) -> None:
        """Kill if still running (test clean-up)."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


class BridgeProcess(ChildProcess):
    """``earlywarn bridge`` in a child process, its stdout and stderr in files."""

    def __init__(
        self,
        workdir: Path,
        mqtt_url: str,
        kafka: str,
        client_id: str,
        group: str = "bridges",
        kafka_timeout_s: float = 3.0,
    ) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "earlywarn.cli",
            "bridge",
            "--mqtt",
            mqtt_url,
            "--kafka",
            kafka,
            "--client-id",
            client_id,
            "--share-group",
            group,
            "--kafka-timeout",
            str(kafka_timeout_s),
        ]
        workdir.mkdir(parents=True, exist_ok=True)
        self.out = workdir / f"{client_id}.out"
        self.err = workdir / f"{client_id}.err"
        self.proc: subprocess.Popen[bytes] | None = None
        self.subscribes_seen = 0

    def start(self, timeout_s: float = 30.0) -> None:
        """Start and wait until the shared subscription is in place (messages published
        before that would have no subscriber and be dropped by the broker)."""
        before = self.log().count("subscribed to")
        with self.out.open("ab") as out, self.err.open("ab") as err:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err)
        wait_until(
            lambda: self.log().count("subscribed to") > before or self.exited(),
            timeout_s,
            "the bridge to subscribe",
        )
        assert not self.exited(), f"bridge exited at start:\n{self.log()[-3000:]}"

    def stop(self, timeout_s: float = 30.0) -> dict[str, int]:
        """SIGTERM, wait, and return the counters it printed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        self.proc = None
        assert code == 0, f"bridge exit {code}:\n{self.log()[-3000:]}"
        return parse_counters(self.out.read_text())


def parse_counters(text: str) -> dict[str, int]:
    """The last counters block the bridge printed on stdout, by name."""
    block = text.rsplit("earlywarn bridge stopped", 1)[-1]
    found: dict[str, int] = {}
    for line in block.strip().splitlines():
        name, _, value = line.strip().rpartition(" ")
        found[name.strip()] = int(value)
    return found


class Publisher:
    """A QoS 1 MQTT client that publishes many messages and waits for every PUBACK."""

    def __init__(self, port: int, client_id: str = "devices") -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish_all(self, messages: Sequence[tuple[str, bytes]], timeout_s: float = 60.0) -> None:
        """Publish in order; return when the broker has acknowledged all of them."""
        infos = [self.client.publish(topic, payload, qos=1) for topic, payload in messages]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published(), "the broker did not acknowledge a publish in time"

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def readings(sensors: int, per_sensor: int, start: int = 0) -> list[tuple[str, bytes]]:
    """``per_sensor`` numbered readings for each sensor, interleaved as devices would send."""
    out = []
    for seq in range(start, start + per_sensor):
        for s in range(sensors):
            body = {"ts": 1_795_284_000_000 + seq * 1000, "v": seq * 0.5, "seq": seq, "s": s}
            out.append((f"ew/v1/acme/plant-1/s{s}/up", json.dumps(body).encode()))
    return out


@dataclass(frozen=True)
class Record:
    """A record read back from Kafka."""

    key: str
    value: bytes
    headers: dict[str, bytes]
    partition: int
    offset: int

    @property
    def seq(self) -> int:
        """The reading's number (test payloads carry one)."""
        seq: int = json.loads(self.value)["seq"]
        return seq

    @property
    def sensor(self) -> str:
        """The sensor uid, from the MQTT topic header (the key is the site)."""
        return sensor_uid(self.headers["ew-topic"].decode())


def kafka_count(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds now (0 when it does not exist yet), counted by reading
    them: tansu's end offsets are not a count (see ``test_tansu.py``)."""
    return len(read_all(bootstrap, topic))


def end_offsets_sum(bootstrap: str, topic: str) -> int:
    """The sum of the end offsets of ``topic``'s partitions, as the broker reports them."""
    return asyncio.run(_end_offsets_sum(bootstrap, topic))


async def _end_offsets_sum(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer.topics()  # refresh metadata once: the topic may be new
            parts = consumer.partitions_for_topic(topic)
        if not parts:
            return 0
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        await consumer.stop()


def read_all(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Record]:
    """Every record of ``topic`` from the beginning to its current end.

    Reads on until each partition's position passes the reported end offset; fetches return
    whole batches, so the records tansu leaves out of its end offset come with them."""
    return asyncio.run(_read_all(bootstrap, topic, timeout_s))


async def _read_all(bootstrap: str, topic: str, timeout_s: float) -> list[Record]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=5000
    )
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            return []
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "could not read the topic to its end in time"
            batch = await consumer.getmany(timeout_ms=500)
            for tp, items in batch.items():
                records.extend(
                    Record(
                        m.key.decode() if m.key else "",
                        m.value or b"",
                        {k: bytes(v) for k, v in m.headers},
                        tp.partition,
                        m.offset,
                    )
                    for m in items
                )
        return records
    finally:
        await consumer.stop()


def sensor_uid(topic: str) -> str:
    """``acme/plant-1/s3`` of ``ew/v1/acme/plant-1/s3/up``."""
    return "/".join(topic.split("/")[2:5])


def published(messages: Sequence[tuple[str, bytes]]) -> set[tuple[str, int]]:
    """(sensor, reading number) of every test reading published."""
    return {(sensor_uid(t), int(json.loads(p)["seq"])) for t, p in messages}


def copies(records: Sequence[Record]) -> Counter[tuple[str, int]]:
    """How many times each (sensor, reading number) is in Kafka."""
    return Counter((r.sensor, r.seq) for r in records)


def out_of_order(records: Sequence[Record]) -> int:
    """Readings that arrived after a later reading of the same sensor (partition order)."""
    last: dict[str, int] = {}
    late = 0
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        if r.seq < last.get(r.sensor, -1):
            late += 1
        last[r.sensor] = max(last.get(r.sensor, -1), r.seq)
    return late
