"""Duplicate detection by email key.

A lead **holds** an email key from its ``lead.created`` events that carry one (the processor
put the keyed HMAC there, see ``projections.closed_loop.privacy``); its ``first_seen`` for that
key is the earliest such event's time. Two leads that hold the same key are a duplicate pair;
the **original** is the one seen first (then the smaller lead id), the other the
**duplicate**. Pairs are unordered facts about the set of holders, so the pairs of a set of
histories are the same whatever order the leads arrived in; each pair gets one
``lead.duplicate_detected`` whose id names both leads, so it is deduped on redelivery.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from events.catalog import LeadCreated
from events.envelope import Event
from events.kinds import CREATED, KINDS

_MAX_ID = 128


@dataclass(frozen=True, slots=True, order=True)
class Holder:
    """One lead holding one email key, since ``first_seen`` (ordered: earliest first)."""

    first_seen: datetime
    lead_id: str
    email_key: str
    event_id: str


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    original: Holder
    duplicate: Holder

    @property
    def id(self) -> str:
        """``closedloop/duplicate/{original}/{duplicate}``, or a digest when too long."""
        text = f"closedloop/duplicate/{self.original.lead_id}/{self.duplicate.lead_id}"
        if len(text) <= _MAX_ID:
            return text
        pair = f"{self.original.lead_id}\x00{self.duplicate.lead_id}".encode()
        return "closedloop/duplicate/" + hashlib.sha256(pair).hexdigest()[:48]


def holdings(lead_id: str, events: Iterable[Event]) -> dict[str, Holder]:
    """The email keys a lead holds, each with its earliest ``lead.created`` (any order)."""
    out: dict[str, Holder] = {}
    for event in events:
        key = created_key(event)
        if key is None:
            continue
        found = Holder(event.time, lead_id, key, event.id)
        known = out.get(key)
        if known is None or (found.first_seen, found.event_id) < (known.first_seen, known.event_id):
            out[key] = found
    return out


def holds(events: Iterable[Event], email_key: str) -> bool:
    """Whether a lead with these events holds ``email_key`` (``email_key in holdings(...)``,
    without building the holders)."""
    return any(created_key(event) == email_key for event in events)


def created_key(event: Event) -> str | None:
    """The email key a ``lead.created`` event carries; None for any other event."""
    data = event.data
    # The flag first (``events.kinds``): a false isinstance of a pydantic class goes through
    # ABCMeta, and most of a history is not ``lead.created``.
    if KINDS[type(data)] & CREATED and isinstance(data, LeadCreated):
        return data.email_key
    return None


def pair(a: Holder, b: Holder) -> DuplicatePair:
    """The pair of two holders of one key, the earlier one as the original."""
    first, second = sorted((a, b))
    return DuplicatePair(first, second)


def pairs_with(new: Holder, holders: Mapping[str, Holder]) -> tuple[DuplicatePair, ...]:
    """The pairs ``new`` forms with the other holders of its key (``holders``: lead -> holder)."""
    return tuple(pair(new, other) for lead, other in sorted(holders.items()) if lead != new.lead_id)


def all_pairs(histories: Mapping[str, Iterable[Event]]) -> frozenset[tuple[str, str]]:
    """Every (original, duplicate) pair among whole histories: the ground truth that the
    processor's incremental detection must reproduce, whatever the arrival order."""
    by_key: dict[str, list[Holder]] = {}
    for lead_id, events in histories.items():
        for key, holder in holdings(lead_id, events).items():
            by_key.setdefault(key, []).append(holder)
    out: set[tuple[str, str]] = set()
    for holders in by_key.values():
        for i, a in enumerate(holders):
            for b in holders[i + 1 :]:
                p = pair(a, b)
                out.add((p.original.lead_id, p.duplicate.lead_id))
    return frozenset(out)
