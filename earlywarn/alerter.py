"""The alerter of the distributed runner: Kafka's ``ew.alarms`` into the alert store and out to
people, and (with storage) ``ew.readings`` into the InfluxDB spool.

The workers evaluate the rules and write every alarm event to ``ew.alarms``; this process is
what ``earlywarn run`` does after the rules: it records each event in the alert store, escalates
until someone acknowledges, serves the acknowledgement links and the HTTP API, and feeds
storage. It reads with a consumer group and commits an offset only once what came before it is
in the alert store (SQLite committed) or in the spool (fsynced), so a crash makes Kafka deliver
those records again, never skips one. A record delivered again changes nothing: the store
ignores an event it already holds (the lifecycle's ``DUPLICATE``/``STALE`` verdicts), so it is
not notified twice; a reading stored again overwrites the same point (same series and
timestamp) in InfluxDB.

One alerter per alert store: the store is a local SQLite file and the escalation it drives
must run once. Escalation, acknowledgement and storage are the embedded runner's own objects
(:class:`~alerting.service.AlertService`, :class:`~alerting.ackweb.AckServer`,
:class:`~earlywarn.storage_wiring.StorageRuntime`), driven the same way.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from alerting.ackweb import AckServer
from alerting.alarm_records import ALARMS_TOPIC, alarm_from_value
from alerting.service import AlertService
from earlywarn.clock import Clock
from earlywarn.model import Reading
from earlywarn.periodic import every
from earlywarn.registry import Registry
from earlywarn.storage_wiring import StorageRuntime
from ingest.decode import Limits, decode_reading_message
from ingest.kafka_records import HEADER_TOPIC, READINGS_TOPIC
from ingest.kafka_retry import sleep_unless, start_when_kafka_answers
from ingest.topics import parse_device_topic

log = logging.getLogger(__name__)

Records = Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]


@dataclass(frozen=True, slots=True)
class AlerterSettings:
    """What the alerter needs besides the registry, the alert service and the clock."""

    kafka: str = "127.0.0.1:9092"
    """Bootstrap servers, ``host:port[,host:port]``."""
    group: str = "earlywarn-alerter"
    """Consumer group on ``ew.alarms``; the storage consumer uses ``{group}-storage``."""
    ack_listen: str | None = None
    """``host:port`` of the acknowledgement web server (``None``: not served)."""
    escalate_s: float = 1.0
    """How often due escalation steps are looked for (a call is at most this late)."""
    store_every_s: float = 1.0
    """How often alarm history and site snapshots go to the spool."""
    batch_max: int = 500
    poll_s: float = 0.5
    """The longest a poll waits for records: also how long stopping may take."""
    limits: Limits = field(default_factory=Limits)
    session_timeout_ms: int = 10_000
    """Kafka's group session: a crashed alerter's partitions move after this long (joining
    takes about half of it, tansu and Kafka alike; tests shorten it)."""
    heartbeat_interval_ms: int = 3_000
    retry_min_s: float = 0.5
    retry_max_s: float = 30.0

    @property
    def storage_group(self) -> str:
        """The group of the readings consumer: its own offsets, apart from the alarms'."""
        return f"{self.group}-storage"


@dataclass
class AlerterCounters:
    """What the alerter did; printed when it stops. Mutated only on its event loop."""

    alarm_events: int = 0
    """Records read from ``ew.alarms``."""
    applied: int = 0
    """Events that changed the alert store (and so may have notified someone)."""
    duplicates: int = 0
    """Events the store already held or that came too late (redeliveries): ignored."""
    undecodable: int = 0
    """``ew.alarms`` records that are not an alarm event: logged and skipped."""
    store_failures: int = 0
    """Times the alert store refused a write; the batch was read again after a pause."""
    not_recorded: int = 0
    """Events an internal error kept out of the store (a defect: the log has each)."""
    readings_records: int = 0
    """Records read from ``ew.readings`` (storage only)."""
    readings_stored: int = 0
    """Accepted readings handed to the spool."""
    readings_rejected: int = 0
    """Messages (or back-fill elements) the decoder rejected; the workers dead-letter them."""
    device_status: int = 0
    """``…/status`` records of ``ew.readings``: not readings, not stored."""
    commit_failures: int = 0
    """Offset commits Kafka refused (a rebalance); those records come again, harmlessly."""

    def format(self) -> str:
        """Plain lines, one counter each."""
        rows = [
            ("alarm events received", self.alarm_events),
            ("applied to the alert store", self.applied),
            ("duplicates ignored", self.duplicates),
            ("undecodable, skipped", self.undecodable),
            ("alert store failures", self.store_failures),
            ("not recorded (defects)", self.not_recorded),
            ("readings records received", self.readings_records),
            ("readings stored", self.readings_stored),
            ("readings rejected", self.readings_rejected),
            ("device status records", self.device_status),
            ("offset commits refused", self.commit_failures),
        ]
        return "\n".join(f"  {name:<28}{value:>10}" for name, value in rows)


class _StoreUnavailableError(Exception):
    """The alert store could not take an event now (locked, disk full); try again later."""


class Alerter:
    """Consumes ``ew.alarms`` (and ``ew.readings`` with storage); ``run`` until ``stop``."""

    def __init__(
        self,
        registry: Registry,
        settings: AlerterSettings,
        alerts: AlertService,
        clock: Clock,
        *,
        ack_server: AckServer | None = None,
        storage: StorageRuntime | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.alerts = alerts
        self.clock = clock
        self.ack_server = ack_server
        self.storage = storage
        self.counters = AlerterCounters()
        self.consuming = asyncio.Event()
        """Set once the alarm consumer has its partitions (tests wait for it)."""

    async def run(self, stop: asyncio.Event) -> AlerterCounters:
        """Serve until ``stop`` is set; return the final counters.

        On stop: no new records are taken, the batches in hand are applied and their offsets
        committed, then the consumers leave their groups and storage flushes its spool.
        """
        # Before the first record: settle sends a killed alerter left mid-way and plan every
        # open alarm, so an overdue call goes out now, not at the next event.
        self.alerts.start()
        if self.storage is not None:
            self.storage.start()
        if self.ack_server is not None and self.settings.ack_listen:
            host, _, port = self.settings.ack_listen.rpartition(":")
            await self.ack_server.start(host or "127.0.0.1", int(port))
        escalator = asyncio.create_task(
            every(self.settings.escalate_s, self.alerts.pump_async, "sending escalation steps")
        )
        feeder = (
            asyncio.create_task(
                every(self.settings.store_every_s, self._step_storage, "feeding the storage spool")
            )
            if self.storage is not None
            else None
        )
        consumers = [asyncio.create_task(self._consume_alarms(stop))]
        if self.storage is not None:
            consumers.append(asyncio.create_task(self._consume_readings(self.storage, stop)))
        try:
            waiter = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([waiter, *consumers], return_when=asyncio.FIRST_COMPLETED)
            stop.set()  # a consumer that ended on a defect stops the others too
            waiter.cancel()
            await asyncio.gather(*consumers, return_exceptions=True)
            for task in consumers:
                if task in done and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            escalator.cancel()
            if feeder is not None:
                feeder.cancel()
            if self.storage is not None:
                try:
                    self.storage.catch_up()  # the last audit rows, on this (the store's) thread
                finally:
                    await asyncio.to_thread(self.storage.stop)
            if self.ack_server is not None:
                await self.ack_server.stop()
        return self.counters

    def _step_storage(self) -> None:
        if self.storage is not None:
            self.storage.step(self.clock.now_ms())

    # -- ew.alarms -------------------------------------------------------------------------

    async def _consume_alarms(self, stop: asyncio.Event) -> None:
        consumer = await self._start_consumer(ALARMS_TOPIC, self.settings.group, stop)
        if consumer is None:
            return
        self.consuming.set()
        delay = self.settings.retry_min_s
        try:
            while not stop.is_set():
                batch = await self._poll(consumer)
                if not batch:
                    continue
                done, complete = self._apply_alarms(batch)
                await self._commit(consumer, done)
                if complete:
                    delay = self.settings.retry_min_s
                    continue
                # The store refused a write: read the rest again after a pause, in order.
                for tp, records in batch.items():
                    consumer.seek(tp, done.get(tp, records[0].offset))
                await sleep_unless(stop, delay)
                delay = min(delay * 2, self.settings.retry_max_s)
        finally:
            await consumer.stop()

    def _apply_alarms(self, batch: Records) -> tuple[dict[TopicPartition, int], bool]:
        """Apply every record, in order per partition. Returns the next offset to commit of
        each partition, up to the first record the store could not take, and whether every
        record was taken."""
        done: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            for record in records:
                try:
                    self._apply_alarm(record)
                except _StoreUnavailableError:
                    return done, False
                done[tp] = record.offset + 1
        return done, True

    def _apply_alarm(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            if record.value is None:
                msg = "the record has no value"
                raise ValueError(msg)
            event = alarm_from_value(record.value)
        except ValueError as exc:
            self.counters.alarm_events += 1
            self.counters.undecodable += 1
            log.warning(
                "%s partition %d offset %d is not an alarm event, skipped: %s",
                record.topic,
                record.partition,
                record.offset,
                exc,
            )
            return
        # Not AlertService.emit: a store failure must hold the offset, and the outcome counts.
        try:
            applied = self.alerts.record(event)
        except sqlite3.Error as exc:
            self.counters.store_failures += 1
            log.error(
                "the alert store could not record %s (%s): will read it again",
                event.alarm_id,
                exc,
            )
            raise _StoreUnavailableError from exc
        except Exception:
            # A defect of ours on this one event: reading it again would fail again and hold
            # up every alarm behind it. The log has the traceback and the event.
            self.counters.alarm_events += 1
            self.counters.not_recorded += 1
            log.exception("internal error recording %s, skipped: %r", event.alarm_id, event)
            return
        self.counters.alarm_events += 1
        if applied is None:
            self.counters.duplicates += 1
            return
        self.counters.applied += 1

    # -- ew.readings (storage) -------------------------------------------------------------

    async def _consume_readings(self, storage: StorageRuntime, stop: asyncio.Event) -> None:
        consumer = await self._start_consumer(READINGS_TOPIC, self.settings.storage_group, stop)
        if consumer is None:
            return
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                batch = await self._poll(consumer)
                if not batch:
                    continue
                readings = self._decode_readings(batch)
                if readings:
                    storage.writer.put(readings)
                # Committed only once the spool has them (fsynced): the writer runs this
                # after every append queued before it.
                stored: asyncio.Future[None] = loop.create_future()
                storage.writer.then(functools.partial(loop.call_soon_threadsafe, _finish, stored))
                await stored
                self.counters.readings_stored += len(readings)
                await self._commit(
                    consumer, {tp: records[-1].offset + 1 for tp, records in batch.items()}
                )
        finally:
            await consumer.stop()

    def _decode_readings(self, batch: Records) -> list[Reading]:
        readings: list[Reading] = []
        now_ms = self.clock.now_ms()
        for records in batch.values():
            for record in records:
                self.counters.readings_records += 1
                headers = dict(record.headers)
                raw_topic = headers.get(HEADER_TOPIC)
                topic = raw_topic.decode("utf-8", "replace") if raw_topic is not None else ""
                address = parse_device_topic(topic)
                if address is not None and address.suffix == "status":
                    self.counters.device_status += 1
                    continue
                try:
                    decoded = decode_reading_message(
                        topic, record.value or b"", self.registry, now_ms, self.settings.limits
                    )
                except Exception:
                    log.exception(
                        "internal error decoding %s partition %d offset %d; not stored",
                        record.topic,
                        record.partition,
                        record.offset,
                    )
                    self.counters.readings_rejected += 1
                    continue
                readings.extend(decoded.readings)
                self.counters.readings_rejected += len(decoded.rejections)
        return readings

    # -- Kafka -----------------------------------------------------------------------------

    async def _start_consumer(
        self, topic: str, group: str, stop: asyncio.Event
    ) -> AIOKafkaConsumer | None:
        """A started consumer in ``group``; waits (logging in plain words) while Kafka does
        not answer. ``None`` when stopped first."""
        s = self.settings
        consumer: AIOKafkaConsumer | None = await start_when_kafka_answers(
            lambda: AIOKafkaConsumer(
                topic,
                bootstrap_servers=s.kafka,
                group_id=group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=s.session_timeout_ms,
                heartbeat_interval_ms=s.heartbeat_interval_ms,
                max_poll_records=s.batch_max,
            ),
            stop,
            s.kafka,
            s.retry_min_s,
            s.retry_max_s,
        )
        if consumer is not None:
            log.info("reading %s in group %s from %s", topic, group, s.kafka)
        return consumer

    async def _poll(self, consumer: AIOKafkaConsumer) -> Records:
        timeout_ms = round(self.settings.poll_s * 1000)
        batch: Records = await consumer.getmany(
            timeout_ms=timeout_ms, max_records=self.settings.batch_max
        )
        return batch

    async def _commit(
        self, consumer: AIOKafkaConsumer, offsets: Mapping[TopicPartition, int]
    ) -> None:
        if not offsets:
            return
        try:
            await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
        except KafkaError as exc:
            # The partitions moved (or Kafka is away): whoever reads them next gets these
            # records again, which changes nothing in the store or in InfluxDB.
            self.counters.commit_failures += 1
            log.warning("could not commit offsets (%s); those records will come again", exc)


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
