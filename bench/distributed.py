"""Distributed-runner benchmark: worker throughput (one vs two) and MQTT → alarm latency.

A benchmark that prints figures; it asserts nothing about speed. Everything runs on this
machine (broker, workers, bridge, load generator share its cores), so the figures say what
one small host does, not what a cluster does; the core count is printed with them.

What it measures
----------------
1. **Worker throughput, one worker and then two.** A fresh tansu (Kafka protocol, memory
   storage) gets ``ew.readings`` with ``--partitions`` partitions, pre-loaded with
   ``--readings`` records built by the bridge's own record builder
   (``ingest.kafka_records.record_for``: site key, payload untouched, topic and receive-time
   headers) for ``--sites`` × ``--detectors`` combustible-gas detectors whose values stay
   normal except for a short orange excursion every 50 readings (so about 4 % of readings
   raise or clear an alarm). Then ``earlywarn worker`` subprocesses start (``--batch``,
   ``--session-timeout 6``). The clock runs **from the first "worker owns partitions" log
   line** (the tables are recovered; evaluation can start) **until the consumer group
   ``earlywarn`` has committed every pre-loaded offset**, polled every 0.25 s. A worker
   commits only after the batch's alarms and states are in Kafka, so a committed offset
   is a reading fully done; the figure is pessimistic by up to one commit interval (Faust
   commits every 2.8 s) plus one poll. With two workers the clock includes the group's
   rebalance when the second one joins. The workers' own counters (readings evaluated,
   alarm events sent), printed when they stop, are summed and shown as a cross-check, with
   the CPU seconds tansu, each worker and the bench used over the span (from ``/proc``): on
   a small host they say whether the cores, not the workers, were the limit.
   The default 10,000 detectors make most readings of a fetch belong to different sensors,
   so nearly every reading costs a state write, as in service (a detector reports every few
   seconds); with few detectors a fetch holds many readings per sensor, one state write
   covers them all, and the figure flatters. The report gives state writes per reading.
   **Recovery**: after the one-worker run a fresh worker is started on the changelogs it left
   and its log timed from Faust assigning it the partitions to its owning them: changelog
   records recovered per second, what a failover or rebalance waits for.
2. **Latency MQTT → alarm event.** Mosquitto + tansu + one ``earlywarn bridge`` + one
   ``earlywarn worker``. A paho client publishes QoS 1 readings at ``--rate`` for
   ``--seconds``, each payload's ``ts`` the publish time (ms); every ``--alarm-every``-th
   reading of a sensor is orange (30 %LEL) and the next one normal, so it raises an alarm and
   the next clears it. A consumer reading ``ew.alarms`` (from its end before publishing)
   takes, for every alarm event, (time received − ``event.ts_ms``). The first second is a
   warm-up and is left out.

Run ``.venv/bin/python bench/distributed.py --quick`` (about 70 s on 2 cores) or without
``--quick`` for the full figures (longer, and it loads both cores: not while others test).
Every subprocess and the temporary directory are removed on exit, Ctrl-C, SIGTERM or error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alerting.alarm_records import ALARMS_TOPIC, alarm_from_value  # noqa: E402
from earlywarn.worker_app import SENSOR_TABLE, ZONE_TABLE  # noqa: E402
from ingest.kafka_records import READINGS_TOPIC, record_for  # noqa: E402
from tests.distributed.bridge_harness import BridgeProcess  # noqa: E402
from tests.distributed.worker_harness import (  # noqa: E402
    WorkerProcess,
    create_topics,
    write_registry,
)
from tests.services.mosquitto import Mosquitto  # noqa: E402
from tests.services.tansu import Tansu  # noqa: E402

GROUP = "earlywarn"
"""The workers' consumer group (``earlywarn worker``'s default ``--app-id``)."""
NORMAL = (2.0, 4.0, 6.0, 8.0, 10.0)
"""%LEL: below the orange clear point (20) of the combustible_gas preset."""
ORANGE = 30.0
"""%LEL: above orange (25), below red (50)."""
EXCURSION_EVERY = 50
"""Throughput load: each detector reads orange twice in a row once every this many readings."""
WARMUP_S = 1.0
POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class Options:
    """What the command line asked for."""

    partitions: int
    readings: int
    sites: int
    detectors: int
    batch: int
    standby_replicas: int
    rate: int
    seconds: float
    alarm_every: int
    latency_sensors: int
    only: str | None
    quick: bool


@dataclass(slots=True)
class Throughput:
    """One throughput run."""

    workers: int
    readings: int
    seconds: float = 0.0
    settle_s: float = 0.0
    owned: list[list[int]] = field(default_factory=list)
    per_worker_readings: list[int] = field(default_factory=list)
    evaluated: int = 0
    alarm_events: int = 0
    commits_seen: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds each process used over the measured span (tansu, w1, w2, the bench)."""
    changelog_records: int = 0
    """In the state changelogs after the run (one worker only)."""
    recovery_s: float = float("nan")
    """A fresh worker started on those changelogs: from its partitions being assigned to
    its owning them (the changelogs read), from its log."""

    @property
    def rate(self) -> float:
        """Readings per second over the measured span."""
        return self.readings / self.seconds if self.seconds > 0 else 0.0


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a live process (Linux ``/proc``); 0 when it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_now(procs: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds so far of each named process, and of this one as ``bench``."""
    times = os.times()
    return {**{k: cpu_seconds(pid) for k, pid in procs.items()}, "bench": times.user + times.system}


@dataclass(slots=True)
class Latency:
    """The latency run."""

    published: int = 0
    publish_rate: float = 0.0
    expected_events: int = 0
    events: int = 0
    counted: int = 0
    samples_ms: list[float] = field(default_factory=list)
    bridged_ms: list[float] = field(default_factory=list)
    """MQTT publish → record readable in ew.readings, same warm-up cut."""
    median_by_second: list[float] = field(default_factory=list)
    """Median latency of the events of each second of publishing, warm-up included: a
    rising series means the worker is not keeping up, a flat one a fixed delay."""

    def quantile(self, q: float, bridged: bool = False) -> float:
        """The ``q`` quantile of the counted latencies (nearest rank), ms."""
        ordered = sorted(self.bridged_ms if bridged else self.samples_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# -- load --------------------------------------------------------------------------------------


def throughput_messages(opts: Options, base_ms: int) -> Iterator[tuple[str, bytes]]:
    """``opts.readings`` readings, interleaved across detectors as devices would send them,
    1 s apart per detector and all in the past (device clocks are checked against ours)."""
    sensors = opts.sites * opts.detectors
    for n in range(opts.readings):
        seq, s = divmod(n, sensors)
        site, det = divmod(s, opts.detectors)
        phase = (seq + 7 * det + 3 * site) % EXCURSION_EVERY
        value = ORANGE if phase in (0, 1) else NORMAL[(seq + s) % len(NORMAL)]
        body = {"ts": base_ms + seq * 1000, "v": value}
        yield f"ew/v1/acme/site-{site:02d}/GD-{det:02d}/up", json.dumps(body).encode()


async def _preload(bootstrap: str, messages: Iterator[tuple[str, bytes]]) -> dict[int, int]:
    """Produce every message as the bridge would; return each partition's end (last offset
    + 1) from the broker's acknowledgements, the offsets the workers must commit."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1 << 20
    )
    await producer.start()
    ends: dict[int, int] = {}
    try:
        now = int(time.time() * 1000)
        pending: list[asyncio.Future[Any]] = []

        async def settle() -> None:
            for meta in await asyncio.gather(*pending):
                ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
            pending.clear()

        for topic, payload in messages:
            r = record_for(topic, payload, now)
            pending.append(
                await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
            )
            if len(pending) >= 10_000:
                await settle()
        await settle()
    finally:
        await producer.stop()
    return ends


# -- throughput --------------------------------------------------------------------------------


class CommitWatcher:
    """Reads the offsets group ``earlywarn`` committed on ``ew.readings``, with one consumer
    that never subscribes (so never joins the group) for the whole run."""

    def __init__(self, bootstrap: str, partitions: int) -> None:
        self.bootstrap = bootstrap
        self.parts = [TopicPartition(READINGS_TOPIC, p) for p in range(partitions)]
        self.loop = asyncio.new_event_loop()
        self.consumer: AIOKafkaConsumer | None = None

    def start(self) -> None:
        """Connect."""

        async def start() -> AIOKafkaConsumer:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=GROUP, enable_auto_commit=False
            )
            await consumer.start()
            return consumer

        self.consumer = self.loop.run_until_complete(start())

    def committed(self) -> dict[int, int]:
        """Committed offset by partition (absent: none yet)."""
        consumer = self.consumer
        if consumer is None:
            msg = "CommitWatcher.start() first"
            raise RuntimeError(msg)

        async def fetch() -> dict[int, int]:
            found = {tp.partition: await consumer.committed(tp) for tp in self.parts}
            return {p: o for p, o in found.items() if o is not None}

        return self.loop.run_until_complete(fetch())

    def close(self) -> None:
        """Disconnect and close the loop."""
        if self.consumer is not None:
            self.loop.run_until_complete(self.consumer.stop())
            self.consumer = None
        self.loop.close()


def run_throughput(
    opts: Options, workdir: Path, registry: Path, n_workers: int, cleanup: contextlib.ExitStack
) -> Throughput:
    """Pre-load a fresh broker, start ``n_workers`` workers, time them to the last commit."""
    out = Throughput(n_workers, opts.readings)
    broker = Tansu(workdir / "tansu")
    broker.start()
    cleanup.callback(broker.stop)
    create_topics(broker.bootstrap, opts.partitions, (READINGS_TOPIC, ALARMS_TOPIC))
    per_sensor = -(-opts.readings // (opts.sites * opts.detectors))
    base_ms = int(time.time() * 1000) - (per_sensor + 120) * 1000
    t = time.monotonic()
    ends = asyncio.run(_preload(broker.bootstrap, throughput_messages(opts, base_ms)))
    loaded = sum(ends.values())
    print(
        f"  pre-loaded {loaded:,} readings in {time.monotonic() - t:.1f} s; per partition: "
        + ", ".join(f"{p}:{ends.get(p, 0):,}" for p in range(opts.partitions)),
        flush=True,
    )
    if loaded != opts.readings:
        msg = f"the broker acknowledged {loaded} records, {opts.readings} were sent"
        raise RuntimeError(msg)
    watcher = CommitWatcher(broker.bootstrap, opts.partitions)
    watcher.start()
    cleanup.callback(watcher.close)
    workers = [
        WorkerProcess(
            workdir,
            f"w{i + 1}",
            broker.bootstrap,
            registry,
            opts.partitions,
            "--batch",
            str(opts.batch),
            "--standby-replicas",
            str(opts.standby_replicas),
        )
        for i in range(n_workers)
    ]
    for w in workers:
        cleanup.callback(w.close)
        w.start()
    procs = {"tansu": broker.proc.pid if broker.proc else None}
    procs.update({w.name: w.proc.pid if w.proc else None for w in workers})
    cpu_at_own: dict[str, float] = {}
    timeout_s = 120.0 + opts.readings / 200
    deadline = time.monotonic() + timeout_s
    t_own: float | None = None
    t_settled: float | None = None
    last_done = -1
    while True:
        now = time.monotonic()
        if now > deadline:
            msg = f"the workers did not commit every reading within {timeout_s:.0f} s"
            raise RuntimeError(msg)
        for w in workers:
            if w.exited():
                msg = f"{w.name} exited:\n{w.log()[-3000:]}"
                raise RuntimeError(msg)
        owned = [w.owned() for w in workers]
        if t_own is None and any(o for o in owned):
            t_own = now
            cpu_at_own = cpu_now(procs)
        if t_settled is None and all(o for o in owned):
            t_settled = now
        if t_own is not None:
            done = watcher.committed()
            count = sum(min(done.get(p, 0), end) for p, end in ends.items())
            if count != last_done:
                out.commits_seen += 1
                last_done = count
            if count >= loaded:
                out.seconds = time.monotonic() - t_own
                cpu_end = cpu_now(procs)
                out.cpu_s = {k: cpu_end[k] - cpu_at_own.get(k, 0.0) for k in cpu_end}
                break
        time.sleep(POLL_S)
    # Every worker owning some partitions; never, when one got none before the end.
    out.settle_s = float("nan") if t_settled is None else t_settled - (t_own or t_settled)
    out.owned = [sorted(w.owned() or ()) for w in workers]
    for w in workers:
        counters = w.stop()
        out.per_worker_readings.append(int(counters.get("readings", 0)))
        out.evaluated += int(counters.get("evaluated", 0))
        out.alarm_events += int(counters.get("alarm events sent", 0))
    watcher.close()
    if n_workers == 1:
        measure_recovery(opts, workdir, registry, broker.bootstrap, out, cleanup)
    broker.stop()
    return out


def measure_recovery(
    opts: Options,
    workdir: Path,
    registry: Path,
    bootstrap: str,
    out: Throughput,
    cleanup: contextlib.ExitStack,
) -> None:
    """Start a fresh worker on the changelogs the run left and time its recovery: from Faust
    handing it the partitions to its owning them (both in its log, so the start-up before,
    mostly reading the registry, is left out)."""
    out.changelog_records = asyncio.run(_changelog_records(bootstrap, opts.partitions))
    worker = WorkerProcess(workdir, "w-recover", bootstrap, registry, opts.partitions)
    cleanup.callback(worker.close)
    worker.start()
    worker.wait_owns_all(opts.partitions, 600)
    log = worker.log()
    worker.stop()
    stamp = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]? \[\d+\] \[INFO\] "
    assigned = re.findall(stamp + "Executing _on_partitions_assigned", log)
    owns = re.findall(stamp + "worker owns partitions", log)
    if assigned and owns:
        fmt = "%Y-%m-%d %H:%M:%S,%f"
        span = datetime.strptime(owns[-1], fmt) - datetime.strptime(assigned[-1], fmt)
        out.recovery_s = span.total_seconds()


async def _changelog_records(bootstrap: str, partitions: int) -> int:
    """Records in the workers' two changelog topics (end offsets; exact on tansu because the
    worker sends each partition's last record alone)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [
            TopicPartition(f"{GROUP}-{table}-changelog", p)
            for table in (SENSOR_TABLE, ZONE_TABLE)
            for p in range(partitions)
        ]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return sum(ends.values())


# -- latency -----------------------------------------------------------------------------------


class AlarmReader(threading.Thread):
    """Reads ``ew.alarms`` and ``ew.readings`` from their current ends in a thread, noting
    when each alarm event and each bridged reading arrived (the readings show how much of
    the latency is the bridge's)."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(name="alarm-reader", daemon=True)
        self.bootstrap = bootstrap
        self.ready = threading.Event()
        self.halt = threading.Event()
        self.seen: list[tuple[float, int]] = []
        """(received ms, event ts_ms) of every alarm event."""
        self.bridged: list[tuple[float, int]] = []
        """(received ms, payload ts) of every reading in ew.readings: the bridge's leg."""
        self.error: BaseException | None = None

    def run(self) -> None:
        """Consume until told to stop."""
        try:
            asyncio.run(self._consume())
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.ready.set()

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
        )
        await consumer.start()
        try:
            await consumer.topics()
            parts = [
                TopicPartition(topic, p)
                for topic in (ALARMS_TOPIC, READINGS_TOPIC)
                for p in consumer.partitions_for_topic(topic) or ()
            ]
            if not {tp.topic for tp in parts} >= {ALARMS_TOPIC, READINGS_TOPIC}:
                msg = f"{ALARMS_TOPIC} or {READINGS_TOPIC} does not exist"
                raise RuntimeError(msg)
            consumer.assign(parts)
            await consumer.seek_to_end(*parts)
            for tp in parts:
                await consumer.position(tp)  # resolve "end" now, before anything is published
            self.ready.set()
            while not self.halt.is_set():
                batch = await consumer.getmany(timeout_ms=100)
                received = time.time() * 1000
                for tp, records in batch.items():
                    for m in records:
                        if tp.topic == ALARMS_TOPIC:
                            self.seen.append((received, alarm_from_value(m.value or b"").ts_ms))
                        else:
                            ts = int(json.loads(m.value or b"{}")["ts"])
                            self.bridged.append((received, ts))
        finally:
            await consumer.stop()


def latency_value(i: int, alarm_every: int) -> float:
    """A sensor's ``i``-th value: orange at every ``alarm_every``-th reading, normal else."""
    return ORANGE if i % alarm_every == alarm_every - 1 else NORMAL[i % len(NORMAL)]


def run_latency(
    opts: Options, workdir: Path, registry: Path, cleanup: contextlib.ExitStack
) -> Latency:
    """Publish over MQTT at a steady rate through bridge and worker; time each alarm event."""
    out = Latency()
    mosquitto = Mosquitto(workdir / "mosquitto", max_inflight=1000, tcp_nodelay=True)
    mosquitto.start()
    cleanup.callback(mosquitto.stop)
    broker = Tansu(workdir / "tansu-latency")
    broker.start()
    cleanup.callback(broker.stop)
    create_topics(broker.bootstrap, opts.partitions, (READINGS_TOPIC, ALARMS_TOPIC))
    worker = WorkerProcess(
        workdir,
        "latency-worker",
        broker.bootstrap,
        registry,
        opts.partitions,
        "--batch",
        str(opts.batch),
    )
    cleanup.callback(worker.close)
    worker.start()
    worker.wait_owns_all(opts.partitions, 120)
    bridge = BridgeProcess(workdir, mosquitto.url, broker.bootstrap, "bench-bridge")
    cleanup.callback(bridge.close)
    bridge.start()
    reader = AlarmReader(broker.bootstrap)
    cleanup.callback(reader.halt.set)
    reader.start()
    reader.ready.wait(30)
    if reader.error is not None or not reader.ready.is_set():
        msg = f"cannot read {ALARMS_TOPIC}: {reader.error!r}"
        raise RuntimeError(msg)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-devices")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    cleanup.callback(client.loop_stop)
    # Not site-00: its zone would add composite alarms to the count.
    sensors = [
        f"ew/v1/acme/site-{s:02d}/GD-{d:02d}/up"
        for s in range(1, opts.sites)
        for d in range(opts.detectors)
    ][: opts.latency_sensors]
    total = int(opts.rate * opts.seconds)
    infos = []
    start = time.monotonic()
    start_ms = time.time() * 1000
    sent = 0
    last_ts: dict[int, int] = {}
    while sent < total:
        due = min(total, int((time.monotonic() - start) * opts.rate) + 1)
        while sent < due:
            s = sent % len(sensors)
            i = sent // len(sensors)
            ts = max(int(time.time() * 1000), last_ts.get(s, 0) + 1)  # newer than its last
            last_ts[s] = ts
            value = latency_value(i, opts.alarm_every)
            if value == ORANGE:
                out.expected_events += 2 if sent + len(sensors) < total else 1
            body = json.dumps({"ts": ts, "v": value}).encode()
            infos.append(client.publish(sensors[s], body, qos=1))
            sent += 1
        time.sleep(0.002)
    out.published = sent
    out.publish_rate = sent / (time.monotonic() - start)
    for info in infos:
        info.wait_for_publish(30)
    # Drain: until every expected event came, or nothing new for 5 s.
    last_count, last_change = -1, time.monotonic()
    while len(reader.seen) < out.expected_events and time.monotonic() - last_change < 5:
        if len(reader.seen) != last_count:
            last_count, last_change = len(reader.seen), time.monotonic()
        time.sleep(0.1)
    reader.halt.set()
    reader.join(10)
    client.disconnect()
    out.events = len(reader.seen)
    out.samples_ms = [recv - ts for recv, ts in reader.seen if ts >= start_ms + WARMUP_S * 1000]
    out.counted = len(out.samples_ms)
    by_second: dict[int, list[float]] = {}
    for recv, ts in reader.seen:
        by_second.setdefault(int((ts - start_ms) // 1000), []).append(recv - ts)
    out.median_by_second = [statistics.median(by_second[k]) for k in sorted(by_second)]
    out.bridged_ms = [recv - ts for recv, ts in reader.bridged if ts >= start_ms + WARMUP_S * 1000]
    bridge.stop()
    worker.stop()
    broker.stop()
    mosquitto.stop()
    return out


# -- report ------------------------------------------------------------------------------------


def report(opts: Options, runs: Sequence[Throughput], lat: Latency | None) -> None:
    """The compact table at the end."""
    label = "QUICK (small, noisy)" if opts.quick else "full"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n== distributed runner, {label}; cpu_count={os.cpu_count()}, load avg {load} ==")
    if runs:
        print(
            f"throughput: {opts.readings:,} pre-loaded readings, {opts.sites}x{opts.detectors} "
            f"detectors, {opts.partitions} partitions, --batch {opts.batch}, "
            f"--standby-replicas {opts.standby_replicas}; "
            "first 'owns partitions' -> all offsets committed"
        )
        print(
            f"  {'workers':>7} {'seconds':>8} {'readings/s':>11} {'settle s':>9} "
            f"{'evaluated':>10} {'alarm evts':>10}  partitions owned"
        )
        for r in runs:
            print(
                f"  {r.workers:>7} {r.seconds:>8.1f} {r.rate:>11,.0f} {r.settle_s:>9.1f} "
                f"{r.evaluated:>10,} {r.alarm_events:>10,}  "
                + " | ".join(",".join(map(str, o)) or "-" for o in r.owned)
            )
        print("  CPU seconds over the measured span (cores busy = sum / seconds):")
        for r in runs:
            busy = sum(r.cpu_s.values()) / r.seconds if r.seconds else float("nan")
            print(
                f"  {r.workers:>7}  "
                + "  ".join(f"{k} {v:.1f}" for k, v in r.cpu_s.items())
                + f"  -> {busy:.2f} of {os.cpu_count()} cores busy"
            )
        for r in runs:
            if r.changelog_records:
                print(
                    f"  recovery: a fresh worker read the {r.changelog_records:,} changelog "
                    f"records the one-worker run left ({r.changelog_records / r.readings:.2f} "
                    f"state writes per reading) in {r.recovery_s:.1f} s, from being assigned "
                    f"to owning its partitions: {r.changelog_records / r.recovery_s:,.0f} "
                    "records/s"
                )
        if len(runs) == 2 and runs[0].rate > 0:
            print(f"  two/one: {runs[1].rate / runs[0].rate:.2f}")
    if lat is not None:
        print(
            f"latency MQTT -> ew.alarms event: {lat.published:,} readings at "
            f"{lat.publish_rate:,.0f}/s, 1 in {opts.alarm_every} per sensor orange "
            f"(raise, then clear); first {WARMUP_S:g} s left out"
        )
        print(
            f"  events {lat.events:,}/{lat.expected_events:,} expected, counted {lat.counted:,}: "
            f"p50 {lat.quantile(0.5):.1f} ms  p99 {lat.quantile(0.99):.1f} ms  "
            f"max {max(lat.samples_ms, default=float('nan')):.1f} ms  "
            f"mean {statistics.fmean(lat.samples_ms) if lat.samples_ms else float('nan'):.1f} ms"
        )
        print(
            f"  of which MQTT -> ew.readings (the bridge's leg, {len(lat.bridged_ms):,} "
            f"readings): p50 {lat.quantile(0.5, bridged=True):.1f} ms  "
            f"p99 {lat.quantile(0.99, bridged=True):.1f} ms  "
            f"max {max(lat.bridged_ms, default=float('nan')):.1f} ms"
        )
        print(
            "  median by second of publishing (warm-up first): "
            + " ".join(f"{m:.0f}" for m in lat.median_by_second)
            + " ms"
        )


def parse(argv: Sequence[str] | None) -> Options:
    """Options from the command line; ``--quick`` shrinks the defaults."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="small, short runs (noisy figures)")
    p.add_argument("--partitions", type=int, default=8, help="of ew.readings (default 8)")
    p.add_argument("--readings", type=int, help="pre-loaded (default 200,000; quick 40,000)")
    p.add_argument("--sites", type=int, default=100, help="sites in the registry (default 100)")
    p.add_argument("--detectors", type=int, default=100, help="detectors per site (default 100)")
    p.add_argument("--batch", type=int, default=2000, help="the workers' --batch (default 2000)")
    p.add_argument(
        "--standby-replicas",
        type=int,
        default=0,
        help="the workers' --standby-replicas (default 0, as the worker's)",
    )
    p.add_argument("--rate", type=int, default=1000, help="latency run, readings/s (default 1000)")
    p.add_argument("--seconds", type=float, help="latency run length (default 10; quick 4)")
    p.add_argument(
        "--alarm-every",
        type=int,
        default=10,
        help="latency run: every N-th reading of a sensor is orange, raising an alarm the next "
        "clears (default 10: 200 events/s at 1,000 readings/s)",
    )
    p.add_argument(
        "--latency-sensors",
        type=int,
        default=100,
        help="latency run: detectors published to, round-robin (default 100: each one 10 "
        "readings/s at 1,000/s)",
    )
    p.add_argument("--only", choices=("throughput", "latency"), help="run one part only")
    a = p.parse_args(argv)
    if a.sites > 100 or a.detectors > 100:
        p.error("--sites and --detectors are at most 100 (two-digit ids)")
    if min(a.partitions, a.sites - 1, a.detectors, a.batch, a.rate, a.alarm_every) < 1:
        p.error("every count must be at least 1, --sites at least 2")
    return Options(
        partitions=a.partitions,
        readings=a.readings or (40_000 if a.quick else 200_000),
        sites=a.sites,
        detectors=a.detectors,
        batch=a.batch,
        standby_replicas=a.standby_replicas,
        rate=a.rate,
        seconds=a.seconds or (4.0 if a.quick else 10.0),
        alarm_every=a.alarm_every,
        latency_sensors=a.latency_sensors,
        only=a.only,
        quick=a.quick,
    )


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the parts asked for, print the table; clean up whatever happens."""
    opts = parse(argv)
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a background job ignores it
        signal.signal(sig, _terminate)
    runs: list[Throughput] = []
    lat: Latency | None = None
    print(f"cpu_count={os.cpu_count()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ew-bench-dist-") as tmp:
        root = Path(tmp)
        registry = write_registry(root / "registry", opts.sites, opts.detectors)
        try:
            if opts.only in (None, "throughput"):
                for n in (1, 2):
                    print(f"throughput, {n} worker{'s' if n > 1 else ''}:", flush=True)
                    with contextlib.ExitStack() as cleanup:
                        run = run_throughput(opts, root / f"tp{n}", registry, n, cleanup)
                    print(
                        f"  {run.rate:,.0f} readings/s ({run.seconds:.1f} s; readings by "
                        f"worker {run.per_worker_readings})",
                        flush=True,
                    )
                    runs.append(run)
            if opts.only in (None, "latency"):
                print("latency, MQTT -> bridge -> worker -> ew.alarms:", flush=True)
                with contextlib.ExitStack() as cleanup:
                    lat = run_latency(opts, root / "latency", registry, cleanup)
        except KeyboardInterrupt:
            print("\ninterrupted; stopping everything", file=sys.stderr)
            return 130
        report(opts, runs, lat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
