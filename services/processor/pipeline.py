"""The batch pipeline: decode, check, fold and commit a batch of records in one transaction.

The agent hands over whatever Faust buffered; this class owns the per-lead cache and the
per-partition checkpoints. A batch's read-model rows and offsets commit together, so a crash
anywhere replays the batch without double counting: records at or below the stored offset of
their partition are skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from events.codec import decode
from events.envelope import Event
from events.errors import RejectedInput, Rejection, RejectReason
from events.funnel import Funnel
from projections.changes import Changes
from projections.intake import check_intake
from projections.lead import Applied, LeadState, apply, empty, fold
from services.processor.ports import (
    BatchWrite,
    CheckpointMoved,
    DeadLetterSink,
    ProjectionStore,
    RejectedRecord,
    UnstorableBatch,
)
from services.processor.records import Checkpoint, Record

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    max_future_skew: timedelta = timedelta(minutes=5)
    allowed_lateness: timedelta = timedelta(days=30)
    max_event_bytes: int = 64 * 1024
    #: leads kept folded in memory; evicted ones are refolded from the archive on demand.
    cache_leads: int = 200_000


@dataclass(slots=True)
class BatchOutcome:
    """What a committed batch did, for metrics and logs."""

    accepted: list[Event] = field(default_factory=list)
    out_of_order: list[Event] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    changes: list[Changes] = field(default_factory=list)
    skipped: int = 0

    def extend(self, other: BatchOutcome) -> BatchOutcome:
        self.accepted += other.accepted
        self.out_of_order += other.out_of_order
        self.rejected += other.rejected
        self.changes += other.changes
        self.skipped += other.skipped
        return self


class BatchPipeline:
    """Applies record batches of one topic to the read models, exactly once in effect."""

    def __init__(
        self,
        topic: str,
        funnel: Funnel,
        store: ProjectionStore,
        dead_letters: DeadLetterSink,
        limits: Limits | None = None,
        retry_delay: float = 1.0,
    ) -> None:
        self.topic = topic
        self.funnel = funnel
        self.store = store
        self.dead_letters = dead_letters
        self.limits = limits or Limits()
        self.retry_delay = retry_delay
        self._leads: OrderedDict[str, LeadState] = OrderedDict()
        self._checkpoints: dict[int, Checkpoint | None] = {}

    def next_offset(self, partition: int) -> int | None:
        """The first offset not yet applied on ``partition``; None until its checkpoint is read."""
        if partition not in self._checkpoints:
            return None
        ckpt = self._checkpoints[partition]
        return 0 if ckpt is None else ckpt.offset + 1

    def forget(self) -> None:
        """Drop cached state, e.g. when partitions are revoked in a rebalance."""
        self._leads.clear()
        self._checkpoints.clear()

    async def process(self, records: Sequence[Record]) -> BatchOutcome:
        """Apply a batch; retries until it commits (a Postgres outage only delays it)."""
        while True:
            try:
                return await self._attempt(records)
            except UnstorableBatch as exc:
                return await self._bisect(records, str(exc))
            except CheckpointMoved:
                log.warning("a partition moved under us; reloading state and redoing the batch")
                self.forget()
            except (OSError, TimeoutError) as exc:
                log.warning("batch not committed (%s); retrying in %.1fs", exc, self.retry_delay)
                await asyncio.sleep(self.retry_delay)
            except Exception as exc:
                # asyncpg raises its own hierarchy for a lost connection or a unique violation
                # from a concurrent writer; state is untouched until commit, so a retry is safe.
                if type(exc).__module__.split(".")[0] != "asyncpg":
                    raise
                log.warning("batch not committed (%r); retrying", exc)
                self.forget()
                await asyncio.sleep(self.retry_delay)

    async def _bisect(self, records: Sequence[Record], why: str) -> BatchOutcome:
        # A poison record must not stop the worker: halve until it stands alone, then
        # dead-letter it. Everything else still commits, in offset order.
        if len(records) == 1:
            log.error(
                "record %s/%d is unstorable: %s", records[0].partition, records[0].offset, why
            )
            return await self._attempt(records, unstorable=why)
        mid = len(records) // 2
        first = await self.process(records[:mid])
        return first.extend(await self.process(records[mid:]))

    async def _attempt(
        self, records: Sequence[Record], unstorable: str | None = None
    ) -> BatchOutcome:
        await self._load_checkpoints({r.partition for r in records})
        outcome = BatchOutcome()
        fresh: list[Record] = []
        for record in records:
            ckpt = self._checkpoints.get(record.partition)
            if ckpt is not None and record.offset <= ckpt.offset:
                outcome.skipped += 1  # committed before a crash; Kafka redelivered it
            else:
                fresh.append(record)
        decoded = [(r, self._decode(r, unstorable)) for r in fresh]
        events = [d for _, d in decoded if isinstance(d, Event)]
        known = await self.store.existing_ids([e.id for e in events])
        states = await self._states({e.subject for e in events})
        changed: dict[str, LeadState] = {}
        accepted: list[tuple[Record, Event]] = []
        stream: dict[int, datetime | None] = {
            p: (c.stream_time if c else None) for p, c in self._checkpoints.items()
        }
        for record, item in decoded:
            rejection = item if isinstance(item, Rejection) else None
            if isinstance(item, Event):
                rejection = check_intake(
                    item,
                    record.key,
                    record.broker_time,
                    stream.get(record.partition),
                    max_future_skew=self.limits.max_future_skew,
                    allowed_lateness=self.limits.allowed_lateness,
                )
                if rejection is None and item.id in known:
                    rejection = Rejection(RejectReason.DUPLICATE, f"event {item.id} was applied")
                if rejection is None:
                    result = apply(states[item.subject], item, self.funnel)
                    if isinstance(result, Applied):
                        states[item.subject] = changed[item.subject] = result.state
                        accepted.append((record, item))
                        outcome.accepted.append(item)
                        outcome.changes.append(result.changes)
                        if result.out_of_order:
                            outcome.out_of_order.append(item)
                        current = stream.get(record.partition)
                        if current is None or item.time > current:
                            stream[record.partition] = item.time
                    else:
                        rejection = result.rejection
            if rejection is not None:
                event = item if isinstance(item, Event) else None
                outcome.rejected.append(
                    RejectedRecord(
                        record,
                        rejection,
                        event.subject if event else _key_text(record.key),
                        event.id if event else None,
                    )
                )
        new_checkpoints = self._advance(records, stream)
        if outcome.rejected:
            # Dead letters first: if we crash before the commit they are sent again, which
            # consumers can dedupe by source offset; the other order could lose them.
            await self.dead_letters.send(outcome.rejected)
        if new_checkpoints:
            await self.store.commit(
                BatchWrite(self.topic, accepted, list(changed.values()), outcome.rejected,
                           new_checkpoints),
                {p: (c.offset if (c := self._checkpoints.get(p)) else None)
                 for p in new_checkpoints},
            )  # fmt: skip
        self._checkpoints.update(new_checkpoints)
        for lead_id, state in changed.items():
            self._remember(lead_id, state)
        return outcome

    def _decode(self, record: Record, unstorable: str | None) -> Event | Rejection:
        if unstorable is not None:
            return Rejection(RejectReason.UNSTORABLE, f"the read models refused it: {unstorable}")
        try:
            return decode(record.value, max_bytes=self.limits.max_event_bytes)
        except RejectedInput as exc:
            return exc.rejection

    def _advance(
        self, records: Sequence[Record], stream: dict[int, datetime | None]
    ) -> dict[int, Checkpoint]:
        out: dict[int, Checkpoint] = {}
        for record in records:
            ckpt = self._checkpoints.get(record.partition)
            if ckpt is not None and record.offset <= ckpt.offset:
                continue
            prev = out.get(record.partition)
            if prev is None or record.offset > prev.offset:
                out[record.partition] = Checkpoint(record.offset, stream.get(record.partition))
        return out

    async def _load_checkpoints(self, partitions: set[int]) -> None:
        missing = sorted(p for p in partitions if p not in self._checkpoints)
        if missing:
            found = await self.store.load_checkpoints(self.topic, missing)
            for p in missing:
                self._checkpoints[p] = found.get(p)

    async def _states(self, lead_ids: set[str]) -> dict[str, LeadState]:
        states = {lid: s for lid in lead_ids if (s := self._leads.get(lid)) is not None}
        missing = sorted(lead_ids - states.keys())
        if missing:
            histories = await self.store.load_histories(missing)
            for lid in missing:
                history = histories.get(lid)
                states[lid] = fold(lid, history, self.funnel) if history else empty(lid)
                if history:
                    self._remember(lid, states[lid])
        return states

    def _remember(self, lead_id: str, state: LeadState) -> None:
        self._leads[lead_id] = state
        self._leads.move_to_end(lead_id)
        while len(self._leads) > self.limits.cache_leads:
            self._leads.popitem(last=False)


def _key_text(key: bytes | None) -> str | None:
    if not key:
        return None
    return key.decode("utf-8", errors="replace")[:128]
