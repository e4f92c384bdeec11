"""The distributed runner's worker: a Faust app over ``ew.readings``.

The readings of the partitions this worker owns are taken a fetch at a time, straight out of
Faust's consumer (:mod:`earlywarn.worker_consumer`: Faust's per-record delivery cost six times
the evaluation), run through :class:`~earlywarn.worker_core.WorkerCore` (the embedded runner's
pipeline and rules), and then, in this order:

1. produces the alarm events to ``ew.alarms`` (keyed by alarm id) and the rejects to
   ``ew.deadletter``, and waits until Kafka has them;
2. writes the new state of every sensor and zone the batch touched to the changelog-backed
   tables ``sensor-state`` and ``zone-state``, and waits until Kafka has those;
3. only then acknowledges the batch to Faust (the offsets it commits).

If Kafka does not take them, the writes are tried again until it does: the batch is neither
acknowledged nor evaluated a second time meanwhile (that would find its readings already seen
and lose their alarms), and no further batch is taken.

So a committed offset never runs ahead of the saved state, and saved state never runs ahead
of the alarms it implies. A worker killed anywhere in between leaves readings that the next
owner evaluates again: from the same state they give the same events (alarm ids derive from
the sensor, rule and start), and readings the saved state has seen already are ``stale``.
Alarm events may therefore reach ``ew.alarms`` twice; the alerter applies each once.

Changelog records go to the partition the sensor's readings come from (its site key), not to
the partition of whichever event Faust last saw: a batch mixes partitions, and recovery gives
a worker the changelog partitions of the readings partitions it owns.

A timer lets time pass for the owned sensors' offline rules; another one notices a changed
registry directory and rebuilds the rules with the saved states (no restart).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from alerting.alarm_records import ALARMS_TOPIC, alarm_key, alarm_value
from earlywarn.clock import Clock
from earlywarn.registry import Registry, RegistryError, load_registry
from earlywarn.worker_consumer import BatchNotTakenError, BulkApp
from earlywarn.worker_core import Outcome, WorkerCore
from ingest.kafka_records import DEADLETTER_TOPIC, HEADER_RECEIVED_MS, HEADER_TOPIC, READINGS_TOPIC
from ingest.mqtt import Inbound

log = logging.getLogger(__name__)

SEND_RETRY_S = (1.0, 2.0, 5.0, 10.0)
"""Pauses between attempts to hand a batch's results to Kafka; the last one repeats."""

SENSOR_TABLE = "sensor-state"
ZONE_TABLE = "zone-state"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """What ``earlywarn worker`` is told; the defaults suit a production Kafka."""

    kafka: str = "127.0.0.1:9092"
    registry: Path = Path("registry")
    app_id: str = "earlywarn"
    """The consumer group of all workers, and the prefix of their changelog topics."""
    partitions: int = 8
    """Of ``ew.readings`` and the changelogs: as many workers as this can share the load."""
    data_dir: Path = Path("earlywarn-worker-data")
    batch: int = 2000
    """Most readings one fetch gives the rules at once."""
    tick_s: float = 1.0
    reload_s: float = 10.0
    session_timeout_s: float = 30.0
    """How long a silent worker keeps its partitions (a killed one's move after this)."""
    standby_replicas: int = 0
    """Other workers applying each changelog partition as it changes. Faust's in-memory
    tables keep no offset, so the worker taking a partition over reads its changelog from
    the beginning whether it was a standby or not: a standby only costs CPU (as much as the
    evaluation, measured)."""
    language: str = "zh"
    fetch_wait_ms: int = 100
    """Longest a fetch waits for new records. Kafka answers a waiting fetch as soon as a
    record arrives, so this only matters when idle; a broker that holds every fetch for the
    whole wait (tansu does) adds up to this much latency. Faust's own value is 1,500 ms."""


def _bootstrap(kafka: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in kafka.split(",") if host.strip()]


def registry_fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of every file of the registry: a change of any
    means the registry is read again."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    out: list[tuple[str, int, int]] = []
    for p in files:
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((str(p.relative_to(path)), st.st_size, st.st_mtime_ns))
    return tuple(out)


def _headers(message: Any) -> dict[str, bytes]:
    raw = message.headers or ()
    items = raw.items() if isinstance(raw, Mapping) else raw
    return {str(k): bytes(v) for k, v in items if v is not None}


def to_inbound(message: Any, now_ms: int) -> Inbound:
    """A record of ``ew.readings`` as the pipeline's input; a record without its topic header
    gets an empty topic, which the decoder rejects (dead-letter ``bad_topic``)."""
    headers = _headers(message)
    topic = headers.get(HEADER_TOPIC, b"").decode("utf-8", "replace")
    try:
        received = int(headers[HEADER_RECEIVED_MS])
    except (KeyError, ValueError):
        received = now_ms
    value = message.value if message.value is not None else b""
    return Inbound(topic, bytes(value), 0, 1, received)


class Worker:
    """The Faust app of one worker process, around a :class:`WorkerCore`."""

    def __init__(self, settings: WorkerSettings, registry: Registry, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.core = WorkerCore(
            registry,
            clock,
            settings.partitions,
            language="en" if settings.language == "en" else "zh",
        )
        self._fingerprint = registry_fingerprint(settings.registry)
        self.stats = {"batches": 0, "alarm events sent": 0, "dead letters sent": 0}
        self.fatal: str | None = None
        """Why the worker refused to run, if it did (the command then exits 2)."""
        self.halt: Callable[[], None] = lambda: os.kill(os.getpid(), signal.SIGTERM)
        """Faust's own orderly stop (tests replace it)."""
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        """Waits between attempts to write a batch (tests replace it)."""
        self._lock = asyncio.Lock()
        """Serialises every change of the core with the writes of its result."""
        app = BulkApp(
            settings.app_id,
            broker=_bootstrap(settings.kafka),
            store="memory://",
            datadir=str(settings.data_dir),
            topic_partitions=settings.partitions,
            web_enabled=False,
            producer_acks=-1,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=settings.session_timeout_s,
            broker_heartbeat_interval=max(0.5, settings.session_timeout_s / 10),
            broker_rebalance_timeout=max(10.0, settings.session_timeout_s * 2),
            table_standby_replicas=settings.standby_replicas,
            topic_replication_factor=1,
            broker_max_poll_records=settings.batch,
        )
        self.app = app
        raw: dict[str, Any] = {
            "key_type": bytes,
            "value_type": bytes,
            "key_serializer": "raw",
            "value_serializer": "raw",
        }
        self.readings = app.topic(READINGS_TOPIC, partitions=settings.partitions, **raw)
        # bytes keys and values: Faust's "raw" codec, the JSON is ours (earlywarn.worker_core).
        table: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
        self.sensor_table = app.Table(SENSOR_TABLE, partitions=settings.partitions, **table)
        self.zone_table = app.Table(ZONE_TABLE, partitions=settings.partitions, **table)
        self.sensor_table.on_recover(self._recovered)
        self._changelog = {
            t.name: t.changelog_topic.get_topic_name() for t in (self.sensor_table, self.zone_table)
        }
        """Changelog topic of each table, by the table's name."""
        app.bulk_topic(self.readings, self._evaluate)
        app.timer(settings.tick_s, name="offline-tick")(self._tick)
        app.timer(settings.reload_s, name="registry-reload")(self._reload)

    # -- state -------------------------------------------------------------------------------

    def _saved(self, table: Any) -> Callable[[str], bytes | None]:
        def lookup(uid: str) -> bytes | None:
            value = table.data.get(uid.encode())
            return None if value is None else bytes(value)

        return lookup

    def _owned_partitions(self) -> set[int]:
        return {
            tp.partition
            for tp in self.app.assignor.assigned_actives()
            if tp.topic == READINGS_TOPIC
        }

    def _tune_fetch_wait(self) -> None:
        """Set the consumer's fetch wait (:attr:`WorkerSettings.fetch_wait_ms`): Faust fixes it
        at 1,500 ms when it builds its aiokafka consumer, with no setting, so it is changed on
        the running consumer's fetcher, which reads it for every fetch request."""
        consumer = getattr(getattr(self.app.consumer, "_thread", None), "_consumer", None)
        fetcher = getattr(consumer, "_fetcher", None)
        if fetcher is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
            log.warning("could not set the fetch wait: this Faust or aiokafka is laid out anew")
            return
        fetcher._fetch_max_wait_ms = self.settings.fetch_wait_ms

    async def _recovered(self) -> None:
        """After every rebalance, once the tables hold the owned partitions' changelogs: take
        the saved states of the sensors now owned."""
        self._tune_fetch_wait()
        actual = self.app.consumer.topic_partitions(READINGS_TOPIC)
        if actual is not None and actual != self.settings.partitions:
            self._refuse(
                f"{READINGS_TOPIC} has {actual} partitions but this worker was started with "
                f"--partitions {self.settings.partitions}: it would look for each site's "
                f"state in the wrong partition. Start every worker with --partitions {actual}."
            )
            return
        owned = self._owned_partitions()
        async with self._lock:
            self.core.load(owned, self._saved(self.sensor_table), self._saved(self.zone_table))

    def _refuse(self, reason: str) -> None:
        """Stop without evaluating anything: a setting that would corrupt saved state."""
        self.fatal = reason
        log.critical("%s", reason)
        self.core.owned = frozenset()  # what was already fetched is left uncommitted
        self.halt()

    async def _save(self, out: Outcome) -> None:
        """Produce the batch's alarms and rejects, then its new states, waiting for each.

        Called under :attr:`_lock` right after the core changed, so the states written are
        those of this batch, and two writes of one sensor reach the changelog in order.

        Records go straight to Faust's producer (``app.producer.send``), not through
        ``Topic.send`` and ``Table.__setitem__``: those add a buffer, sensors and callbacks per
        record, which took a third of a worker's time; the producer batches them as it sends.
        Each table's local copy is updated here, as ``__setitem__`` would.
        """
        writes: list[tuple[str, int, bytes, bytes]] = []  # (changelog, partition, key, value)
        for table, changed, value_of in (
            (self.sensor_table, out.sensors, self.core.sensor_value),
            (self.zone_table, out.zones, self.core.zone_value),
        ):
            topic = self._changelog[table.name]
            for uid, partition in changed.items():
                key, value = uid.encode(), value_of(uid)
                table.data[key] = value  # what a registry reload reads from now on
                writes.append((topic, partition, key, value))
        failures = 0
        while True:
            try:
                await self._send(out, writes)
            except Exception as exc:  # whatever Kafka or the network raised: try again
                if self.app.should_stop:
                    raise
                delay = SEND_RETRY_S[min(failures, len(SEND_RETRY_S) - 1)]
                failures += 1
                log.error(
                    "Kafka did not take %d alarm events, %d dead letters and %d saved states "
                    "(%s: %s); trying again in %.0f s (attempt %d). No further readings are "
                    "evaluated meanwhile.",
                    len(out.alarms),
                    len(out.deadletters),
                    len(writes),
                    type(exc).__name__,
                    exc,
                    delay,
                    failures + 1,
                )
                await self.sleep(delay)
                continue
            if failures:
                log.warning("Kafka took the batch after %d failed attempts", failures)
            break
        self.stats["alarm events sent"] += len(out.alarms)
        self.stats["dead letters sent"] += len(out.deadletters)

    async def _send(self, out: Outcome, writes: Sequence[tuple[str, int, bytes, bytes]]) -> None:
        """Produce the alarms and rejects, then the changelog writes, waiting for each."""
        send = self.app.producer.send
        sent: list[Awaitable[Any]] = []
        for event in out.alarms:
            sent.append(
                await send(ALARMS_TOPIC, alarm_key(event), alarm_value(event), None, None, None)
            )
        for key, value in out.deadletters:
            sent.append(await send(DEADLETTER_TOPIC, key, value, None, None, None))
        if sent:
            await asyncio.gather(*sent)
        # The last record of each changelog partition goes alone, once the others are in:
        # a broker whose end offset is its last batch's first offset (tansu) would otherwise
        # end a successor's recovery before the rest of that batch. Kafka needs none of it;
        # it costs one round trip per batch.
        last = {(topic, partition): i for i, (topic, partition, _k, _v) in enumerate(writes)}
        alone = set(last.values())
        others = [w for i, w in enumerate(writes) if i not in alone]
        for round_ in (others, [writes[i] for i in sorted(alone)]):
            saved = [await send(t, k, v, p, None, None) for t, p, k, v in round_]
            if saved:
                await asyncio.gather(*saved)

    # -- readings and timers ----------------------------------------------------------------

    async def _evaluate(self, records: Sequence[Any]) -> None:
        """One fetch of ``ew.readings``; its offsets are committable once this returns."""
        if self.fatal is not None:
            raise BatchNotTakenError(f"this worker is stopping: {self.fatal}")
        owned = self.core.owned
        if any(r.partition not in owned for r in records):
            # Not while Faust keeps its rules (the flow is stopped from a revocation until
            # the tables are recovered); but were it to happen, committing such records
            # unevaluated would lose them, while leaving them only delays them.
            raise BatchNotTakenError(
                f"it holds readings of partitions this worker does not own "
                f"({sorted({r.partition for r in records} - owned)}; owned {sorted(owned)})"
            )
        now = self.clock.now_ms()
        messages = [to_inbound(r, now) for r in records]
        async with self._lock:
            try:
                out = self.core.handle(messages)
            except Exception as exc:
                # A defect, not bad input (the pipeline dead-letters that). The batch is not
                # acknowledged: stopping moves its partitions to a worker that evaluates them
                # again from the saved state, and the exit is loud for the supervisor.
                log.critical("evaluating %d readings failed", len(messages), exc_info=True)
                self._refuse(f"evaluating a batch of readings failed: {exc!r}")
                raise BatchNotTakenError("the evaluation failed") from exc
            await self._save(out)
        self.stats["batches"] += 1

    async def _tick(self) -> None:
        if not self.core.owned:
            return
        async with self._lock:
            await self._save(self.core.tick(self.clock.now_ms()))

    async def _reload(self) -> None:
        fingerprint = registry_fingerprint(self.settings.registry)
        if fingerprint == self._fingerprint:
            return
        self._fingerprint = fingerprint
        try:
            registry = await asyncio.to_thread(load_registry, self.settings.registry)
        except RegistryError as exc:
            log.error(
                "the registry in %s changed but cannot be used; the workers go on with the "
                "previous one until it is fixed:\n%s",
                self.settings.registry,
                exc,
            )
            return
        async with self._lock:
            self.core.load(
                self.core.owned,
                self._saved(self.sensor_table),
                self._saved(self.zone_table),
                registry=registry,
            )
        log.warning(
            "registry reloaded from %s: %d sensors, %d zones",
            self.settings.registry,
            len(registry.sensors),
            len(registry.zones),
        )

    def counters(self) -> dict[str, Any]:
        """What the worker did, for its exit report."""
        return {
            **self.core.counters.snapshot(),
            **self.stats,
            "device statuses (not evaluated)": self.core.statuses,
        }


def run_worker(worker: Worker, loglevel: str, report: Callable[[dict[str, Any]], None]) -> None:
    """Run until SIGINT/SIGTERM (Faust's worker installs the handlers); then report."""
    faust_worker = faust.Worker(worker.app, loglevel=loglevel, quiet=True)
    try:
        faust_worker.execute_from_commandline()
    except SystemExit:
        pass
    finally:
        report(worker.counters())


__all__: Sequence[str] = ("Worker", "WorkerSettings", "run_worker", "to_inbound")
