"""Whole fetches from Faust's consumer, handed to an agent as one batch, not event by event.

A plain Faust agent pays for every record: the consumer's drain loop awaits ``wait_first``
(two tasks) per message, the conductor routes it, a stream event is built, buffered and
acked. For ~200-byte lead events that machinery costs far more than the fold (bench/README.md
has the profile). So for the topics registered here the drain loop takes what one
``getmany`` returned and delivers it in one piece, as a ``RecordBatch`` sent to an in-memory
Faust channel that the processor's agent iterates. Every other topic keeps Faust's usual
path.

Everything else stays Faust's: the consumer group and its rebalances (records fetched in an
older generation are dropped, as Faust does), flow control, the consumer thread, and the
offset commits. A batch's offsets are acked (``ack_batch``) only after the agent has
committed it to PostgreSQL, so Faust's Kafka commit never runs ahead of the read model; the
read model's own checkpoints decide what is applied after a crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import ack_lock

from services.processor.records import Record

__all__ = ["BatchingApp", "RecordBatch"]

BatchHandler = Callable[["RecordBatch"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """The records of registered topics that one fetch returned, in offset order per
    partition, with the Faust consumer generation they were fetched in."""

    records: list[Record]
    generation: int


def _headers(raw: Any) -> tuple[tuple[str, bytes], ...]:
    return tuple((str(k), bytes(v) if v is not None else b"") for k, v in raw)


def _records(topic: str, partition: int, raws: list[Any]) -> list[Record]:
    """aiokafka's ConsumerRecords of one partition as Records.

    The hot loop of the consumer side, once per event: one comprehension, the partition's
    coordinates taken once, headers (ticks only) converted only when present.
    """
    return [
        Record(
            topic,
            partition,
            r.offset,
            r.key,
            r.value or b"",
            r.timestamp,
            _headers(r.headers) if r.headers else (),
        )
        for r in raws
    ]


#: How long a fetch may wait for data on the broker. Faust fixes 1.5 s; Tansu holds an
#: empty-ish fetch that long, which put 1.3 s of p50 latency on every live event.
FETCH_MAX_WAIT_MS = 50


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_consumer(self, loop: Any) -> Any:
        consumer = super()._create_consumer(loop)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when start() builds its fetcher
        return consumer


class BatchingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose drain loop delivers registered topics per fetch."""

    batch_topics: dict[str, BatchHandler]

    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - integration
        handlers: dict[str, BatchHandler] = getattr(self.app, "batch_topics", {})
        if not handlers:
            await super()._drain_messages(fetcher)
            return
        (handler,) = set(handlers.values())  # one agent takes every batched topic
        read_offset = self._read_offset
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                await asyncio.sleep(0)
                if self.should_stop:
                    break
                if not self.flow_active:
                    # A rebalance is in flight; Faust's own wait and seek happen in here.
                    await self._wait_next_records(1.0)
                    continue
                records, active = await self._wait_next_records(1.0)
                if not records or self.should_stop or not self.flow_active:
                    continue
                generation = self.app.consumer_generation_id
                batch: list[Record] = []
                for tp, raws in records.items():
                    if active is not None and tp not in active:
                        continue
                    # Faust's own test: after a seek the read offset is the next offset to
                    # read (the committed one), after delivery the last one delivered.
                    last = read_offset[tp]
                    fresh = raws
                    # A partition's records come in offset order: when the first is fresh,
                    # all are, and the usual fetch is not walked a second time.
                    if last is not None and raws and raws[0].offset < last:
                        fresh = [r for r in raws if r.offset >= last]
                    if not fresh:
                        continue
                    if tp.topic in handlers:
                        batch.extend(_records(tp.topic, tp.partition, fresh))
                    else:
                        for r in fresh:
                            await self.callback(self._to_message(tp, r))
                    read_offset[tp] = fresh[-1].offset
                if batch:
                    await handler(RecordBatch(batch, generation))
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    def ack_batch(self, batch: RecordBatch) -> None:
        """Mark every record of a committed batch as acked, so Faust commits its offsets.

        The same bookkeeping as ``Consumer.ack`` for one message, done once per partition;
        records of an older generation (partitions revoked since) are not acked.
        """
        if batch.generation != self.app.consumer_generation_id:
            return
        by_tp: dict[Any, list[int]] = {}
        for r in batch.records:
            by_tp.setdefault(self._new_topicpartition(r.topic, r.partition), []).append(r.offset)
        with ack_lock:
            for tp, offsets in by_tp.items():
                committed = self._committed_offset[tp]
                index = self._acked_index[tp]
                new = [o for o in offsets if (committed is None or o >= committed)]
                new = [o for o in new if o not in index]
                index.update(new)
                self._acked[tp].extend(new)
                self._n_acked += len(new)


class BatchingTransport(faust_aiokafka.Transport):
    Consumer = BatchingConsumer


class BatchingApp(faust.App):
    """A Faust app whose consumer hands registered topics to one agent per fetch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_topics: dict[str, BatchHandler] = {}

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)

    def batch_channel(self, topics: Iterable[faust.TopicT], maxsize: int = 2) -> Any:
        """An in-memory channel receiving a ``RecordBatch`` per fetch of ``topics``.

        The topics are still registered with the conductor, so the consumer group
        subscribes to them and Faust manages their partitions and commits as usual.
        ``maxsize`` bounds the batches waiting, which bounds prefetching.
        """
        channel = self.channel(maxsize=maxsize)

        async def deliver(batch: RecordBatch) -> None:
            await channel.send(value=batch)

        for topic in topics:
            self.topics.add(topic)
            for name in topic.topics:
                self.batch_topics[name] = deliver
        return channel

    def ack_batch(self, batch: RecordBatch) -> None:
        """Ack a committed batch's offsets for Faust's Kafka commit."""
        cast(BatchingConsumer, self.consumer).ack_batch(batch)
