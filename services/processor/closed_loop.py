"""The closed loop in the processor: pseudonymize, suppress re-handoffs, detect duplicates.

The rules are pure (``projections.closed_loop``); this class keeps what one batch attempt
needs between records, like the SLA engine:

- the HMAC key and email rules, to swap every address for its key right after decoding and
  to redact addresses in rejected records before they are stored;
- per attempt, the holders of the email keys the batch mentions (loaded from
  ``lead_identity``), extended record by record, so two leads of one batch are compared too.

The pipeline calls ``prepare`` once per attempt, ``admit`` before applying an event (it can
refuse a re-handoff in ``reject`` mode), ``applied`` after, and ``drain`` before producing and
committing. Derived events are produced before the commit and carry deterministic ids. The
store re-reads the key holders under a per-key lock inside the commit and refuses the batch
(to be redone) if another worker committed a holder meanwhile, so a pair split over two
partitions is never missed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from events.catalog import LeadCreated
from events.closed_loop import OnSuppressed
from events.closed_loop_events import HandoffSuppressed, LeadDuplicateDetected
from events.envelope import Event, make_event
from events.errors import Rejection
from events.funnel import Funnel
from events.kinds import CREATED, KINDS, MOVES
from events.sla_events import SOURCE
from projections.closed_loop.duplicates import (
    DuplicatePair,
    Holder,
    created_key,
    holds,
    pairs_with,
)
from projections.closed_loop.email import redact_bytes, redact_text
from projections.closed_loop.privacy import pseudonymize, pseudonymize_decoded
from projections.closed_loop.program import program_of
from projections.closed_loop.suppression import (
    Rehandoff,
    check_rehandoff,
    may_be_suppressed,
    new_rehandoffs,
    would_rehandoff,
)
from projections.lead import LeadState, check
from services.processor.ports import RejectedRecord

_MAX_ID = 128


class IdentityStore(Protocol):
    async def load_identities(self, email_keys: Sequence[str]) -> dict[str, dict[str, Holder]]:
        """Per email key, the leads holding it (lead id -> holder)."""


@dataclass(frozen=True, slots=True)
class SuppressedRow:
    """One ``handoff_suppression`` row: a re-handoff and what was done about it."""

    rehandoff: Rehandoff
    action: str
    campaign_id: str | None
    channel: str | None
    lead_source: str | None


@dataclass(slots=True)
class ClosedLoopWrite:
    """What one attempt adds: identity rows, pairs, suppressions and their derived events."""

    derived: list[Event] = field(default_factory=list)
    holders: list[Holder] = field(default_factory=list)
    pairs: list[DuplicatePair] = field(default_factory=list)
    suppressed: list[SuppressedRow] = field(default_factory=list)
    #: per email key written, the lead ids known to hold it when the attempt read them
    seen_holders: dict[str, frozenset[str]] = field(default_factory=dict)


class ClosedLoopEngine:
    """Closed-loop state of one pipeline; per-attempt state is reset by ``prepare``."""

    def __init__(self, funnel: Funnel, hmac_key: bytes) -> None:
        self.funnel = funnel
        self.rules = funnel.closed_loop.email
        self.key = hmac_key
        self._holders: dict[str, dict[str, Holder]] = {}
        self._out = ClosedLoopWrite()

    def pseudonymize(self, event: Event) -> Event:
        """The event with its email replaced by the email key (see ``privacy``)."""
        return pseudonymize(event, self.rules, self.key)

    def pseudonymize_decoded(self, event: Event) -> Event:
        """``pseudonymize`` of an event fresh from the decoder that nothing else holds: the
        same result, made in place (see ``privacy.pseudonymize_decoded``)."""
        return pseudonymize_decoded(event, self.rules, self.key)

    def redact(self, rejected: Sequence[RejectedRecord]) -> list[RejectedRecord]:
        """Rejected records as they may be stored: addresses in the raw bytes and the detail
        replaced by their keys. The dead-letter topic keeps the original bytes."""
        out = []
        for x in rejected:
            record = replace(x.record, value=redact_bytes(x.record.value, self.rules, self.key))
            detail = redact_text(x.rejection.detail, self.rules, self.key)
            out.append(replace(x, record=record, rejection=replace(x.rejection, detail=detail)))
        return out

    async def prepare(self, store: IdentityStore, events: Sequence[Event]) -> None:
        """Start an attempt: load the holders of every email key in ``events``."""
        self._out = ClosedLoopWrite()
        keys = sorted({key for e in events if (key := created_key(e)) is not None})
        self._holders = await store.load_identities(keys) if keys else {}
        for key in keys:
            self._holders.setdefault(key, {})
            self._out.seen_holders[key] = frozenset(self._holders[key])

    @property
    def may_refuse(self) -> bool:
        """Whether ``admit`` can refuse anything: only in ``reject`` mode. Otherwise it always
        returns None, so the pipeline need not call it for every event."""
        return self.funnel.closed_loop.on_suppressed_handoff is OnSuppressed.REJECT

    def admit(self, state: LeadState, event: Event) -> Rejection | None:
        """A rejection if ``event`` is a re-handoff refused by the config (and would otherwise
        be accepted); the refusal is announced as ``handoff.suppressed`` too."""
        if self.funnel.closed_loop.on_suppressed_handoff is not OnSuppressed.REJECT:
            return None  # flag mode: nothing to refuse, and no cost per event
        if check(state, event, self.funnel) is not None:
            return None  # rejected anyway, for its own reason
        rejection = check_rehandoff(state.events, event, self.funnel)
        if rejection is not None:
            found = would_rehandoff(state.events, event, self.funnel)
            if found is not None:
                self._suppressed(state, found, "rejected")
        return rejection

    def applied(self, before: LeadState, after: LeadState, event: Event) -> None:
        """Announce what the accepted ``event`` newly made true for the lead."""
        data = event.data
        # Only these can change the answers; skipping the rest keeps a replay's cost per
        # event constant for touches, contacts and assignments. The moves are the payloads
        # ``stage_move`` answers for when the lead has a stage (disqualifications among
        # them), read off the payload's flags (``events.kinds``) once, per exact type.
        kind = KINDS[type(data)]
        if kind & MOVES and may_be_suppressed(after.view, self.funnel):
            for found in new_rehandoffs(before.events, after.events, self.funnel):
                self._suppressed(after, found, "flagged")
        if kind & CREATED and isinstance(data, LeadCreated):
            key = data.email_key
            if key is not None:
                self._register(before, after, event, key)

    def _register(self, before: LeadState, after: LeadState, event: Event, key: str) -> None:
        # ``after`` is ``before`` plus ``event`` (all ``apply`` ever does), so the keys of
        # ``holdings(after)`` that ``holdings(before)`` lacks are at most ``key``, and then
        # ``event`` is the only ``lead.created`` of the lead with it: its holder is the
        # event's. Only ``before`` needs walking, not both histories.
        if holds(before.events, key):
            return
        holder = Holder(event.time, after.lead_id, key, event.id)
        others = self._holders.setdefault(key, {})
        for p in pairs_with(holder, others):
            self._out.pairs.append(p)
            self._out.derived.append(_duplicate_event(p))
        others[after.lead_id] = holder
        self._out.holders.append(holder)

    def drain(self) -> ClosedLoopWrite:
        """What this attempt produced, to be produced and committed with the batch."""
        return self._out

    def _suppressed(self, state: LeadState, found: Rehandoff, action: str) -> None:
        program = program_of((*state.events, found.event))
        row = SuppressedRow(
            found, action, program.campaign_id, program.channel, program.lead_source
        )
        self._out.suppressed.append(row)
        self._out.derived.append(_suppressed_event(state.lead_id, row))


def _bounded(text: str, prefix: str) -> str:
    if len(text) <= _MAX_ID:
        return text
    return prefix + hashlib.sha256(text.encode()).hexdigest()[:48]


def _suppressed_event(lead_id: str, row: SuppressedRow) -> Event:
    r = row.rehandoff
    data = HandoffSuppressed(
        lead_id=lead_id,
        event_id=r.event.id,
        event_source=r.event.source,
        to_stage=r.to_stage,
        action="rejected" if row.action == "rejected" else "flagged",
        suppressed_by=r.suppression.event_id,
        reason_code=r.suppression.reason_code,
        disqualified_at=r.suppression.at,
        lead_source=row.lead_source,
        campaign_id=row.campaign_id,
        channel=row.channel,
    )
    event_id = _bounded(f"closedloop/suppressed/{lead_id}/{r.event.id}", "closedloop/suppressed/")
    return _envelope(event_id, lead_id, r.event.time, data)


def _duplicate_event(p: DuplicatePair) -> Event:
    data = LeadDuplicateDetected(
        lead_id=p.duplicate.lead_id,
        original_id=p.original.lead_id,
        email_key=p.duplicate.email_key,
        original_first_seen=p.original.first_seen,
        duplicate_first_seen=p.duplicate.first_seen,
    )
    # The fact became true when the later of the two leads was created.
    return _envelope(p.id, p.duplicate.lead_id, p.duplicate.first_seen, data)


def _envelope(
    event_id: str, subject: str, time: datetime, data: HandoffSuppressed | LeadDuplicateDetected
) -> Event:
    return make_event(data, id=event_id, subject=subject, source=SOURCE, time=time)
