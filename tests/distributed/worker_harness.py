"""What the worker tests share: a registry of many sites, a worker subprocess, Kafka helpers.

The worker runs as ``python -m earlywarn.cli -v worker`` so a test can SIGKILL it like a
crash; its log says when it owns partitions (``worker owns partitions``).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from alerting.alarm_records import ALARMS_TOPIC, alarm_from_value
from earlywarn.model import AlarmEvent
from ingest.kafka_records import READINGS_TOPIC, record_for
from tests.distributed.bridge_harness import ChildProcess, read_all, wait_until
from tests.earlywarn.test_registry import REGIONS

T0 = 1_795_284_000_000
"""A reading time in 2026 (device clocks are checked against ours)."""


def write_registry(
    root: Path, sites: int, detectors: int, *, offline: bool = False, interval: str = "5s"
) -> Path:
    """``regions.yaml`` and ``acme.yaml``: ``sites`` sites of ``detectors`` combustible gas
    detectors each (orange at 25 %LEL, red at 50, reporting every ``interval``; the implicit
    offline rule, yellow after three intervals of silence, only when ``offline``); site-00 has
    a zone raising red when two detectors are orange."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "regions.yaml").write_text(REGIONS, encoding="utf-8")
    lines = [
        "enterprise:",
        "  id: acme",
        "  name: 安县示例化工有限公司",
        "  kind: hazardous_chemicals",
        "  region: county",
        "  people:",
        "    - id: ops",
        "      name: 周立军",
        "      role: 操作负责人",
        '      phone: "+8613800020003"',
        "  chain:",
        "    blue: [ops]",
        "    yellow: [ops]",
        "    orange: [ops]",
        "    red: [ops, c-duty]",
        "  sites:",
    ]
    for s in range(sites):
        lines += [f"    - id: site-{s:02d}", f"      name: 罐区{s}", "      sensors:"]
        for d in range(detectors):
            lines += [
                f"        - id: GD-{d:02d}",
                f"          name: 可燃气体探测器{d}",
                "          kind: combustible_gas",
                '          unit: "%LEL"',
                "          range: [0, 100]",
                f"          interval: {interval}",
                *([] if offline else ["          offline: false"]),
                *(["          zone: north"] if s == 0 and d < 2 else []),
                "          rules:",
                "            - preset: combustible_gas",
            ]
        if s == 0:
            lines += [
                "      zones:",
                "        - id: north",
                "          name: 北区",
                "          rules:",
                "            - id: two_detectors",
                "              kind: composite",
                "              min_count: 2",
                "              at_level: orange",
                "              level: red",
                "              member_rule: combustible_gas",
            ]
    (root / "acme.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def reading(site: int, detector: int, seq: int, value: float) -> tuple[str, bytes]:
    """One reading of a test detector: MQTT topic and payload, 1 s apart by ``seq``."""
    body = {"ts": T0 + seq * 1000, "v": value}
    return f"ew/v1/acme/site-{site:02d}/GD-{detector:02d}/up", json.dumps(body).encode()


def create_topics(
    bootstrap: str, partitions: int, names: Sequence[str] = (READINGS_TOPIC,)
) -> None:
    """Create topics with ``partitions`` partitions (a broker's automatic creation would
    give its default count, and the workers must know the count)."""

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
            )
        finally:
            await admin.close()

    asyncio.run(create())


def produce(bootstrap: str, messages: Sequence[tuple[str, bytes]], received_ms: int = 0) -> None:
    """Write MQTT messages to ``ew.readings`` exactly as the bridge would (its own record
    builder: site key, payload untouched, topic and receive-time headers), in order."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            now = received_ms or int(time.time() * 1000)
            futures = []
            for topic, payload in messages:
                r = record_for(topic, payload, now)
                futures.append(
                    await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
                )
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(send())


def alarm_events(bootstrap: str) -> list[AlarmEvent]:
    """Every alarm event in ``ew.alarms`` (read to its end), in partition order."""
    return [alarm_from_value(r.value) for r in read_all(bootstrap, ALARMS_TOPIC)]


def distinct(events: Sequence[AlarmEvent]) -> set[tuple[str, str, int, str]]:
    """Events as (alarm id, change, time, level): a redelivered copy is the same tuple."""
    return {
        (e.alarm_id, e.change.value, e.ts_ms, e.level.label if e.level else "-") for e in events
    }


class WorkerProcess(ChildProcess):
    """``earlywarn worker`` in a child process, its output in files."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        kafka: str,
        registry: Path,
        partitions: int,
        *extra: str,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.argv = [
            sys.executable,
            "-m",
            "earlywarn.cli",
            "-v",
            "worker",
            "--kafka",
            kafka,
            "--registry",
            str(registry),
            "--partitions",
            str(partitions),
            "--data-dir",
            str(workdir / f"{name}-data"),
            "--session-timeout",
            "6",
            "--tick",
            "0.2",
            "--reload-every",
            "0.5",
            *extra,
        ]
        self.out = workdir / f"{name}.out"
        self.err = workdir / f"{name}.err"
        self.proc: subprocess.Popen[bytes] | None = None

    def owned(self) -> set[int] | None:
        """The partitions of its last ownership report, ``None`` before the first; fails the
        test at once if the worker has exited."""
        assert not self.exited(), f"{self.name} exited:\n{self.log()[-4000:]}"
        found = re.findall(r"worker owns partitions (\[[\d, ]*\]|none)", self.log())
        if not found:
            return None
        return set() if found[-1] == "none" else set(json.loads(found[-1]))

    def start(self) -> None:
        """Start (not waiting: several workers join one group together)."""
        with self.out.open("ab") as out, self.err.open("ab") as err:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err)

    def wait_owns(self, timeout_s: float = 60.0) -> set[int]:
        """Wait for its first report of owning partitions (some or none)."""
        wait_until(
            lambda: self.owned() is not None or self.exited(), timeout_s, f"{self.name} to own"
        )
        assert not self.exited(), f"{self.name} exited:\n{self.log()[-4000:]}"
        owned = self.owned()
        assert owned is not None
        return owned

    def wait_owns_all(self, partitions: int, timeout_s: float = 60.0) -> None:
        """Wait until it owns all ``partitions`` partitions; fails at once if it exits."""
        wait_until(
            lambda: self.owned() == set(range(partitions)),
            timeout_s,
            f"{self.name} to own every partition",
        )

    def stop(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """SIGTERM, wait, and return the counters it printed (its last JSON line)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        self.proc = None
        assert code == 0, f"{self.name} exit {code}:\n{self.log()[-4000:]}"
        lines = [ln for ln in self.out.read_text().splitlines() if ln.startswith("{")]
        counters: dict[str, Any] = json.loads(lines[-1])
        return counters


def committed(bootstrap: str, group: str, topic: str = READINGS_TOPIC) -> dict[int, int]:
    """The offsets ``group`` has committed on ``topic``, by partition (absent: none)."""

    async def fetch() -> dict[int, int]:
        # A consumer of the group that never subscribes (so never joins): the admin client's
        # OffsetFetch version is one tansu answers malformed.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            await consumer.topics()
            parts = consumer.partitions_for_topic(topic) or set()
            found = {p: await consumer.committed(TopicPartition(topic, p)) for p in parts}
        finally:
            await consumer.stop()
        return {p: offset for p, offset in found.items() if offset is not None}

    return asyncio.run(fetch())


def all_committed(bootstrap: str, group: str, partitions: set[int]) -> bool:
    """True when ``group`` has committed every record now in ``partitions`` of
    ``ew.readings`` (so a new owner starts after them: only the saved state knows them)."""
    ends: dict[int, int] = {}
    for r in read_all(bootstrap, READINGS_TOPIC):
        if r.partition in partitions:
            ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
    done = committed(bootstrap, group)
    return all(done.get(p, -1) >= end for p, end in ends.items())
