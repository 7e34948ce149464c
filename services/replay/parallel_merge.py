"""What a parallel replay's parent puts together from its workers' folds (see
``services.replay.parallel``): each worker's report, the check that their shares were
independent, the duplicate pairs across workers and the credit of a deal found twice."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.closed_loop.duplicates import DuplicatePair, Holder, pair
from services.processor.records import Checkpoint


@dataclass(slots=True)
class Folded:
    """What a worker reports once its fold is done."""

    records: int
    ticks: int
    cut: int
    read_cpu: float
    latest: datetime | None
    #: every lead its records named, accepted or rejected
    leads: set[str]
    event_ids: set[str]
    identities: dict[str, dict[str, Holder]]
    checkpoints: dict[tuple[str, int], Checkpoint]


def cross_pairs(identities: list[dict[str, dict[str, Holder]]]) -> list[DuplicatePair]:
    """The duplicate pairs between holders of one key that sit in two different workers."""
    out = []
    for i, ours in enumerate(identities):
        for theirs in identities[i + 1 :]:
            for key in sorted(ours.keys() & theirs.keys()):
                out += [pair(a, b) for a in ours[key].values() for b in theirs[key].values()]
    return out


def first_lead_credits(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Credit rows with each (model, deal) kept on the first lead in lead-id order only
    (columns as ``projections.CREDIT_COLUMNS``: model, version, deal, lead, ...)."""
    rows = list(rows)
    first: dict[tuple[str, str], str] = {}
    for r in rows:
        key, lead = (r[0], r[2]), r[3]
        known = first.get(key)
        if known is None or lead < known:
            first[key] = lead
    return [r for r in rows if first[(r[0], r[2])] == r[3]]


def overlap(folded: list[Folded]) -> str | None:
    """Why the workers' results cannot be put together, or None (see the module doc)."""
    for i, ours in enumerate(folded):
        for theirs in folded[i + 1 :]:
            leads = ours.leads & theirs.leads
            if leads:
                return f"lead {min(leads)!r} has records on partitions of two workers"
            ids = ours.event_ids & theirs.event_ids
            if ids:
                return f"event id {min(ids)!r} was accepted on partitions of two workers"
    return None
