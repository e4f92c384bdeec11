"""The embedded runner: one asyncio process, MQTT → rules → alerting and storage.

paho's thread hands messages over (:mod:`ingest.handoff`); this loop takes them in batches,
runs the :class:`Pipeline`, and acknowledges each message to the broker only after it was
handled. On stop it takes no new messages, finishes those already handed over, and
disconnects; anything not yet acknowledged is redelivered to the persistent session later.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import Sequence

from alerting.ackweb import AckServer
from alerting.service import AlertService
from alerting.sinks import AlarmSink
from earlywarn.clock import Clock, SystemClock
from earlywarn.counters import Counters
from earlywarn.periodic import every
from earlywarn.pipeline import Pipeline
from earlywarn.registry import Registry
from earlywarn.settings import RunSettings
from earlywarn.storage_wiring import StorageRuntime
from ingest.handoff import Handoff
from ingest.mqtt import Inbound, MqttConnection, parse_mqtt_url

log = logging.getLogger(__name__)


class EmbeddedRunner:
    """Wires an MQTT connection to a pipeline; ``run`` until the stop event is set."""

    def __init__(
        self,
        registry: Registry,
        settings: RunSettings,
        clock: Clock | None = None,
        sinks: Sequence[AlarmSink] = (),
        *,
        alerts: AlertService | None = None,
        ack_server: AckServer | None = None,
        storage: StorageRuntime | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.endpoint = parse_mqtt_url(settings.mqtt_url)
        self.alerts = alerts
        self.ack_server = ack_server
        self.pipeline = Pipeline(
            registry,
            clock or SystemClock(),
            [*sinks, *([alerts] if alerts else [])],
            None,
            settings.limits,
            publish_alarms=settings.publish_alarms,
            language=settings.language,
        )
        if storage is not None:
            self.pipeline.readings_out = storage.writer.put
        self.connection: MqttConnection | None = None
        self.handoff: Handoff[Inbound] | None = None

    @property
    def counters(self) -> Counters:
        """Live counters (read them from the loop, or take a snapshot)."""
        return self.pipeline.counters

    async def run(self, stop: asyncio.Event) -> Counters:
        """Serve until ``stop`` is set; return the final counters."""
        loop = asyncio.get_running_loop()
        handoff: Handoff[Inbound] = Handoff(loop, self.settings.queue_capacity)
        connection = MqttConnection(
            self.endpoint, self.settings.client_id, handoff, keepalive=self.settings.keepalive_s
        )
        self.handoff, self.connection = handoff, connection
        self.pipeline.publish = lambda topic, payload, retain: connection.publish(
            topic, payload, qos=1, retain=retain
        )
        # The registry and rule objects live as long as the process: moving them out of the
        # collector's sight keeps its full collections short (they pause the event loop).
        gc.collect()
        gc.freeze()
        if self.alerts is not None:
            # Before the first reading: settle sends a killed process left mid-way and plan
            # every open alarm, so an overdue call goes out now, not at the next event.
            self.alerts.start()
        if self.storage is not None:
            self.storage.start()
        if self.ack_server is not None and self.settings.ack_listen:
            host, _, port = self.settings.ack_listen.rpartition(":")
            await self.ack_server.start(host or "127.0.0.1", int(port))
        log.info("connecting to %s as %s", self.endpoint.url, self.settings.client_id)
        connection.start()
        consumer = asyncio.create_task(self._consume(handoff, connection))
        ticker = asyncio.create_task(self._tick())
        escalator: asyncio.Task[None] | None = None
        feeder: asyncio.Task[None] | None = None
        if self.alerts is not None:
            # Due escalation steps, every escalate_s; sends run in worker threads.
            escalator = asyncio.create_task(
                every(self.settings.escalate_s, self.alerts.pump_async, "sending escalation steps")
            )
        if self.storage is not None:
            # Every second: alarm history and notifications into the spool; site snapshots.
            feeder = asyncio.create_task(
                every(1.0, self._step_storage, "feeding the storage spool", wait_first=True)
            )
        try:
            await stop.wait()
        finally:
            ticker.cancel()
            if escalator is not None:
                escalator.cancel()
            if feeder is not None:
                feeder.cancel()
            handoff.close()
            await consumer
            self.counters.backpressure = handoff.backpressure
            if self.storage is not None:
                # Before disconnecting: the last readings are stored and their messages
                # acknowledged, the last audit rows exported.
                try:
                    self.storage.catch_up()
                finally:
                    await asyncio.to_thread(self.storage.stop)
                self.counters.unstored += self.storage.writer.unstored
            await asyncio.to_thread(connection.stop)
            if self.ack_server is not None:
                await self.ack_server.stop()
        return self.counters

    @staticmethod
    def _ack(connection: MqttConnection, batch: Sequence[Inbound]) -> None:
        for msg in batch:
            connection.ack(msg.mid, msg.qos)

    def _step_storage(self) -> None:
        if self.storage is not None:
            self.storage.step(self.pipeline.clock.now_ms())

    async def _tick(self) -> None:
        """Clock ticks for offline detection, independent of whether readings arrive."""
        while True:
            await asyncio.sleep(self.settings.tick_s)
            # One tick of the whole registry: the offline rules are columns, so even ten
            # thousand sensors take well under a millisecond and delay no reading.
            try:
                self.pipeline.tick(self.pipeline.clock.now_ms())
            except Exception:
                # Offline detection must keep running even if one tick hit a defect.
                log.exception("internal error during a clock tick")

    async def _consume(self, handoff: Handoff[Inbound], connection: MqttConnection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await handoff.get_batch(self.settings.batch_max)
            if not batch:
                return
            self.pipeline.handle_batch(batch)
            if self.storage is not None:
                # Acknowledged once their readings are in the spool, which is written off
                # this loop; the acknowledgement itself is sent from here, as without storage
                # (paho's calls from a second thread would contend with its network thread).
                ack = functools.partial(self._ack, connection, batch)
                self.storage.writer.then(functools.partial(loop.call_soon_threadsafe, ack))
            else:
                self._ack(connection, batch)
            self.counters.backpressure = handoff.backpressure
            # A short pause after a partial batch lets readings gather, so the loop wakes once
            # per batch rather than once per message (cross-thread wake-ups dominate the cost
            # per reading otherwise); it also lets other tasks (the demo's broker) run.
            await asyncio.sleep(
                self.settings.coalesce_s if len(batch) < self.settings.batch_max else 0
            )
