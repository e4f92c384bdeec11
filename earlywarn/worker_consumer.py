"""A Faust app whose consumer hands the records of chosen topics to a handler a fetch at a time.

Faust delivers every record on its own: a message object, a task pair raced by ``wait_first``
against flow suspension, the conductor, the stream's queue and an event, then the ack. For a
worker that evaluates a batch of readings with numpy that path costs about six times the
evaluation itself (``bench/worker_ceiling.py``) and kept one worker near 4,500 readings/s.

So the worker keeps Faust for what it does well (group membership, the partition assignment
shared with the tables, changelog recovery, standbys, commits) and takes the records of
``ew.readings`` straight out of each fetch: :class:`BulkConsumer` removes them from what the
fetcher would deliver one by one, awaits the handler with all of them, and only when the
handler has returned acknowledges their offsets in Faust's own books, so Faust's commits never
pass a reading whose alarms and state Kafka does not have yet.

Around a rebalance the consumer keeps Faust's rules: records fetched while the flow is stopped
are dropped (Faust seeks every partition back to its committed offset before the flow resumes),
and a revocation first waits for the batch being handled and commits it, so the next owner
starts after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import faust
from faust.stores.memory import Store as MemoryStore
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Any]], Awaitable[None]]
"""Takes the fetched records (aiokafka ``ConsumerRecord``) of one topic, in offset order within
each partition; when it returns, they count as processed and their offsets may be committed."""


REFUSED_PAUSE_S = 1.0
"""Pause before a batch its handler did not take is fetched again."""


class BatchNotTakenError(Exception):
    """Raised by a :data:`BatchHandler` that did not process its batch: nothing of it is
    acknowledged and its partitions are read again from its first record (after
    :data:`REFUSED_PAUSE_S`), so the handler gets it again and no commit passes it."""


class BulkApp(faust.App):
    """A ``faust.App`` that can consume some topics in bulk (:meth:`bulk_topic`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bulk_handlers: dict[str, BatchHandler] = {}

    def bulk_topic(self, topic: Any, handler: BatchHandler) -> None:
        """Subscribe to ``topic`` (as an agent over it would) and give its records to
        ``handler`` a fetch at a time instead of to streams."""
        self.bulk_handlers[topic.get_topic_name()] = handler
        self.topics.add(topic)

    def _new_transport(self) -> Any:
        return BulkTransport(self.conf.broker_consumer, self)


class BulkConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer, diverting the records of :attr:`BulkApp.bulk_handlers`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handling: asyncio.Future[None] | None = None
        """The batch being handled, which a revocation waits for."""

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        handlers: Mapping[str, BatchHandler] = getattr(self.app, "bulk_handlers", {})
        if not records:
            return records, active
        changelogs = self.app.tables.changelog_topics
        rest: dict[TP, Any] = {}
        bulk: dict[TP, Sequence[Any]] = {}
        for tp, batch in records.items():
            if tp.topic in handlers:
                bulk[tp] = batch
            elif tp.topic in changelogs and len(batch) > 1 and self._deliverable(tp, active):
                rest[tp] = self._restore(tp, batch)
            else:
                rest[tp] = batch
        if bulk:
            await self._deliver(bulk, active, handlers)
        return rest, active

    def _paused(self, tp: TP, active: set[TP] | None) -> bool:
        """Whether ``tp`` was paused (by a rebalance) while its records were being fetched."""
        return active is not None and tp not in active and tp not in self._buffered_partitions

    def _deliverable(self, tp: TP, active: set[TP] | None) -> bool:
        """Whether Faust's own fetch loop would hand over records of ``tp`` now."""
        return self.flow_active and not self.should_stop and not self._paused(tp, active)

    def _restore(self, tp: TP, batch: Sequence[Any]) -> Sequence[Any]:
        """Apply all but the last record of a table changelog fetch straight to the table, as
        Faust's recovery would one event at a time (about 5,000 records/s on 2 cores, which
        made every rebalance wait minutes once a changelog was long); return the last one for
        Faust, whose recovery then sees its offset and ends as it decides.

        Only for tables on Faust's in-memory store, which is a plain mapping of the raw key to
        the raw value, and only for partitions Faust is recovering or keeping as a standby;
        anything else goes the usual way."""
        recovery = cast(Any, self.app.tables).recovery  # TableManager's, not in TableManagerT
        if tp in recovery.active_tps:
            offsets = recovery.active_offsets
        elif tp in recovery.standby_tps:
            offsets = recovery.standby_offsets
        else:
            return batch
        table = recovery.tp_to_table.get(tp)
        if table is None or not isinstance(table.data, MemoryStore):
            return batch
        data = table.data
        seen = offsets.get(tp)
        for record in batch[:-1]:
            if seen is not None and record.offset <= seen:
                continue
            if record.value is None:
                data.pop(record.key, None)  # a tombstone: the key was deleted
            else:
                data[record.key] = record.value
            seen = record.offset
        if seen is not None:
            offsets[tp] = seen
        return batch[-1:]

    async def _deliver(
        self,
        records: Mapping[TP, Sequence[Any]],
        active: set[TP] | None,
        handlers: Mapping[str, BatchHandler],
    ) -> None:
        if self.should_stop:
            return  # stopping: what is not committed is read again by the next owner
        if not self.flow_active:
            # A rebalance began while fetching. As Faust's own fetch loop does, go back to the
            # committed offsets rather than rely on a later seek to find these records again.
            log.info("a fetch arrived during a rebalance; reading again from the commits")
            try:
                await self.perform_seek()
            except Exception as exc:  # Faust's recovery seeks again before the flow resumes
                log.warning("could not seek back to the committed offsets: %s", exc)
            return
        read_offset = self._read_offset
        taken: dict[TP, list[Any]] = {}
        for tp, batch in records.items():
            if self._paused(tp, active):
                # Paused meanwhile, by a rebalance: Faust's own fetch loop drops such records too,
                # and its recovery seeks every partition to its commit before resuming it (a
                # seek from here could race that one and skip records).
                log.info("%s was paused during its fetch; left to the seek after recovery", tp)
                continue
            last_read = read_offset[tp]
            fresh = [r for r in batch if last_read is None or r.offset >= last_read]
            if fresh:
                taken[tp] = fresh
        if not taken:
            return
        generation = self.app.consumer_generation_id
        handling = asyncio.ensure_future(self._handle(taken, handlers, generation))
        self._handling = handling
        # Shielded: a fetcher cancelled by a rebalance or a stop must not cut a batch between
        # its alarms and its state; the revocation waits for it instead (on_partitions_revoked).
        await asyncio.shield(handling)

    async def _handle(
        self, taken: Mapping[TP, list[Any]], handlers: Mapping[str, BatchHandler], generation: int
    ) -> None:
        by_topic: dict[str, list[Any]] = {}
        for tp, batch in taken.items():
            by_topic.setdefault(tp.topic, []).extend(batch)
        try:
            for topic, batch in by_topic.items():
                await handlers[topic](batch)
        except BatchNotTakenError as exc:
            log.warning("a fetched batch was left, to be fetched again: %s", exc)
            await self._fetch_again(taken, generation)
            return
        if self.app.consumer_generation_id != generation:
            return  # the partitions were handed out again meanwhile: their next owner re-reads
        for tp, batch in taken.items():
            await self._acknowledge(tp, batch)
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()

    async def _fetch_again(self, taken: Mapping[TP, list[Any]], generation: int) -> None:
        """Seek each partition of a refused batch back to its first record. Without it the
        fetches go on after it, and Faust commits past an unacknowledged first offset when a
        partition has no commit yet."""
        await asyncio.sleep(REFUSED_PAUSE_S)
        if self.app.consumer_generation_id != generation:
            return  # reassigned meanwhile: Faust has sought every partition to its commit
        for tp, batch in taken.items():
            try:
                await self.seek(tp, batch[0].offset)
            except Exception as exc:  # e.g. given away this very moment: the owner re-reads
                log.warning("could not read %s again from offset %d: %s", tp, batch[0].offset, exc)

    async def _acknowledge(self, tp: TP, batch: Sequence[Any]) -> None:
        """What :meth:`Consumer.ack` does for each message, and the offset gaps Faust's own
        fetch loop records (a compacted or transactional topic skips offsets; without the gap
        the commit would wait for offsets that never come)."""
        previous = self._read_offset[tp]
        for record in batch:
            if previous is not None and record.offset - previous > 1:
                await self._add_gap(tp, previous + 1, record.offset)
            previous = record.offset
        self._read_offset[tp] = previous
        self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
        with ack_lock:
            committed = self._committed_offset[tp]
            index = self._acked_index[tp]
            acked = self._acked[tp]
            count = 0
            for record in batch:
                offset = record.offset
                if (committed is None or offset >= committed) and offset not in index:
                    index.add(offset)
                    acked.append(offset)
                    count += 1
            self._n_acked += count
        notify(self._waiting_for_ack)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Stop taking batches, let the one being handled finish and commit it, then let Faust
        revoke (which forgets the revoked partitions' acknowledged offsets uncommitted)."""
        if revoked:
            self.stop_flow()
            handling = self._handling
            if handling is not None and not handling.done():
                try:
                    await asyncio.shield(handling)
                except Exception:  # the fetcher that started it reports it
                    log.debug("the batch being handled at the revocation failed", exc_info=True)
            try:
                await self.commit()
            except Exception as exc:
                log.warning(
                    "could not commit before giving partitions away (%s): their next owner "
                    "evaluates the last readings again, which it finds already seen",
                    exc,
                )
        await super().on_partitions_revoked(revoked)


class BulkTransport(AIOKafkaTransport):
    """Faust's ``kafka://`` transport with the :class:`BulkConsumer`."""

    Consumer = BulkConsumer


__all__: Sequence[str] = (
    "BatchHandler",
    "BatchNotTakenError",
    "BulkApp",
    "BulkConsumer",
    "BulkTransport",
)
