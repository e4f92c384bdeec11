"""End-to-end benchmark: MQTT readings through a real Mosquitto into the embedded runner.

A benchmark that prints figures; it asserts nothing about speed.

What it measures
----------------
1. **Sustained throughput.** Publisher *processes* publish single-reading messages
   (``{"ts": <epoch ms>, "v": <number>}`` on ``ew/v1/{enterprise}/{site}/{sensor}/up``, QoS 1)
   at a ladder of target rates, paced in bursts every 2 ms. For each step the runner's
   ``evaluated`` counter is read before and after the step; the step is *sustained* when the
   runner evaluated at least 95 % of what was published within the step plus a short grace
   period (0.5 s). The ladder stops at the first step that is not sustained, then bisects
   between the last sustained and the failed rate (``--refine`` extra steps). Values in the
   ladder stay below every set-point: it measures ingest + rule evaluation, no alarm traffic.
2. **Reading → alarm-event latency** at 5k msg/s against a generated registry of
   combustible-gas sensors whose values flip between 60 %LEL (red) and 5 %LEL (clear) every
   ``--alarm-every`` readings (default 25: 200 alarm events/s, each with a retained
   ``…/alarm`` publish by the runner; ``--alarm-every 1`` makes every reading an event).
   Latency = ``time.time_ns()`` when the sink's ``emit`` was called minus ``time.time_ns()``
   in the publisher process just before the burst holding that reading was written to the
   socket, correlated by (sensor, ts). The first second is a warm-up and is not counted.
3. **Reference:** a bare paho subscriber (persistent session, QoS 1, auto-ack, ``on_message``
   only counts, or appends a timestamp during the latency run) takes the same latency run and
   the same ladder first, so the runner's figures can be read against what Python + paho +
   this broker allow on this machine. The ratio runner/bare of the sustained rate is printed
   next to the project's targets (>= 0.7 of bare; p99 <= 20 ms at 5k msg/s).

It also prints an in-process ceiling: ``Pipeline.handle`` called in a loop, no MQTT.

How
---
Mosquitto runs from ``tests.services.mosquitto`` in a temp dir with a large
``max_inflight_messages`` (it bounds how many unacknowledged QoS 1 messages the runner, which
acknowledges only after evaluating, can have). The runner runs in a ``RunnerThread`` in this
process; the bare subscriber runs here too (paho network thread), one after the other, each
with its own persistent session, wiped afterwards. The load generator is by default a minimal
socket MQTT publisher (a few µs per message, one ``sendall`` per burst) so that it takes as
little CPU as possible from the broker and the consumer on small machines; ``--publisher
paho`` uses paho-mqtt instead.

Everything (broker, runner thread, subscriber, publisher processes, temp dir) is stopped on
exit, Ctrl-C or error. ``.venv/bin/python bench/e2e.py --quick`` takes about 40 s, the default
run under 3 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from pathlib import Path
from types import FrameType
from typing import Protocol

import paho.mqtt
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alerting.store import AlertStore  # noqa: E402
from earlywarn.clock import SystemClock  # noqa: E402
from earlywarn.model import AlarmEvent  # noqa: E402
from earlywarn.pipeline import Pipeline  # noqa: E402
from earlywarn.registry import Registry, load_registry  # noqa: E402
from earlywarn.settings import RunSettings, StorageSettings  # noqa: E402
from earlywarn.storage_wiring import StorageRuntime  # noqa: E402
from ingest.mqtt import Inbound  # noqa: E402
from ingest.topics import READINGS_FILTER, up_topic  # noqa: E402
from tests.services.mosquitto import Mosquitto  # noqa: E402
from tests.services.runner_thread import RunnerThread  # noqa: E402
from tests.services.victoria import VictoriaMetrics  # noqa: E402

log = logging.getLogger("bench.e2e")

ENTERPRISE = "bench-chem"
SENSORS_PER_SITE = 10
HIGH_VALUE = 60.0  # %LEL: above the red set-point (50) of the combustible_gas preset
LOW_VALUE = 5.0  # %LEL: below both clear set-points (20, 45)
TICK_S = 0.002  # publishers send a burst every 2 ms
SUSTAINED_FRACTION = 0.95
TARGET_RATIO = 0.7
TARGET_P99_MS = 20.0

DEFAULT_STEPS = (1000, 2000, 5000, 10_000, 20_000, 40_000)
QUICK_STEPS = (1000, 5000, 10_000, 20_000)


# --- registry ------------------------------------------------------------------------------


def write_registry(directory: Path, sensors: int) -> list[tuple[str, str]]:
    """Write ``regions.yaml`` and one enterprise of combustible-gas sensors.

    Returns ``(uid, up topic)`` per sensor, in publishing order.
    """
    directory.mkdir(parents=True, exist_ok=True)
    duty = {
        "id": "bench-duty",
        "name": "Bench duty officer",
        "role": "duty officer",
        "phone": "+8613800000001",
        "contacts": {"sms": "+8613800000001"},
    }
    regions = {
        "regions": [
            {
                "id": "bench-county",
                "name": "Bench county",
                "level": "county",
                "people": [duty],
                "duty": ["bench-duty"],
            }
        ]
    }
    people = [
        {
            "id": f"bench-{role}",
            "name": f"Bench {role}",
            "role": role,
            "phone": f"+86138000000{n:02d}",
            "contacts": {"sms": f"+86138000000{n:02d}"},
        }
        for n, role in enumerate(("ops", "tech", "main"), start=10)
    ]
    sites: list[dict[str, object]] = []
    out: list[tuple[str, str]] = []
    for s in range((sensors + SENSORS_PER_SITE - 1) // SENSORS_PER_SITE):
        site_id = f"s{s:04d}"
        site_sensors: list[dict[str, object]] = []
        for k in range(min(SENSORS_PER_SITE, sensors - s * SENSORS_PER_SITE)):
            sensor_id = f"g{k:02d}"
            site_sensors.append(
                {
                    "id": sensor_id,
                    "name": f"gas detector {site_id}-{sensor_id}",
                    "kind": "combustible_gas",
                    "unit": "%LEL",
                    "range": [0, 100],
                    "interval": "5s",
                    "rules": [{"preset": "combustible_gas"}],
                }
            )
            out.append(
                (f"{ENTERPRISE}/{site_id}/{sensor_id}", up_topic(ENTERPRISE, site_id, sensor_id))
            )
        sites.append(
            {
                "id": site_id,
                "name": f"bench site {site_id}",
                "address": f"bench street {s}",
                "sensors": site_sensors,
            }
        )
    enterprise = {
        "enterprise": {
            "id": ENTERPRISE,
            "name": "Bench chemicals",
            "kind": "hazardous_chemicals",
            "region": "bench-county",
            "address": "bench street",
            "people": people,
            "chain": {
                "blue": ["bench-ops"],
                "yellow": ["bench-ops", "bench-tech"],
                "orange": ["bench-ops", "bench-tech", "bench-main"],
                "red": ["bench-ops", "bench-tech", "bench-main", "bench-duty"],
            },
            "sites": sites,
        }
    }
    (directory / "regions.yaml").write_text(yaml.safe_dump(regions, sort_keys=False))
    (directory / f"{ENTERPRISE}.yaml").write_text(yaml.safe_dump(enterprise, sort_keys=False))
    return out


# --- publisher processes -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PubJob:
    """One timed run of one publisher process."""

    rate: float
    seconds: float
    start_at: float
    flip_every: int
    """0: values never alarm; N: every N-th reading flips its sensor between red and clear (the
    others repeat their sensor's state), so 1 reading in N raises or clears an alarm."""
    record: bool


@dataclass(slots=True)
class PubResult:
    """What one publisher did in one job."""

    published: int
    elapsed_s: float
    unacked: int
    records: list[tuple[int, int, int]] = field(default_factory=list)
    """``(sensor index, ts_ms, send time_ns)`` per message when the job recorded."""


class Wire(Protocol):
    """How a publisher process puts QoS 1 PUBLISH packets on the wire."""

    def send(self, burst: list[tuple[int, bytes]]) -> None:
        """Publish ``(topic number, payload)`` pairs, QoS 1."""
        ...

    def service(self) -> None:
        """Read acknowledgements without blocking."""
        ...

    def flush(self, timeout_s: float) -> int:
        """Wait until everything is written and acknowledged; return how many are not."""
        ...

    def close(self) -> None:
        """Disconnect."""
        ...


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


class RawWire:
    """A minimal MQTT 3.1.1 QoS 1 publisher on a plain socket (the default load generator).

    A burst is encoded into one buffer and written with one ``sendall``; PUBACKs are read and
    counted. It costs a few µs per message where paho's ``publish`` costs tens, which matters
    when the publisher shares a small machine with the broker and the thing under test.
    """

    def __init__(self, host: str, port: int, client_id: str, topics: Sequence[str]) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        # protocol "MQTT" level 4, clean session, keepalive 0 (off: no pings to answer)
        body = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid
        self.sock.sendall(b"\x10" + _varint(len(body)) + body)
        connack = b""
        while len(connack) < 4:
            chunk = self.sock.recv(4 - len(connack))
            if not chunk:
                msg = "the broker closed the connection before CONNACK"
                raise ConnectionError(msg)
            connack += chunk
        if connack[0] != 0x20 or connack[3] != 0:
            msg = f"the broker refused the connection: {connack!r}"
            raise ConnectionError(msg)
        self.sock.settimeout(None)
        self.heads = [len(t.encode()).to_bytes(2, "big") + t.encode() for t in topics]
        self.pid = 0
        self.sent = 0
        self.acked = 0
        self.buf = b""

    def send(self, burst: list[tuple[int, bytes]]) -> None:
        """Encode the burst into one buffer and write it."""
        parts: list[bytes] = []
        pid = self.pid
        for i, payload in burst:
            head = self.heads[i]
            pid = pid + 1 if pid < 65535 else 1
            parts.append(
                b"\x32"
                + _varint(len(head) + 2 + len(payload))
                + head
                + pid.to_bytes(2, "big")
                + payload
            )
        self.pid = pid
        self.sock.sendall(b"".join(parts))
        self.sent += len(burst)

    def service(self) -> None:
        """Count the PUBACKs that have arrived."""
        while True:
            try:
                data = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if not data:
                msg = "the broker closed the connection"
                raise ConnectionError(msg)
            buf = self.buf + data
            pos = 0
            while len(buf) - pos >= 2:
                size = 2 + buf[pos + 1]  # PUBACK (and anything else we get) is short
                if len(buf) - pos < size:
                    break
                if buf[pos] >> 4 == 4:
                    self.acked += 1
                pos += size
            self.buf = buf[pos:]

    def flush(self, timeout_s: float) -> int:
        """Wait for the outstanding PUBACKs."""
        deadline = time.monotonic() + timeout_s
        while self.acked < self.sent and time.monotonic() < deadline:
            select.select([self.sock], [], [], 0.05)
            self.service()
        return self.sent - self.acked

    def close(self) -> None:
        """Send DISCONNECT and close."""
        with contextlib.suppress(OSError):
            self.sock.sendall(b"\xe0\x00")
        self.sock.close()


class PahoWire:
    """paho-mqtt without its network thread: ``publish`` writes, ``loop(0)`` reads PUBACKs."""

    def __init__(self, host: str, port: int, client_id: str, topics: Sequence[str]) -> None:
        self.topics = list(topics)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        self.client.max_inflight_messages_set(0)  # unlimited: pacing, not a window, sets rate
        self.client.max_queued_messages_set(0)
        self.acked = 0
        self.sent = 0
        self.client.on_publish = self._on_publish
        self.client.connect(host, port, keepalive=60)
        deadline = time.monotonic() + 10
        while not self.client.is_connected():
            if time.monotonic() > deadline:
                msg = "paho publisher: no CONNACK within 10 s"
                raise ConnectionError(msg)
            self.client.loop(timeout=0.05)

    def _on_publish(
        self, _c: mqtt.Client, _u: object, _mid: int, _r: ReasonCode, _p: Properties
    ) -> None:
        self.acked += 1

    def send(self, burst: list[tuple[int, bytes]]) -> None:
        """``publish`` each message."""
        publish, topics = self.client.publish, self.topics
        for i, payload in burst:
            publish(topics[i], payload, qos=1)
        self.sent += len(burst)

    def service(self) -> None:
        """One non-blocking pass of paho's loop."""
        self.client.loop(timeout=0)

    def flush(self, timeout_s: float) -> int:
        """Loop until everything is written and acknowledged."""
        deadline = time.monotonic() + timeout_s
        while self.acked < self.sent and time.monotonic() < deadline:
            self.client.loop(timeout=0.01)
        return self.sent - self.acked

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop(timeout=0.1)


@dataclass(slots=True)
class _PubState:
    indexes: list[int]
    last_ts: list[int]
    high: list[bool]
    cursor: int = 0
    seq: int = 0


def _publisher_main(
    conn: Connection, host: str, port: int, index: int, topics: list[tuple[int, str]], kind: str
) -> None:
    """Entry point of a publisher process: connect, then run jobs until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    wire_type = RawWire if kind == "raw" else PahoWire
    try:
        wire: Wire = wire_type(
            "127.0.0.1" if host == "localhost" else host,
            port,
            f"bench-pub-{index}-{os.getpid()}",
            [t for _, t in topics],
        )
    except OSError as exc:
        conn.send(f"could not connect: {exc}")
        return
    state = _PubState([i for i, _ in topics], [0] * len(topics), [False] * len(topics))
    conn.send("ready")
    try:
        while True:
            while not conn.poll(0.2):
                wire.service()
            job = conn.recv()
            if job is None:
                break
            conn.send(_publish_job(wire, job, state))
    except (EOFError, BrokenPipeError, ConnectionError):
        pass  # the parent or the broker went away
    finally:
        wire.close()


def _publish_job(wire: Wire, job: PubJob, st: _PubState) -> PubResult:
    n = len(st.indexes)
    if job.flip_every:
        st.high = [False] * n  # quiet values left every sensor clear
    records: list[tuple[int, int, int]] = []
    max_burst = max(1, int(job.rate * 0.02))  # when behind, catch up 20 ms at a time
    delay = job.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    t0 = time.time()
    end = t0 + job.seconds
    sent = 0
    quiet = 0
    while True:
        now = time.time()
        if now >= end:
            break
        due = min(int((now - t0) * job.rate) + 1, sent + max_burst)
        now_ms = int(now * 1000)
        burst: list[tuple[int, bytes]] = []
        keys: list[tuple[int, int]] = []
        while sent < due:
            i = st.cursor
            st.cursor = i + 1 if i + 1 < n else 0
            ts = now_ms if now_ms > st.last_ts[i] else st.last_ts[i] + 1
            st.last_ts[i] = ts  # strictly increasing per sensor, or the rules ignore it
            if job.flip_every:
                st.seq += 1
                if st.seq % job.flip_every == 0:
                    st.high[i] = not st.high[i]
                value = HIGH_VALUE if st.high[i] else LOW_VALUE
            else:
                quiet = quiet + 1 if quiet < 99 else 0
                value = quiet / 10  # 0.0 … 9.9 %LEL: never an alarm
            burst.append((i, b'{"ts":%d,"v":%.1f}' % (ts, value)))
            if job.record:
                keys.append((st.indexes[i], ts))
            sent += 1
        if burst:
            send_ns = time.time_ns()
            wire.send(burst)
            records.extend((idx, ts, send_ns) for idx, ts in keys)
        wire.service()
        pause = TICK_S - (time.time() - now)
        if pause > 0:
            time.sleep(pause)
    elapsed = time.time() - t0
    unacked = wire.flush(5.0)
    return PubResult(sent, elapsed, unacked, records)


class Publishers:
    """A pool of publisher processes, each owning a disjoint subset of the sensors."""

    def __init__(
        self, host: str, port: int, count: int, topics: Sequence[str], kind: str = "raw"
    ) -> None:
        ctx = mp.get_context("spawn")  # the parent has threads: never fork it
        self.procs: list[SpawnProcess] = []
        self.conns: list[Connection] = []
        for i in range(count):
            mine = [(idx, t) for idx, t in enumerate(topics) if idx % count == i]
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_publisher_main,
                args=(child, host, port, i, mine, kind),
                name=f"bench-publisher-{i}",
                daemon=True,
            )
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Wait until every publisher is connected."""
        for conn in self.conns:
            if not conn.poll(timeout_s):
                msg = "a publisher process did not start"
                raise RuntimeError(msg)
            try:
                answer = conn.recv()
            except EOFError:
                answer = "it exited while starting (see its traceback above)"
            if answer != "ready":
                msg = f"a publisher process failed: {answer}"
                raise RuntimeError(msg)

    def run(
        self,
        rate: float,
        seconds: float,
        start_at: float,
        *,
        flip_every: int = 0,
        record: bool = False,
    ) -> None:
        """Start a job on every publisher (the total ``rate`` is split evenly)."""
        job = PubJob(rate / len(self.conns), seconds, start_at, flip_every, record)
        for conn in self.conns:
            conn.send(job)

    def collect(self, timeout_s: float = 60.0) -> list[PubResult]:
        """Wait for the results of the running job."""
        results: list[PubResult] = []
        for conn in self.conns:
            if not conn.poll(timeout_s):
                msg = "a publisher process did not finish its job"
                raise RuntimeError(msg)
            try:
                results.append(conn.recv())
            except EOFError:
                msg = "a publisher process died during its job (see its traceback above)"
                raise RuntimeError(msg) from None
        return results

    def close(self) -> None:
        """Stop every process: politely, then by force."""
        for conn in self.conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        for proc in self.procs:
            proc.join(3)
            if proc.is_alive():
                proc.terminate()
                proc.join(3)
        for conn in self.conns:
            conn.close()


# --- consumers -----------------------------------------------------------------------------


class Consumer(Protocol):
    """What the ladder and the latency run need from the thing under test."""

    name: str

    def consumed(self) -> int:
        """Readings handled so far (monotonic)."""
        ...

    def waits(self) -> int | None:
        """Backpressure waits so far, if the consumer has such a thing."""
        ...

    def start_recording(self) -> None:
        """Forget earlier arrivals; record ``(sensor index, ts_ms, time_ns)`` from now on."""
        ...

    def recorded(self) -> list[tuple[int, int, int]]:
        """The arrivals recorded since :meth:`start_recording`."""
        ...


class LatencySink:
    """An alarm sink that notes when each event was emitted (on the runner's loop)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []

    def emit(self, event: AlarmEvent) -> None:
        """Record ``(sensor uid, reading ts, now)``."""
        self.events.append((event.sensor, event.ts_ms, time.time_ns()))


class RunnerConsumer:
    """The embedded runner in a :class:`RunnerThread`, with a :class:`LatencySink`."""

    name = "embedded runner"

    def __init__(
        self,
        registry: Registry,
        url: str,
        index_of_uid: dict[str, int],
        storage: Callable[[AlertStore | None], StorageRuntime] | None = None,
    ) -> None:
        self.sink = LatencySink()
        self.client_id = f"bench-runner-{os.getpid()}"
        settings = RunSettings(mqtt_url=url, client_id=self.client_id)
        self.thread = RunnerThread(registry, settings, sinks=[self.sink], storage=storage)
        self.index_of_uid = index_of_uid

    def consumed(self) -> int:
        """The runner's ``evaluated`` counter."""
        return int(self.thread.snapshot()["evaluated"])

    def snapshot(self) -> dict[str, object]:
        """All counters."""
        return self.thread.snapshot()

    def waits(self) -> int | None:
        """Times paho's thread blocked on the full hand-off (live, not the batch-end copy)."""
        handoff = self.thread.runner.handoff
        return handoff.backpressure if handoff is not None else None

    def start_recording(self) -> None:
        """Clear the sink (on the runner's loop, where it is appended to)."""
        self.thread.call(self.sink.events.clear)

    def recorded(self) -> list[tuple[int, int, int]]:
        """Sink events as ``(sensor index, ts, emit time)``."""
        events: list[tuple[str, int, int]] = self.thread.call(lambda: list(self.sink.events))
        return [(self.index_of_uid[uid], ts, ns) for uid, ts, ns in events]


class BareConsumer:
    """A plain paho subscriber: persistent session, QoS 1, auto-ack, counts messages."""

    name = "bare paho subscriber"

    def __init__(self, host: str, port: int, index_of_topic: dict[str, int]) -> None:
        self.host, self.port = host, port
        self.client_id = f"bench-bare-{os.getpid()}"
        self.index_of_topic = index_of_topic
        self.count = 0
        self.recording = False
        self.arrivals: list[tuple[str, bytes, int]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect and wait for the subscription."""
        self.client.connect(self.host, self.port, keepalive=60)
        self.client.loop_start()
        if not self.subscribed.wait(timeout_s):
            msg = "the bare subscriber did not subscribe"
            raise RuntimeError(msg)

    def stop(self) -> None:
        """Disconnect (the session stays on the broker until wiped)."""
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        _u: object,
        _f: mqtt.ConnectFlags,
        reason: ReasonCode,
        _p: Properties | None,
    ) -> None:
        if not reason.is_failure:
            client.subscribe(READINGS_FILTER, qos=1)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, _r: list[ReasonCode], _p: Properties | None
    ) -> None:
        self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.count += 1
        if self.recording:
            self.arrivals.append((msg.topic, bytes(msg.payload), time.time_ns()))

    def consumed(self) -> int:
        """Messages received."""
        return self.count

    def waits(self) -> int | None:
        """Not applicable."""
        return None

    def start_recording(self) -> None:
        """Forget earlier arrivals and record from now on."""
        self.recording = False
        self.arrivals = []
        self.recording = True

    def recorded(self) -> list[tuple[int, int, int]]:
        """Arrivals as ``(sensor index, ts, receive time)``."""
        self.recording = False
        return [
            (self.index_of_topic[topic], int(json.loads(payload)["ts"]), ns)
            for topic, payload, ns in self.arrivals
        ]


def wipe_session(host: str, port: int, client_id: str) -> None:
    """Drop a persistent session (and its queued messages) by connecting clean once."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311
    )
    client.connect(host, port, keepalive=10)
    deadline = time.monotonic() + 5
    while not client.is_connected() and time.monotonic() < deadline:
        client.loop(timeout=0.05)
    client.disconnect()
    client.loop(timeout=0.1)


# --- the measurements ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepRow:
    """One step of the ladder."""

    target: int
    published: int
    seconds: float
    consumed_in_step: int
    consumed_with_grace: int
    drain_s: float | None
    waits: int | None

    @property
    def published_rate(self) -> float:
        """Messages per second actually published."""
        return self.published / self.seconds

    @property
    def consumed_rate(self) -> float:
        """Readings per second handled during the step."""
        return self.consumed_in_step / self.seconds

    @property
    def backlog_end(self) -> int:
        """Published but not yet handled when the publishers stopped."""
        return max(0, self.published - self.consumed_in_step)

    @property
    def backlog_after(self) -> int:
        """Still not handled after the grace period."""
        return max(0, self.published - self.consumed_with_grace)

    @property
    def sustained(self) -> bool:
        """Handled ≥ 95 % of what was published within the step and the grace period."""
        return self.consumed_with_grace >= SUSTAINED_FRACTION * self.published

    @property
    def publisher_limited(self) -> bool:
        """The publishers could not reach the target rate (the step tests less than asked)."""
        return self.published_rate < 0.9 * self.target


@dataclass(frozen=True, slots=True)
class Latency:
    """Latency percentiles in milliseconds."""

    count: int
    missing: int
    p50: float
    p99: float
    max: float
    rate: float
    """Messages per second published during the run."""
    handled_rate: float
    """Readings per second the consumer handled during the run (below ``rate``: queueing)."""

    def format(self) -> str:
        """One line."""
        if not self.count:
            return f"no latency samples ({self.missing} readings without an arrival)"
        missing = f", {self.missing} without an arrival" if self.missing else ""
        return (
            f"p50 {self.p50:.2f} ms  p99 {self.p99:.2f} ms  max {self.max:.2f} ms  "
            f"(n={self.count}; {self.rate:,.0f} msg/s published, {self.handled_rate:,.0f}/s "
            f"handled meanwhile{missing})"
        )


def _wait_consumed(consumer: Consumer, goal: int, timeout_s: float) -> tuple[int, float | None]:
    started = time.monotonic()
    while True:
        now = consumer.consumed()
        if now >= goal:
            return now, time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            return now, None
        time.sleep(0.02)


def run_step(
    consumer: Consumer, pubs: Publishers, target: int, seconds: float, grace: float
) -> StepRow:
    """Publish at ``target`` for ``seconds``; see how much the consumer handled."""
    c0, w0 = consumer.consumed(), consumer.waits()
    start_at = time.time() + 0.2
    pubs.run(target, seconds, start_at)
    time.sleep(max(0.0, start_at + seconds - time.time()))
    c1 = consumer.consumed()
    results = pubs.collect()
    published = sum(r.published for r in results)
    elapsed = max(r.elapsed_s for r in results)
    c2, drain = _wait_consumed(consumer, c0 + published, grace)
    w2 = consumer.waits()
    waits = None if w0 is None or w2 is None else w2 - w0
    return StepRow(target, published, elapsed, c1 - c0, c2 - c0, drain, waits)


def run_ladder(
    consumer: Consumer,
    pubs: Publishers,
    steps: Sequence[int],
    seconds: float,
    grace: float,
    refine: int,
) -> list[StepRow]:
    """Climb the ladder until a step is not sustained, then bisect ``refine`` times."""
    rows: list[StepRow] = []
    lo: int | None = None
    hi: int | None = None
    plan = list(steps)
    while plan:
        target = plan.pop(0)
        before = consumer.consumed()
        row = run_step(consumer, pubs, target, seconds, grace)
        rows.append(row)
        print(f"  {consumer.name}: {format_row(row)}", flush=True)
        if row.sustained:
            lo = target
        else:
            hi = target
        # Start the next step without the backlog of this one (or give up on it).
        _, drained = _wait_consumed(consumer, before + row.published, 10.0)
        if drained is None:
            print(f"  {consumer.name}: backlog did not drain within 10 s; ladder stopped")
            break
        if hi is not None and refine > 0:
            plan = []
            mid = round(((lo or 0) + hi) / 2, -2)
            if mid not in (0, lo, hi):
                plan = [int(mid)]
                refine -= 1
    return sorted(rows, key=lambda r: r.target)


def run_latency(
    consumer: Consumer,
    pubs: Publishers,
    rate: int,
    seconds: float,
    flip_every: int,
    drain_s: float = 10.0,
    warmup: float = 1.0,
) -> Latency:
    """Values flipping every ``flip_every`` readings at ``rate``; arrival minus send time."""
    consumer.start_recording()
    c0 = consumer.consumed()
    start_at = time.time() + 0.2
    pubs.run(rate, warmup + seconds, start_at, flip_every=flip_every, record=True)
    time.sleep(max(0.0, start_at + warmup + seconds - time.time()))
    c1 = consumer.consumed()
    results = pubs.collect()
    published = sum(r.published for r in results)
    elapsed = max(r.elapsed_s for r in results)
    _wait_consumed(consumer, c0 + published, drain_s)
    time.sleep(0.05)
    arrivals = consumer.recorded()
    cutoff = int((start_at + warmup) * 1e9)
    sent = {(idx, ts): ns for r in results for idx, ts, ns in r.records if ns >= cutoff}
    lat: list[float] = []
    for idx, ts, ns in arrivals:
        send_ns = sent.pop((idx, ts), None)
        if send_ns is not None:
            lat.append((ns - send_ns) / 1e6)
    lat.sort()
    rates = (published / elapsed, (c1 - c0) / elapsed)
    if not lat:
        return Latency(0, len(sent), 0.0, 0.0, 0.0, *rates)
    return Latency(len(lat), len(sent), percentile(lat, 50), percentile(lat, 99), lat[-1], *rates)


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def pipeline_ceiling(
    registry: Registry, catalog: Sequence[tuple[str, str]], messages: int
) -> tuple[float, float]:
    """Readings/s of ``Pipeline.handle`` alone: quiet values, then one event per reading."""
    rates: list[float] = []
    for toggle in (False, True):
        sink = LatencySink()
        # A publish that drops everything: the retained alarm payload is still built.
        pipeline = Pipeline(registry, SystemClock(), [sink], lambda _t, _p, _r: None)
        base = time.time_ns() // 1_000_000 - 3_600_000
        batch: list[Inbound] = []
        for n in range(messages):
            _uid, topic = catalog[n % len(catalog)]
            value = (
                (HIGH_VALUE if (n // len(catalog)) % 2 == 0 else LOW_VALUE)
                if toggle
                else (n % 100) / 10
            )
            payload = b'{"ts":%d,"v":%.1f}' % (base + n, value)
            batch.append(Inbound(topic, payload, n % 65535 + 1, 1, base + n))
        started = time.perf_counter()
        for msg in batch:
            pipeline.handle(msg)
        rates.append(messages / (time.perf_counter() - started))
    return rates[0], rates[1]


# --- output --------------------------------------------------------------------------------


HEADER = (
    f"{'target/s':>9} {'published/s':>12} {'handled/s':>10} {'backlog@end':>12} "
    f"{'backlog+grace':>14} {'drained in':>11} {'bp waits':>9}  result"
)


def format_row(row: StepRow) -> str:
    """One table line."""
    drained = f"{row.drain_s:.2f} s" if row.drain_s is not None else "no"
    waits = "-" if row.waits is None else str(row.waits)
    verdict = "sustained" if row.sustained else "NOT sustained"
    if row.publisher_limited:
        verdict += " (publisher below target)"
    return (
        f"{row.target:>9,} {row.published_rate:>12,.0f} {row.consumed_rate:>10,.0f} "
        f"{row.backlog_end:>12,} {row.backlog_after:>14,} {drained:>11} {waits:>9}  {verdict}"
    )


def best_sustained(rows: Sequence[StepRow]) -> tuple[float, bool]:
    """Highest published rate among sustained steps; ``True`` if the ladder never failed."""
    rates = [r.published_rate for r in rows if r.sustained]
    return (max(rates) if rates else 0.0), all(r.sustained for r in rows)


def machine_info(broker: str) -> list[str]:
    """Lines describing where the figures come from."""
    try:
        out = subprocess.run([broker, "-h"], capture_output=True, text=True, timeout=5, check=False)
        mosq = (out.stdout or out.stderr).splitlines()[0].strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        mosq = "mosquitto (version unknown)"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, load average {load}",
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"paho-mqtt {paho.mqtt.__version__}, {mosq}",
    ]


# --- main ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """Parsed command line."""

    steps: tuple[int, ...]
    step_seconds: float
    sensors: int
    publishers: int
    latency_rate: int
    latency_seconds: float
    alarm_every: int
    grace: float
    refine: int
    publisher: str
    max_inflight: int
    max_queued: int
    tcp_nodelay: bool
    pin_cpu: int | None
    quick: bool
    storage: bool = False


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Command-line options; ``--quick`` changes the defaults, explicit flags still win."""
    cpus = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--steps",
        help="comma-separated target rates in msg/s "
        f"(default {','.join(map(str, DEFAULT_STEPS))}; "
        f"--quick {','.join(map(str, QUICK_STEPS))})",
    )
    p.add_argument("--step-seconds", type=float, help="length of each step (default 5, quick 2)")
    p.add_argument("--sensors", type=int, default=1000, help="sensors in the generated registry")
    p.add_argument(
        "--publishers",
        type=int,
        default=max(1, min(4, cpus // 4)),
        help="publisher processes (default: a quarter of the CPUs, 1 to 4)",
    )
    p.add_argument("--latency-rate", type=int, default=5000, help="msg/s of the latency run")
    p.add_argument(
        "--latency-seconds",
        type=float,
        help="measured length of the latency run after 1 s warm-up (default 5, quick 3)",
    )
    p.add_argument(
        "--grace",
        type=float,
        help="seconds after a step for the backlog to drain (default 0.5, quick 0.3)",
    )
    p.add_argument(
        "--refine",
        type=int,
        help="extra steps bisecting between the last sustained and the first failed step "
        "(default 2, quick 1)",
    )
    p.add_argument(
        "--publisher",
        choices=("raw", "paho"),
        default="raw",
        help="load generator: a minimal socket MQTT publisher (default) or paho-mqtt",
    )
    p.add_argument(
        "--max-inflight",
        type=int,
        default=1000,
        help="mosquitto max_inflight_messages (per subscriber, QoS 1)",
    )
    p.add_argument(
        "--max-queued",
        type=int,
        default=5_000_000,
        help="mosquitto max_queued_messages (per session)",
    )
    p.add_argument(
        "--alarm-every",
        type=int,
        default=25,
        help="in the latency run, each sensor's value flips between 60 and 5 %%LEL every N-th "
        "reading, so 1 reading in N raises or clears an alarm (default 25: 200 alarm events/s "
        "at 5k msg/s; 1 = every reading, the worst case)",
    )
    p.add_argument(
        "--pin-cpu",
        type=int,
        help="pin this process (so the runner's and the bare subscriber's threads) to one CPU; "
        "the broker and the publishers are started before and stay unpinned",
    )
    p.add_argument(
        "--tcp-nodelay",
        action="store_true",
        help="add 'set_tcp_nodelay true' to the broker config (mosquitto's default and the "
        "test helper's config leave Nagle's algorithm on)",
    )
    p.add_argument("--quick", action="store_true", help="a ~40 s run with fewer, shorter steps")
    p.add_argument(
        "--storage",
        action="store_true",
        help="the runner also spools every reading and drains it to a real VictoriaMetrics",
    )
    a = p.parse_args(argv)
    steps: tuple[int, ...] = QUICK_STEPS if a.quick else DEFAULT_STEPS
    if a.steps:
        try:
            steps = tuple(int(s) for s in a.steps.split(","))
        except ValueError:
            p.error(f"--steps takes comma-separated whole numbers, got {a.steps!r}")
    if a.sensors < 1 or a.publishers < 1 or not steps or min(steps) < 1:
        p.error("--sensors, --publishers and every step must be positive")
    return Options(
        steps=steps,
        step_seconds=a.step_seconds or (2.0 if a.quick else 5.0),
        sensors=a.sensors,
        publishers=min(a.publishers, a.sensors),
        latency_rate=a.latency_rate,
        alarm_every=a.alarm_every,
        latency_seconds=a.latency_seconds or (3.0 if a.quick else 5.0),
        grace=a.grace if a.grace is not None else (0.3 if a.quick else 0.5),
        publisher=a.publisher,
        refine=a.refine if a.refine is not None else (1 if a.quick else 2),
        max_inflight=a.max_inflight,
        max_queued=a.max_queued,
        tcp_nodelay=a.tcp_nodelay,
        pin_cpu=a.pin_cpu,
        quick=a.quick,
        storage=a.storage,
    )


@dataclass(slots=True)
class Outcome:
    """Figures of one consumer."""

    latency: Latency | None = None
    rows: list[StepRow] = field(default_factory=list)


def _measure(consumer: Consumer, pubs: Publishers, opts: Options) -> Outcome:
    out = Outcome()
    print(f"\n== {consumer.name} ==", flush=True)
    out.latency = run_latency(
        consumer, pubs, opts.latency_rate, opts.latency_seconds, opts.alarm_every
    )
    print(
        f"  latency at {opts.latency_rate:,} msg/s, 1 reading in {opts.alarm_every} raising "
        "or clearing an alarm: "
        f"{out.latency.format()}",
        flush=True,
    )
    print(f"  ladder ({opts.step_seconds:g} s steps, grace {opts.grace:g} s):", flush=True)
    out.rows = run_ladder(consumer, pubs, opts.steps, opts.step_seconds, opts.grace, opts.refine)
    return out


def _print_table(name: str, what: str, rows: Sequence[StepRow]) -> None:
    print(f"\n{name} (handled = {what})")
    print(HEADER)
    for row in rows:
        print(format_row(row))


def _summary(bare: Outcome, runner: Outcome, latency_rate: int) -> None:
    b_rate, b_open = best_sustained(bare.rows)
    r_rate, r_open = best_sustained(runner.rows)
    b_peak = max((r.consumed_rate for r in bare.rows), default=0.0)
    r_peak = max((r.consumed_rate for r in runner.rows), default=0.0)
    ratio = r_rate / b_rate if b_rate else float("nan")
    print("\nsummary")
    print(f"  {'':36} {'bare paho':>11} {'runner':>11} {'runner/bare':>12}  project target")
    print(
        f"  {'highest sustained rate (msg/s)':36} {b_rate:>10,.0f}{'+' if b_open else ' '}"
        f"{r_rate:>11,.0f}{'+' if r_open else ' '}{ratio:>12.2f}  "
        f"runner/bare >= {TARGET_RATIO} ({'met' if ratio >= TARGET_RATIO else 'NOT met'})"
    )
    peak_ratio = r_peak / b_peak if b_peak else float("nan")
    print(
        f"  {'peak handled rate in a step (msg/s)':36} {b_peak:>10,.0f} {r_peak:>11,.0f} "
        f"{peak_ratio:>12.2f}"
    )
    for label in ("p50", "p99", "max"):
        bv = getattr(bare.latency, label) if bare.latency and bare.latency.count else math.nan
        rv = getattr(runner.latency, label) if runner.latency and runner.latency.count else math.nan
        target = ""
        if label == "p99":
            met = "met" if rv <= TARGET_P99_MS else "NOT met"
            target = f"runner p99 <= {TARGET_P99_MS:g} ms ({met})"
        what = f"latency {label} @ {latency_rate:,} msg/s (ms)"
        print(f"  {what:36} {bv:>10.2f} {rv:>12.2f} {'':>12}  {target}")
    if b_open or r_open:
        print("  (+ = the highest step was still sustained: the real ceiling is higher)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    opts = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The pipeline logs every alarm event at WARNING/INFO; at thousands per second that would
    # measure the terminal. Alarm events still reach the sinks.
    logging.getLogger("earlywarn.pipeline").setLevel(logging.ERROR)

    def on_term(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ew-bench-")))
        broker = Mosquitto(
            tmp / "broker",
            max_inflight=opts.max_inflight,
            max_queued=opts.max_queued,
            tcp_nodelay=opts.tcp_nodelay,
        )
        print("earlywarn end-to-end benchmark (bench/e2e.py)")
        for line in machine_info(broker.binary):
            print(line)
        print(
            f"broker: max_inflight_messages {opts.max_inflight}, max_queued_messages "
            f"{opts.max_queued:,}, set_tcp_nodelay {str(opts.tcp_nodelay).lower()}; "
            f"runner: RunSettings defaults (queue_capacity "
            f"{RunSettings().queue_capacity}, batch_max {RunSettings().batch_max}, "
            "publish_alarms on), alarm log lines off"
        )
        print(
            f"load: {opts.sensors} combustible_gas sensors, {opts.publishers} {opts.publisher} "
            f"publisher process(es), QoS 1, single-reading JSON, steps {list(opts.steps)}; "
            f"sustained = handled >= {SUSTAINED_FRACTION:.0%} of published within the step "
            f"+ {opts.grace:g} s",
            flush=True,
        )
        catalog = write_registry(tmp / "registry", opts.sensors)
        registry = load_registry(tmp / "registry")
        if len(registry.sensors) != opts.sensors:
            msg = f"registry has {len(registry.sensors)} sensors, expected {opts.sensors}"
            raise RuntimeError(msg)
        quiet, toggling = pipeline_ceiling(registry, catalog, 20_000 if opts.quick else 50_000)
        print(
            f"in-process ceiling (Pipeline.handle in a loop; no MQTT, no acks, retained alarm "
            f"payload built but not sent): "
            f"{quiet:,.0f} readings/s quiet, {toggling:,.0f} readings/s with an alarm event "
            "per reading",
            flush=True,
        )

        broker.start()
        stack.callback(broker.stop)
        topics = [t for _, t in catalog]
        pubs = Publishers("127.0.0.1", broker.port, opts.publishers, topics, opts.publisher)
        stack.callback(pubs.close)
        pubs.wait_ready()
        if opts.pin_cpu is not None:
            # Threads started from now on (runner, paho) inherit the affinity of this thread.
            os.sched_setaffinity(0, {opts.pin_cpu})
            print(f"consumers pinned to CPU {opts.pin_cpu} (broker and publishers are not)")

        bare = BareConsumer("127.0.0.1", broker.port, {t: i for i, t in enumerate(topics)})
        bare.start()
        with _stopping(bare.stop):
            bare_out = _measure(bare, pubs, opts)
        wipe_session("127.0.0.1", broker.port, bare.client_id)

        storage = None
        if opts.storage:
            victoria = VictoriaMetrics(tmp / "victoria")
            victoria.start()
            stack.callback(victoria.stop)
            spool = StorageSettings(influx_url=victoria.url, spool_path=str(tmp / "spool.db"))

            def storage(store: AlertStore | None) -> StorageRuntime:
                return StorageRuntime(spool, registry, SystemClock(), store)

            print(f"runner stores every reading: spool {tmp / 'spool.db'} → {victoria.url}")
        runner = RunnerConsumer(
            registry, broker.url, {u: i for i, (u, _) in enumerate(catalog)}, storage
        )
        runner.thread.start()
        with _stopping(lambda: _stop_runner(runner)):
            runner_out = _measure(runner, pubs, opts)
            snap = runner.snapshot()
        wipe_session("127.0.0.1", broker.port, runner.client_id)

        _print_table("bare paho subscriber", "messages received by on_message", bare_out.rows)
        _print_table("embedded runner", "runner counter 'evaluated'", runner_out.rows)
        _summary(bare_out, runner_out, opts.latency_rate)
        problems = {
            k: v for k, v in snap.items() if k in ("rejected", "stale", "deadletters") and v
        }
        if problems:
            print(f"  runner counters show problems: {problems}")
        print(f"\ntotal run time {time.monotonic() - started:.0f} s")
    return 0


def _stop_runner(runner: RunnerConsumer) -> None:
    try:
        runner.thread.stop()
    except Exception:
        log.exception("the runner did not stop cleanly")


@contextlib.contextmanager
def _stopping(stop: Callable[[], None]) -> Iterator[None]:
    try:
        yield
    finally:
        stop()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)
