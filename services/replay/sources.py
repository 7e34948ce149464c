"""Where a replay reads history: the Kafka topic from offset 0, or the ``event_archive`` table.

Both yield ``Record`` batches in per-partition offset order, which is all the pipeline needs
(partitions are independent; a lead's events share one).

The archive holds accepted events (``event_archive``) and rejected records
(``rejected_event``, raw bytes), but not ticks, whose only lasting effect is the partition's
stream time: the live checkpoint keeps that. So ``ArchiveSource`` ends each partition with a
tick at the checkpoint's offset and stream time, and, for ``archive restore``, fills the
offsets of the missing ticks with ticks at the stream time already reached (they change
nothing), so the republished log has the live offsets and the processor's checkpoints stay
valid.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from events.json_bytes import dumps_to_keep
from events.tick import TICK_HEADERS, encode_tick
from services.processor.records import Record

#: the ``source`` of the ticks a restore or an archive replay puts where ticks were
FILLER_SOURCE = "leadledger/archive"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class KafkaSource:
    """Every record of ``topic`` from offset 0 up to the end offsets seen at ``open``.

    ``partitions``: read only these (a parallel replay's worker); None: every partition.
    ``ends``: end offsets already known (``only``): when they cover every partition read,
    ``open`` reads up to those instead of searching for the ends again."""

    def __init__(
        self, bootstrap: str, topic: str, batch_size: int,
        partitions: tuple[int, ...] | None = None, ends: dict[int, int] | None = None,
    ) -> None:  # fmt: skip
        self.bootstrap, self.topic, self.batch_size = bootstrap, topic, batch_size
        self.partitions = partitions
        self.ends = ends
        #: after ``open``: the partitions read
        self.partition_ids: tuple[int, ...] = ()
        self._consumer: AIOKafkaConsumer | None = None
        self._ends: dict[TopicPartition, int] = {}

    def only(self, partitions: tuple[int, ...]) -> KafkaSource:
        """An unopened copy that reads only ``partitions``; once this source was opened, up to
        the end offsets it found, so the shares end where the whole would have (and skip the
        search, >= 300 ms each)."""
        found = {tp.partition: end for tp, end in self._ends.items()}
        ends = {p: found[p] for p in partitions if p in found} or None
        return KafkaSource(self.bootstrap, self.topic, self.batch_size, partitions, ends)

    async def open(self) -> int:
        """Connect and return the number of records to read."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        await consumer.start()
        self._consumer = consumer
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            await consumer.topics()  # refresh metadata without creating the topic
            partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            await self.close()
            raise LookupError(f"topic {self.topic!r} does not exist at {self.bootstrap}")
        if self.partitions is not None:
            partitions = set(partitions) & set(self.partitions)
        self.partition_ids = tuple(sorted(partitions))
        tps = [TopicPartition(self.topic, p) for p in self.partition_ids]
        consumer.assign(tps)
        known = self.ends
        if known is not None and all(p in known for p in self.partition_ids):
            self._ends = {tp: known[tp.partition] for tp in tps}
        else:
            self._ends = await end_offsets(consumer, tps)
        await consumer.seek_to_beginning(*tps)
        starts = await consumer.beginning_offsets(tps)
        return sum(self._ends[tp] - starts[tp] for tp in tps)

    async def batches(self) -> AsyncIterator[list[Record]]:
        consumer = self._consumer
        assert consumer is not None, "open() first"
        todo = {tp for tp, end in self._ends.items() if end > 0}
        positions = {tp: await consumer.position(tp) for tp in todo}
        todo = {tp for tp in todo if positions[tp] < self._ends[tp]}
        while todo:
            got = await consumer.getmany(*todo, timeout_ms=1000, max_records=self.batch_size)
            batch: list[Record] = []
            for tp, records in got.items():
                end = self._ends[tp]
                batch += [
                    Record(tp.topic, tp.partition, r.offset, r.key, r.value or b"",
                           r.timestamp, tuple(r.headers))
                    for r in records if r.offset < end
                ]  # fmt: skip
                if records and records[-1].offset + 1 >= end:
                    todo.discard(tp)
            if batch:
                yield batch

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


async def end_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The offset after the last record of each partition, of assigned ``tps``.

    Tansu answers ListOffsets(latest) with an offset that can lag the end by a record batch,
    so the answer is only where the search starts: read on from there until nothing comes.
    """
    ends = dict(await consumer.end_offsets(tps))
    for tp in tps:
        consumer.seek(tp, ends[tp])
    while True:
        got = await consumer.getmany(*tps, timeout_ms=300)
        if not got:
            break
        for tp, records in got.items():
            if records:
                ends[tp] = max(ends[tp], records[-1].offset + 1)
    for tp in tps:
        ends[tp] = max(ends[tp], consumer.highwater(tp) or 0)
    return ends


_ARCHIVE_SQL = """
SELECT kafka_partition AS p, kafka_offset AS o, convert_to(lead_id, 'UTF8') AS key,
       payload::text AS payload, NULL::bytea AS raw, event_time AS at,
       COALESCE(kafka_timestamp_ms, floor(extract(epoch FROM archived_at) * 1000)::bigint) AS ts,
       kafka_header_keys AS hk, kafka_header_values AS hv
  FROM event_archive
 WHERE kafka_topic = $1 AND ($2::int[] IS NULL OR kafka_partition = ANY($2))
UNION ALL
SELECT kafka_partition, kafka_offset, COALESCE(kafka_key, convert_to(lead_id, 'UTF8')),
       NULL, raw, NULL,
       COALESCE(kafka_timestamp_ms, floor(extract(epoch FROM rejected_at) * 1000)::bigint),
       kafka_header_keys, kafka_header_values
  FROM rejected_event
 WHERE kafka_topic = $1 AND ($2::int[] IS NULL OR kafka_partition = ANY($2))
 ORDER BY 1, 2
"""


@dataclass(frozen=True, slots=True)
class LiveCheckpoint:
    offset: int
    stream_time: datetime | None


class ArchiveSource:
    """The archived records of ``topic`` in offset order, re-encoded as Kafka records.

    ``fill_gaps``: put a tick at every offset the archive lacks (restore needs the live
    offsets). ``canonical``: re-encode payloads with sorted keys, as the project's codec writes
    them (restore publishes them); otherwise the stored JSON text is passed as is (faster, and
    it decodes to the same event). ``partitions``: read only these (a parallel replay's
    worker); None: every partition.
    """

    def __init__(
        self, dsn: str, topic: str, consumer: str, batch_size: int, *,
        fill_gaps: bool = False, canonical: bool = False,
        partitions: tuple[int, ...] | None = None,
    ) -> None:  # fmt: skip
        self.dsn, self.topic, self.consumer = dsn, topic, consumer
        self.batch_size, self.fill_gaps, self.canonical = batch_size, fill_gaps, canonical
        self.partitions = partitions
        #: after ``open``: the partitions with archived records or a live checkpoint
        self.partition_ids: tuple[int, ...] = ()
        self._conn: asyncpg.Connection | None = None
        self.checkpoints: dict[int, LiveCheckpoint] = {}
        self._first_time: dict[int, datetime] = {}
        self.events = self.rejected = 0
        #: ticks this source made up (fillers and final ticks)
        self.ticks = 0

    def only(self, partitions: tuple[int, ...]) -> ArchiveSource:
        """An unopened copy that reads only ``partitions``."""
        return ArchiveSource(
            self.dsn, self.topic, self.consumer, self.batch_size, fill_gaps=self.fill_gaps,
            canonical=self.canonical, partitions=partitions,
        )  # fmt: skip

    async def open(self) -> int:
        """Connect and return the number of records to read (tick fillers not counted)."""
        self._conn = conn = await asyncpg.connect(self.dsn)
        # NULL: every partition. Each query filters, so a worker counts only its own.
        wanted = list(self.partitions) if self.partitions is not None else None
        rows = await conn.fetch(
            "SELECT kafka_partition, kafka_offset, stream_time FROM projection_checkpoint"
            " WHERE consumer = $1 AND kafka_topic = $2"
            " AND ($3::int[] IS NULL OR kafka_partition = ANY($3))",
            self.consumer, self.topic, wanted,
        )  # fmt: skip
        self.checkpoints = {
            r["kafka_partition"]: LiveCheckpoint(r["kafka_offset"], r["stream_time"]) for r in rows
        }
        firsts = await conn.fetch(
            "SELECT DISTINCT ON (kafka_partition) kafka_partition, event_time FROM event_archive"
            " WHERE kafka_topic = $1 AND ($2::int[] IS NULL OR kafka_partition = ANY($2))"
            " ORDER BY kafka_partition, kafka_offset",
            self.topic, wanted,
        )  # fmt: skip
        self._first_time = {r["kafka_partition"]: r["event_time"] for r in firsts}
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM event_archive WHERE kafka_topic = $1"
            "         AND ($2::int[] IS NULL OR kafka_partition = ANY($2))) AS events,"
            " (SELECT count(*) FROM rejected_event WHERE kafka_topic = $1"
            "         AND ($2::int[] IS NULL OR kafka_partition = ANY($2))) AS rejected,"
            " (SELECT array_agg(DISTINCT kafka_partition) FROM rejected_event"
            "   WHERE kafka_topic = $1) AS rejected_partitions",
            self.topic, wanted,
        )  # fmt: skip
        assert counts is not None
        self.events, self.rejected = int(counts["events"]), int(counts["rejected"])
        found = set(self.checkpoints) | set(self._first_time)
        found.update(counts["rejected_partitions"] or ())
        if wanted is not None:
            found &= set(wanted)
        self.partition_ids = tuple(sorted(found))
        return self.events + self.rejected

    async def batches(self) -> AsyncIterator[list[Record]]:
        conn = self._conn
        assert conn is not None, "open() first"
        batch: list[Record] = []
        partition: int | None = None
        expected = 0
        stream: datetime | None = None
        seen: set[int] = set()
        wanted = list(self.partitions) if self.partitions is not None else None
        async with conn.transaction():
            cursor = conn.cursor(_ARCHIVE_SQL, self.topic, wanted, prefetch=self.batch_size)
            async for row in cursor:
                p, o = row["p"], row["o"]
                if p != partition:
                    if partition is not None:
                        batch += self._finish(partition, expected, stream)
                        seen.add(partition)
                    partition, expected, stream = p, 0, None
                if self.fill_gaps and o > expected:
                    at = stream or self._first_time.get(p, _EPOCH)
                    batch += [_tick(self.topic, p, g, at) for g in range(expected, o)]
                    self.ticks += o - expected
                batch.append(self._record(row))
                if row["at"] is not None and (stream is None or row["at"] > stream):
                    stream = row["at"]
                expected = o + 1
                if len(batch) >= self.batch_size:
                    yield batch
                    batch = []
            if partition is not None:
                batch += self._finish(partition, expected, stream)
                seen.add(partition)
        # Partitions the live processor saw nothing but ticks on.
        for p in sorted(self.checkpoints.keys() - seen):
            batch += self._finish(p, 0, None)
        if batch:
            yield batch

    def _finish(self, p: int, expected: int, stream: datetime | None) -> list[Record]:
        """Ticks after the last archived record: fillers, then the checkpoint's stream time."""
        ckpt = self.checkpoints.get(p)
        if ckpt is None or ckpt.offset < expected:
            return []
        out: list[Record] = []
        if self.fill_gaps:
            at = stream or self._first_time.get(p, _EPOCH)
            out += [_tick(self.topic, p, g, at) for g in range(expected, ckpt.offset)]
            self.ticks += ckpt.offset - expected
        final = ckpt.stream_time if ckpt.stream_time is not None else (stream or _EPOCH)
        if stream is not None and final < stream:
            final = stream
        out.append(_tick(self.topic, p, ckpt.offset, final))
        self.ticks += 1
        return out

    def _record(self, row: asyncpg.Record) -> Record:
        payload = row["payload"]
        if payload is None:
            value = bytes(row["raw"])
        elif self.canonical:
            # Kept: a batch holds every record's value.
            value = dumps_to_keep(orjson.loads(payload), orjson.OPT_SORT_KEYS)
        else:
            value = payload.encode()
        keys, values = row["hk"], row["hv"]
        headers = tuple(zip(keys, map(bytes, values), strict=True)) if keys is not None else ()
        key = row["key"]
        return Record(
            self.topic, row["p"], row["o"], bytes(key) if key is not None else None, value,
            row["ts"], headers,
        )  # fmt: skip

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


def _tick(topic: str, partition: int, offset: int, at: datetime) -> Record:
    """A tick record claiming ``at`` at this position."""
    # Its broker timestamp is its own time (rounded up), so the skew check always passes.
    ts = math.ceil(at.timestamp() * 1000)
    return Record(
        topic, partition, offset, None, encode_tick(at, FILLER_SOURCE), ts, tuple(TICK_HEADERS)
    )
