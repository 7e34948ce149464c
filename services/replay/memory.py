"""The replay's store: the batch pipeline's ports over plain dicts, written out once at the end.

A replay runs the live ``BatchPipeline`` unchanged, so it applies exactly the live rules
(intake checks, the lead fold, the SLA engine). Only the store differs: instead of one
Postgres transaction per batch, every commit lands in memory and ``services.replay.writer``
COPYs the final state into the target schema in one go. Nothing is produced to Kafka: the
dead-letter and derived sinks only count, because a replay writes read models, never the log.

Memory stays bounded by ``keep_leads``: past it, the leads least recently committed are
packed, their events as JSON (``to_json``, what the live archive keeps) and their read-model
rows as plain tuples. A packed lead that gets another event is decoded and refolded, exactly
as the live store refolds a lead from ``event_archive``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events.codec import decode, to_json
from events.envelope import Event
from events.funnel import Funnel
from projections.closed_loop.duplicates import DuplicatePair, Holder
from projections.lead import LeadState, fold
from projections.sla_emit import TimerRow
from projections.sla_volume import VolumeFact
from services.processor.closed_loop import SuppressedRow
from services.processor.ports import BatchWrite, RejectedRecord
from services.processor.records import Checkpoint
from services.processor.sla_engine import Key, SlaWrite
from services.replay.sla_deferred import FinalRows
from services.store.projection_store import handoff_rows, lead_row, stage_rows

#: By default a store keeps every lead unpacked (tests, small replays).
UNBOUNDED = 1 << 62


#: Between two events in ``PackedLead.events``: compact JSON never holds a raw newline
#: (one inside a string is written as the escape ``\n``).
_SEP = b"\n"


@dataclass(frozen=True, slots=True)
class PackedLead:
    """A lead out of the working set: its history as JSON bytes and its final rows."""

    #: the events' JSON, in history order, joined by ``_SEP``. ``to_json`` costs a third of
    #: ``encode`` (1.8 against 6.3 us per event: no sorted keys, which nothing here needs).
    #: One joined object rather than one per event: ``encode``'s orjson output is a 4 KiB
    #: allocation (2.7 GiB at 1M replayed events, measured), and even exact-size bytes
    #: objects would cost their headers per event.
    events: bytes
    lead: tuple[Any, ...]
    stages: list[tuple[Any, ...]]
    handoffs: list[tuple[Any, ...]]

    @staticmethod
    def of(state: LeadState) -> PackedLead:
        return PackedLead(
            _SEP.join([to_json(e) for e in state.events]), lead_row(state),
            stage_rows((state,)), handoff_rows((state,)),
        )  # fmt: skip

    def unpack(self, lead_id: str, funnel: Funnel) -> LeadState:
        return fold(lead_id, self.history(), funnel)

    def history(self) -> list[Event]:
        if not self.events:
            return []
        return [decode(b, max_bytes=len(b)) for b in self.events.split(_SEP)]


@dataclass(slots=True)
class ReplayState:
    """Everything a replay rebuilt so far: the committed state of every batch."""

    #: the working set of leads, least recently committed first
    leads: OrderedDict[str, LeadState] = field(default_factory=OrderedDict)
    #: the other leads (see the module doc); a lead is in exactly one of the two
    packed: dict[str, PackedLead] = field(default_factory=dict)
    accepted_ids: set[str] = field(default_factory=set)
    rejected: list[RejectedRecord] = field(default_factory=list)
    timers: dict[Key, TimerRow] = field(default_factory=dict)
    #: per timer key: (limit seconds, counted seconds from start to stop or None)
    figures: dict[Key, tuple[float, float | None]] = field(default_factory=dict)
    #: the rows the replay's SLA engine settled at the end, as ``sla_timer`` values (of other
    #: keys than ``timers``: see ``services.replay.sla_deferred``)
    timer_values: list[tuple[Any, ...]] = field(default_factory=list)
    facts: dict[str, tuple[VolumeFact, ...]] = field(default_factory=dict)
    checkpoints: dict[tuple[str, int], Checkpoint] = field(default_factory=dict)
    #: closed loop: email key -> lead id -> holder; pairs and suppressions in commit order
    identities: dict[str, dict[str, Holder]] = field(default_factory=dict)
    pairs: dict[tuple[str, str], DuplicatePair] = field(default_factory=dict)
    suppressed: dict[tuple[str, str], SuppressedRow] = field(default_factory=dict)
    #: attribution_credit rows, filled after the fold (services.replay.credits)
    credits: list[tuple[Any, ...]] = field(default_factory=list)
    credit_as_of: datetime | None = None
    accepted: int = 0
    derived: int = 0

    @property
    def lead_count(self) -> int:
        return len(self.leads) + len(self.packed)

    @property
    def timer_count(self) -> int:
        return len(self.timers) + len(self.timer_values)

    def lead_rows(self) -> Iterator[tuple[Any, ...]]:
        yield from map(lead_row, self.leads.values())
        yield from (p.lead for p in self.packed.values())

    def stage_rows(self) -> Iterator[tuple[Any, ...]]:
        yield from stage_rows(self.leads.values())
        for p in self.packed.values():
            yield from p.stages

    def handoff_rows(self) -> Iterator[tuple[Any, ...]]:
        yield from handoff_rows(self.leads.values())
        for p in self.packed.values():
            yield from p.handoffs

    def leads_by_id(self, funnel: Funnel) -> Iterator[LeadState]:
        """Every lead in lead-id order, unpacking one packed lead at a time."""
        for lid in sorted(self.leads.keys() | self.packed.keys()):
            state = self.leads.get(lid)
            yield state if state is not None else self.packed[lid].unpack(lid, funnel)


class MemoryStore:
    """Implements ``ProjectionStore``, ``SlaStore`` and ``IdentityStore`` over a ``ReplayState``."""

    def __init__(self, state: ReplayState | None = None, keep_leads: int = UNBOUNDED) -> None:
        self.state = state or ReplayState()
        self.keep_leads = keep_leads
        # The live SLA engine asks for the rows of every lead new to a batch: an index keeps
        # that from scanning every timer each time. The replay's deferred engine never asks,
        # so the index is built on the first question only, and kept up from then on.
        self._timers_by_lead: dict[str, dict[Key, TimerRow]] | None = None

    def _timer_index(self) -> dict[str, dict[Key, TimerRow]]:
        if self._timers_by_lead is None:
            self._timers_by_lead = {}
            for key, row in self.state.timers.items():
                self._timers_by_lead.setdefault(key[0], {})[key] = row
        return self._timers_by_lead

    async def load_checkpoints(
        self, topic: str, partitions: Sequence[int]
    ) -> dict[int, Checkpoint]:
        cps = self.state.checkpoints
        return {p: cps[(topic, p)] for p in partitions if (topic, p) in cps}

    async def load_histories(self, lead_ids: Sequence[str]) -> dict[str, list[Event]]:
        # The pipeline refolds evicted leads from their history; here the folded state itself
        # is kept, so the history is at hand.
        leads, packed = self.state.leads, self.state.packed
        out = {lid: list(leads[lid].events) for lid in lead_ids if lid in leads}
        out.update((lid, packed[lid].history()) for lid in lead_ids if lid in packed)
        return out

    async def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        return self.state.accepted_ids.intersection(event_ids)

    async def load_timers(self, lead_ids: Sequence[str]) -> dict[str, list[TimerRow]]:
        by_lead = self._timer_index()
        return {lid: list(by_lead[lid].values()) for lid in lead_ids if lid in by_lead}

    async def load_pending(self, partitions: Sequence[int]) -> list[TimerRow]:
        wanted = set(partitions)
        return [r for r in self.state.timers.values() if r.partition in wanted and r.next_fire_at]

    async def load_identities(self, email_keys: Sequence[str]) -> dict[str, dict[str, Holder]]:
        ids = self.state.identities
        return {k: dict(ids[k]) for k in email_keys if k in ids}

    async def commit(
        self,
        batch: BatchWrite,
        expected: dict[int, int | None],
        delivered: Awaitable[None] | None = None,
    ) -> None:
        if delivered is not None:
            await delivered  # before anything counts as committed, as the port asks
        s = self.state
        if batch.closed_loop is not None:
            # Facts, never updated: the first row of a key stands (ON CONFLICT DO NOTHING).
            for h in batch.closed_loop.holders:
                s.identities.setdefault(h.email_key, {}).setdefault(h.lead_id, h)
            for pair in batch.closed_loop.pairs:
                s.pairs.setdefault((pair.original.lead_id, pair.duplicate.lead_id), pair)
            for x in batch.closed_loop.suppressed:
                s.suppressed.setdefault((x.rehandoff.event.subject, x.rehandoff.event.id), x)
            s.derived += len(batch.closed_loop.derived)
        s.accepted_ids.update([event.id for _, event in batch.accepted])
        s.accepted += len(batch.accepted)
        leads, packed = s.leads, s.packed
        for lead in batch.leads:
            # Moved to the end: the order is the order of last commits.
            lead_id = lead.lead_id
            packed.pop(lead_id, None)
            leads[lead_id] = lead
            leads.move_to_end(lead_id)
        while len(leads) > self.keep_leads:
            lead_id, state = leads.popitem(last=False)
            packed[lead_id] = PackedLead.of(state)
        s.rejected.extend(batch.rejected)
        if batch.sla is not None:
            self.add_sla(batch.sla)
        for p, c in batch.checkpoints.items():
            s.checkpoints[(batch.topic, p)] = c

    def add_sla(self, sla: SlaWrite) -> None:
        """Timer rows, figures and volume facts of a batch (or of the replay's end)."""
        s = self.state
        by_lead = self._timers_by_lead
        if by_lead is None:
            s.timers.update([(row.timer.key, row) for row in sla.rows])
        else:
            for row in sla.rows:
                key = row.timer.key
                s.timers[key] = row
                by_lead.setdefault(key[0], {})[key] = row
        s.figures.update(sla.figures)
        s.facts.update(sla.facts)
        s.derived += sla.fired

    def add_final(self, final: FinalRows) -> None:
        """The timer rows, volume facts and fact count the SLA engine settled at the end."""
        s = self.state
        s.timer_values += final.values
        s.facts.update(final.facts)
        s.derived += final.fired


class DiscardDerived:
    """A ``DerivedSink`` that drops derived events: they follow from the log deterministically,
    and republishing them during a replay would duplicate facts on the live topic."""

    async def send(self, events: Sequence[Event]) -> None:
        return None


class KeepDeadLetters:
    """A ``DeadLetterSink`` that writes nothing to Kafka; the store keeps the rejections."""

    async def send(self, rejected: Sequence[RejectedRecord]) -> None:
        return None
