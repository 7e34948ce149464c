"""The batch pipeline: decode, check, fold and commit a batch of records in one transaction.

The agent hands over whatever Faust buffered; this class owns the per-lead cache and the
per-partition checkpoints. A batch's read-model rows and offsets commit together, so a crash
anywhere replays the batch without double counting: records at or below the stored offset of
their partition are skipped.

Records are evaluated one at a time, in offset order: each accepted event or tick advances its
partition's stream time, and the SLA engine fires what is due right after that record. So the
derived ``sla.*`` events depend only on the log, never on how it was cut into batches.

A batch goes through ``stage`` (decode and fold; the caches then hold its result, so the next
batch can be staged on top of it), ``write`` (dead letters, derived events, the commit) and
``settle`` (its leads may leave the caches). ``process`` runs the three in a row;
``services.processor.overlap`` stages the next batch while the previous one is written.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime

from events.codec import decode_many
from events.envelope import Event
from events.errors import Rejection, RejectReason
from events.funnel import Funnel
from events.kinds import CREATED, KINDS
from events.tick import Tick, decode_tick, is_tick
from projections.intake import check_intake, check_tick
from projections.lead import Applied, LeadState, apply, empty, fold
from services.processor.batch import BatchOutcome, ClosedLoopWiring, Limits, SlaWiring, Staged
from services.processor.ports import (
    BatchWrite,
    CheckpointMoved,
    DeadLetterSink,
    PreparesCommits,
    ProjectionStore,
    RejectedRecord,
    StoreUnavailable,
    UnstorableBatch,
)
from services.processor.records import Checkpoint, Record

__all__ = ["BatchOutcome", "BatchPipeline", "ClosedLoopWiring", "Limits", "SlaWiring", "Staged"]

log = logging.getLogger(__name__)


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
        sla: SlaWiring | None = None,
        closed_loop: ClosedLoopWiring | None = None,
        changes: bool = True,
    ) -> None:
        self.topic = topic
        #: whether outcomes carry each event's ``Changes`` (the metrics read them; a replay
        #: has none to feed)
        self.changes = changes
        self.funnel = funnel
        self.store = store
        self._prepare = store.prepare if isinstance(store, PreparesCommits) else None
        self.dead_letters = dead_letters
        self.limits = limits or Limits()
        self.retry_delay = retry_delay
        self.sla = sla
        self.closed_loop = closed_loop
        self._leads: OrderedDict[str, LeadState] = OrderedDict()
        self._checkpoints: dict[int, Checkpoint | None] = {}
        #: staged batches not yet settled, by serial (at most two while overlapping)
        self._inflight: dict[int, Staged] = {}
        self._serial = 0

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
        self._inflight.clear()
        if self.sla is not None:
            self.sla.engine.forget()

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
            except StoreUnavailable as exc:
                # State is untouched until commit, so a retry is safe; what was cached may be
                # stale if a concurrent writer won, so it is reloaded.
                log.warning("batch not committed (%s); retrying", exc)
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
        staged = await self.stage(records, unstorable)
        await self.write(staged)
        self.settle(staged)
        return staged.outcome

    async def stage(self, records: Sequence[Record], unstorable: str | None = None) -> Staged:
        """Decode and fold a batch, and make its result the state the next batch sees.

        Nothing is written yet: ``write`` does that. Until then the caches hold state that is
        not committed, so any failure must ``forget()`` (``write`` and this method do).
        """
        try:
            staged = await self._stage(records, unstorable)
            if staged.write is not None and self._prepare is not None:
                self._prepare(staged.write, staged.expected)
            return staged
        except BaseException:
            # The engines changed their state record by record; reload everything from the
            # last commit rather than undo it.
            self.forget()
            raise

    async def write(self, staged: Staged) -> None:
        """Publish a staged batch's dead letters and derived events, then commit it."""
        try:
            await self._write(staged)
        except BaseException:
            self.forget()
            raise

    def settle(self, staged: Staged) -> None:
        """After ``write``: the batch is committed, so its leads may leave the caches."""
        self._inflight.pop(staged.serial, None)
        keep: set[str] = set()
        for other in self._inflight.values():
            keep |= other.leads
        self._trim(keep)
        if self.sla is not None:
            self.sla.engine.committed()

    async def _stage(self, records: Sequence[Record], unstorable: str | None) -> Staged:
        await self._load_checkpoints({r.partition for r in records})
        outcome = BatchOutcome()
        checkpoints = self._checkpoints
        fresh: list[Record] = []
        for record in records:
            ckpt = checkpoints.get(record.partition)
            if ckpt is not None and record.offset <= ckpt.offset:
                outcome.skipped += 1  # committed before a crash; Kafka redelivered it
            else:
                fresh.append(record)
        # Two parallel lists rather than a list of pairs: the loop below walks them with
        # ``zip``, which reuses its one result tuple, so no pair per record is allocated.
        items = self._decode_all(fresh, unstorable)
        events = [d for d in items if isinstance(d, Event)]
        event_ids = [e.id for e in events]
        known = await self.store.existing_ids(event_ids)
        # A batch still being written is not in the archive yet, but its ids are taken.
        # (One C-level intersection with the ids read once, not two reads per event.)
        for other in self._inflight.values():
            known |= other.ids.intersection(event_ids)
        states = await self._states({e.subject for e in events})
        # What the store holds for these leads when this batch commits (a batch in flight
        # commits first, or this one is voided); the store writes only rows that differ.
        committed = dict(states)
        sla = self.sla.engine if self.sla is not None else None
        if self.sla is not None:
            partitions = {r.partition for r in fresh}
            # A generator: the engine walks it only when it loads leads from the store.
            unsettled = (
                row
                for other in list(self._inflight.values())
                if other.write is not None and other.write.sla is not None
                for row in other.write.sla.rows
            )
            await self.sla.engine.prepare(self.sla.store, partitions, states, unsettled)
        loop = self.closed_loop.engine if self.closed_loop is not None else None
        if self.closed_loop is not None:
            await self.closed_loop.engine.prepare(self.closed_loop.store, events)
        changed: dict[str, LeadState] = {}
        accepted: list[tuple[Record, Event]] = []
        #: the ids of ``accepted``, gathered where they are at hand (for ``Staged.ids``)
        accepted_ids: list[str] = []
        stream: dict[int, datetime | None] = {
            p: (c.stream_time if c else None) for p, c in checkpoints.items()
        }
        # The loop runs once per record: what it needs is looked up once per batch.
        funnel = self.funnel
        want_changes = self.changes
        skew, lateness = self.limits.max_future_skew, self.limits.allowed_lateness
        admit = loop.admit if loop is not None and loop.may_refuse else None
        loop_applied = loop.applied if loop is not None else None
        accept, change = outcome.accepted.append, outcome.changes.append
        #: per broker timestamp (ms), the latest event time ``check_intake`` lets through
        horizons: dict[int, datetime] = {}
        for record, item in zip(fresh, items, strict=True):
            p = record.partition
            # Events first: nearly every record is one, and a pydantic class's isinstance is
            # cheap when true but goes through ABCMeta when false.
            if isinstance(item, Event):
                rejection = None
                stream_time = stream.get(p)
                # The event's fields from its dict, once: each attribute read of a pydantic
                # model goes through its ``__getattr__`` hook (about 0.1 µs).
                fields = item.__dict__
                subject = fields["subject"]
                event_id = fields["id"]
                # ``check_intake``'s conditions for letting an event through, tested inline
                # (hot path); only a record that fails one goes through it for the reason.
                # ``time - broker > skew`` is ``time > broker + skew`` (exact arithmetic),
                # and records of one batch mostly share their broker timestamp.
                time = fields["time"]
                ms = record.timestamp_ms
                horizon = horizons.get(ms)
                if horizon is None:
                    horizon = horizons[ms] = record.broker_time + skew
                key = record.key
                if not (
                    key
                    # ``item.key`` (``Event.key``), without the property's call.
                    and key == subject.encode()
                    and time <= horizon
                    and (stream_time is None or stream_time - time <= lateness)
                ):
                    rejection = check_intake(
                        item,
                        key,
                        record.broker_time,
                        stream_time,
                        max_future_skew=skew,
                        allowed_lateness=lateness,
                    )
                if rejection is None and event_id in known:
                    rejection = Rejection(RejectReason.DUPLICATE, f"event {event_id} was applied")
                if rejection is None and admit is not None:
                    rejection = admit(states[subject], item)
                if rejection is None:
                    before = states[subject]
                    result = apply(before, item, funnel, want_changes)
                    if isinstance(result, Applied):
                        after = result.state
                        if loop_applied is not None:
                            loop_applied(before, after, item)
                        states[subject] = changed[subject] = after
                        accepted.append((record, item))
                        accepted_ids.append(event_id)
                        accept(item)
                        change(result.changes)
                        if result.out_of_order:
                            outcome.out_of_order.append(item)
                        # ``_later(stream_time, time)``, inlined (once per accepted event).
                        now = time if stream_time is None or time > stream_time else stream_time
                        stream[p] = now
                        if sla is not None:
                            sla.lead_changed(p, after, now, not result.out_of_order)
                    else:
                        rejection = result.rejection
            elif isinstance(item, Tick):
                rejection = check_tick(item.time, record.broker_time, self.limits.max_future_skew)
                if rejection is None:
                    outcome.ticks += 1
                    stream[p] = _later(stream.get(p), item.time)
            else:
                rejection = item  # refused by the decoder
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
            if sla is not None:
                now_p = stream.get(p)
                if now_p is not None:
                    sla.advance(p, now_p)
        new_checkpoints = self._advance(fresh, stream)
        sla_out = sla.drain() if sla is not None else None
        loop_out = loop.drain() if loop is not None else None
        write = None
        if new_checkpoints:
            stored_rejected = outcome.rejected
            if loop is not None:
                stored_rejected = loop.redact(outcome.rejected)
            write = BatchWrite(self.topic, accepted, list(changed.values()), stored_rejected,
                               new_checkpoints, sla_out, loop_out, committed)  # fmt: skip
        staged = Staged(
            serial=self._serial,
            outcome=outcome,
            write=write,
            expected={
                p: (c.offset if (c := checkpoints.get(p)) else None) for p in new_checkpoints
            },
            sla_derived=sla_out.derived if sla_out is not None else [],
            loop_derived=loop_out.derived if loop_out is not None else [],
            leads=set(changed),
            ids=set(accepted_ids),
        )
        self._serial += 1
        # What the next batch must see, before this one is committed.
        self._inflight[staged.serial] = staged
        checkpoints.update(new_checkpoints)
        for lead_id, state in changed.items():
            self._leads[lead_id] = state
            self._leads.move_to_end(lead_id)
        return staged

    async def _write(self, staged: Staged) -> None:
        outcome = staged.outcome

        async def deliver() -> None:
            if outcome.rejected:
                # Dead letters first: if we crash before the commit they are sent again, which
                # consumers can dedupe by source offset; the other order could lose them.
                await self.dead_letters.send(outcome.rejected)
            if self.sla is not None and staged.sla_derived:
                # Likewise derived events: at least once, deduped by their deterministic ids.
                await self.sla.derived.send(staged.sla_derived)
                outcome.derived = list(staged.sla_derived)
            if self.closed_loop is not None and staged.loop_derived:
                await self.closed_loop.derived.send(staged.loop_derived)
                outcome.derived = [*outcome.derived, *staged.loop_derived]

        if staged.write is None:
            await deliver()
            return
        if not (outcome.rejected or staged.sla_derived or staged.loop_derived):
            await self.store.commit(staged.write, staged.expected)
            return
        # The deliveries run while the store writes the batch's rows; it awaits them just
        # before its COMMIT, so a broker round trip leaves the critical path and they still
        # reach the broker first (if one fails, nothing commits).
        delivered = asyncio.ensure_future(deliver())
        try:
            await self.store.commit(staged.write, staged.expected, delivered)
        except Exception as exc:
            # As when they went first: a staged batch's deliveries complete even if its
            # commit fails (the retry sends them again), and their failure is the one raised.
            await asyncio.wait([delivered])
            if not delivered.cancelled() and (failed := delivered.exception()) is not None:
                raise failed from exc
            raise
        except BaseException:
            delivered.cancel()  # cancelled ourselves: shutting down, nothing to wait for
            raise

    def _decode_all(
        self, records: Sequence[Record], unstorable: str | None
    ) -> list[Event | Tick | Rejection]:
        if unstorable is not None:
            refused = Rejection(
                RejectReason.UNSTORABLE, f"the read models refused it: {unstorable}"
            )
            return [refused] * len(records)
        # Events in one pydantic call for the whole batch (``decode_many``); ticks apart.
        tick_at = {i for i, r in enumerate(records) if r.headers and is_tick(r.headers)}
        values = [r.value for i, r in enumerate(records) if i not in tick_at]
        events = decode_many(values, max_bytes=self.limits.max_event_bytes)
        loop = self.closed_loop
        if loop is not None:
            # Before anything sees them: no raw address may reach the archive or any fold.
            # Only a ``lead.created`` payload can hold one (``privacy.pseudonymize`` returns
            # every other event as it is), so the rest are not even passed to it.
            # In place: ``decode_many`` just made these events, and nothing else holds them.
            pseudonymize = loop.engine.pseudonymize_decoded
            events = [
                pseudonymize(e)
                if not isinstance(e, Rejection) and KINDS[type(e.data)] & CREATED
                else e
                for e in events
            ]
        if not tick_at:
            return list(events)
        out: list[Event | Tick | Rejection] = []
        rest = iter(events)
        for i, r in enumerate(records):
            out.append(decode_tick(r.value) if i in tick_at else next(rest))
        return out

    def _advance(
        self, fresh: Sequence[Record], stream: dict[int, datetime | None]
    ) -> dict[int, Checkpoint]:
        # ``fresh``: the records above their partition's checkpoint. The new checkpoint of a
        # partition is its largest fresh offset, with the partition's stream time.
        last: dict[int, int] = {}
        for record in fresh:
            p, offset = record.partition, record.offset
            prev = last.get(p)
            if prev is None or offset > prev:
                last[p] = offset
        return {p: Checkpoint(offset, stream.get(p)) for p, offset in last.items()}

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

    def _trim(self, keep: set[str]) -> None:
        # Least recently used first; a lead of a batch not yet committed must stay, because
        # refolding it from the archive would miss that batch.
        skipped: list[tuple[str, LeadState]] = []
        while len(self._leads) - len(skipped) > self.limits.cache_leads and self._leads:
            lead_id, state = self._leads.popitem(last=False)
            if lead_id in keep:
                skipped.append((lead_id, state))
        for lead_id, state in reversed(skipped):
            self._leads[lead_id] = state
            self._leads.move_to_end(lead_id, last=False)


def _later(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current


def _key_text(key: bytes | None) -> str | None:
    if not key:
        return None
    return key.decode("utf-8", errors="replace")[:128]
