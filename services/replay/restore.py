"""``leadledger archive restore``: republish the archive into an empty events topic.

In embedded mode the broker keeps nothing across a restart; the ``event_archive`` and
``rejected_event`` tables are the durable copy. Restore publishes them back partition by
partition in offset order, with the original key, bytes (accepted events re-encoded
canonically from their stored JSON), headers and broker timestamp, and puts a tick at each
offset that held a tick (see ``services.replay.sources``). Into an empty topic every record
lands at its original offset, so the processor's checkpoints stay valid and it carries on
where it was, and a replay from Kafka rebuilds the same read models.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.embedded.topics import ensure_topics
from services.replay.sources import ArchiveSource, end_offsets


class TopicNotEmpty(Exception):
    """The target topic already holds records; restoring would shift every offset."""


@dataclass(slots=True)
class RestoreResult:
    events: int = 0
    rejected: int = 0
    ticks: int = 0
    offsets_preserved: bool = True


async def topic_size(bootstrap: str, topic: str) -> dict[int, int] | None:
    """Records per partition of ``topic`` (end minus start offset), None if it does not exist."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer.topics()
            parts = consumer.partitions_for_topic(topic)
        if not parts:
            return None
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        ends = await end_offsets(consumer, tps)
        starts = await consumer.beginning_offsets(tps)
        return {tp.partition: ends[tp] - starts[tp] for tp in tps}
    finally:
        await consumer.stop()


async def restore(
    dsn: str,
    bootstrap: str,
    topic: str,
    consumer: str,
    partitions: int,
    *,
    force: bool = False,
    batch_size: int = 20_000,
    progress: Callable[[int, int | None], None] | None = None,
) -> RestoreResult:
    """Republish the archive of ``topic``; refuses a non-empty topic unless ``force``."""
    sizes = await topic_size(bootstrap, topic)
    if sizes is None:
        await ensure_topics(bootstrap, {topic: partitions})
        sizes = dict.fromkeys(range(partitions), 0)
    held = sum(sizes.values())
    if held and not force:
        raise TopicNotEmpty(
            f"topic {topic!r} at {bootstrap} already holds {held:,} records; restoring would"
            " put the history after them at other offsets. Restore into an empty topic, or"
            " pass --force to append anyway."
        )
    source = ArchiveSource(dsn, topic, consumer, batch_size, fill_gaps=True, canonical=True)
    result = RestoreResult(offsets_preserved=held == 0)
    total = await source.open()
    # Ticks fill the offsets the archive lacks, up to each live checkpoint.
    total = max(total, sum(c.offset + 1 for c in source.checkpoints.values()))
    needed = max(source.checkpoints, default=-1) + 1
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5,
        max_batch_size=1024 * 1024, acks="all",
    )  # fmt: skip
    await producer.start()
    try:
        if progress is not None:
            progress(0, total)
        async for batch in source.batches():
            if batch and max(r.partition for r in batch) + 1 > len(sizes):
                raise ValueError(
                    f"topic {topic!r} has {len(sizes)} partitions but the archive has records"
                    f" in partition {max(r.partition for r in batch)}; recreate it with at"
                    f" least {max(needed, max(r.partition for r in batch) + 1)}"
                )
            pending = []
            for r in batch:
                pending.append(await producer.send(
                    topic, r.value, key=r.key, partition=r.partition,
                    timestamp_ms=r.timestamp_ms, headers=list(r.headers),
                ))  # fmt: skip
            await asyncio.gather(*pending)
            if progress is not None:
                progress(len(batch), None)
        result.events, result.rejected, result.ticks = source.events, source.rejected, source.ticks
    finally:
        await producer.stop()
        await source.close()
    return result
