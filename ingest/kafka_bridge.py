"""The MQTT→Kafka bridge: readings from a shared subscription into ``ew.readings``.

The guarantee is at-least-once. A message is acknowledged to the MQTT broker (PUBACK) only
after Kafka has acknowledged its record with ``acks=all``; until then the broker keeps it in
the bridge's session and sends it again after a crash or reconnect. A batch that Kafka refuses
is sent again whole, so a record Kafka did take before the failure may be written twice; the
workers drop such duplicates as stale readings. While Kafka is away the bridge stops taking
messages (the hand-off fills, paho stops reading, the broker holds them) and retries with
backoff; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ingest.handoff import Handoff
from ingest.kafka_records import DEADLETTER_TOPIC, READINGS_TOPIC, KafkaRecord, record_for
from ingest.kafka_retry import sleep_unless, start_when_kafka_answers
from ingest.mqtt import Inbound, MqttEndpoint
from ingest.shared_subscription import shared_subscription

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    """Everything the bridge needs; the CLI fills it from flags and ``EARLYWARN_*``."""

    mqtt: MqttEndpoint
    kafka: str
    client_id: str
    share_group: str = "earlywarn-bridge"
    queue_capacity: int = 10_000
    batch_max: int = 1000
    kafka_timeout_s: float = 30.0
    """How long one produce may take before the batch counts as failed and is retried."""
    retry_min_s: float = 0.5
    retry_max_s: float = 30.0


@dataclass(slots=True)
class BridgeCounters:
    """What the bridge did; printed when it stops."""

    received: int = 0
    acknowledged: int = 0
    kafka_failures: int = 0
    resent: int = 0
    """Records sent again after a failed batch (some may now be in Kafka twice)."""
    by_topic: dict[str, int] = field(default_factory=dict)

    def format(self) -> str:
        """Plain lines, one counter each."""
        rows = [
            ("received", self.received),
            ("forwarded to " + READINGS_TOPIC, self.by_topic.get(READINGS_TOPIC, 0)),
            ("sent to " + DEADLETTER_TOPIC, self.by_topic.get(DEADLETTER_TOPIC, 0)),
            ("acknowledged (MQTT)", self.acknowledged),
            ("kafka failures", self.kafka_failures),
            ("records sent again", self.resent),
        ]
        return "\n".join(f"  {name:<28}{value:>10}" for name, value in rows)


class KafkaBridge:
    """Moves messages from one MQTT share-group member to Kafka; ``run`` until ``stop``."""

    def __init__(self, settings: BridgeSettings) -> None:
        self.settings = settings
        self.counters = BridgeCounters()
        self._producer: AIOKafkaProducer | None = None

    async def run(self, stop: asyncio.Event) -> BridgeCounters:
        """Connect to Kafka (waiting for it), then MQTT, and bridge until ``stop`` is set.

        On stop, the messages already handed over are sent and acknowledged (unless Kafka
        is away: then they stay unacknowledged and the broker keeps them); the rest stay in
        the session for the next start or another member of the group.
        """
        s = self.settings
        loop = asyncio.get_running_loop()
        handoff: Handoff[Inbound] = Handoff(loop, s.queue_capacity)
        self._producer = await self._start_producer(stop)
        if self._producer is None:
            return self.counters
        mqtt = shared_subscription(s.mqtt, s.client_id, s.share_group, handoff)
        mqtt.start()
        log.info(
            "bridging %s (share group %s) to Kafka %s as %s",
            s.mqtt.url,
            s.share_group,
            s.kafka,
            s.client_id,
        )
        closer = asyncio.create_task(_close_on(stop, handoff))
        try:
            while batch := await handoff.get_batch(s.batch_max):
                self.counters.received += len(batch)
                if not await self._deliver(batch, stop):
                    break  # stopping with Kafka away: the rest stays unacknowledged too
                for item in batch:
                    mqtt.ack(item.mid, item.qos)
                self.counters.acknowledged += len(batch)
        finally:
            closer.cancel()
            mqtt.stop()
            if self._producer is not None:
                await self._producer.stop()
        return self.counters

    async def _start_producer(self, stop: asyncio.Event) -> AIOKafkaProducer | None:
        s = self.settings
        return await start_when_kafka_answers(
            lambda: AIOKafkaProducer(
                bootstrap_servers=s.kafka,
                client_id=s.client_id,
                acks="all",
                linger_ms=5,
                request_timeout_ms=round(s.kafka_timeout_s * 1000),
            ),
            stop,
            s.kafka,
            s.retry_min_s,
            s.retry_max_s,
        )

    async def _deliver(self, batch: list[Inbound], stop: asyncio.Event) -> bool:
        """Produce one batch until Kafka has all of it; ``False`` if stopped before that."""
        records = [record_for(m.topic, m.payload, m.received_ms) for m in batch]
        delay = self.settings.retry_min_s
        first = True
        while True:
            if not first:
                self.counters.resent += len(records)
            first = False
            error = await self._produce(records)
            if error is None:
                for record in records:
                    self.counters.by_topic[record.topic] = (
                        self.counters.by_topic.get(record.topic, 0) + 1
                    )
                if delay > self.settings.retry_min_s:
                    log.warning("Kafka at %s accepts records again", self.settings.kafka)
                return True
            self.counters.kafka_failures += 1
            if not stop.is_set():
                log.warning(
                    "Kafka at %s did not take %s records (%s); holding them unacknowledged on "
                    "the MQTT broker and trying again in %.1f s",
                    self.settings.kafka,
                    len(records),
                    error,
                    delay,
                )
                await sleep_unless(stop, delay)
                delay = min(delay * 2, self.settings.retry_max_s)
                if not stop.is_set():
                    await self._renew_producer(stop)
            if stop.is_set():
                log.warning(
                    "stopping while Kafka refuses records (%s): %s messages stay "
                    "unacknowledged on the MQTT broker and will be delivered again",
                    error,
                    len(batch),
                )
                return False

    async def _renew_producer(self, stop: asyncio.Event) -> None:
        """Replace the producer after a failure: new connections and metadata fetched anew,
        so a Kafka that came back without a topic creates it instead of being sent records
        for a topic it no longer has (a restarted tansu acknowledges those and loses them)."""
        if self._producer is not None:
            await self._producer.stop()
        self._producer = await self._start_producer(stop)

    async def _produce(self, records: list[KafkaRecord]) -> str | None:
        """Send every record and wait for Kafka's acknowledgements; the first error in plain
        words, or ``None`` when all were written."""
        producer = self._producer
        if producer is None:
            return "the Kafka producer is not running"
        futures: list[asyncio.Future[Any]] = []
        try:
            for r in records:
                futures.append(
                    await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
                )
        except KafkaError as exc:
            await asyncio.gather(*futures, return_exceptions=True)
            return _describe(exc)
        results = await asyncio.gather(*futures, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            return _describe(errors[0])
        return None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


async def _close_on(stop: asyncio.Event, handoff: Handoff[Inbound]) -> None:
    await stop.wait()
    handoff.close()
