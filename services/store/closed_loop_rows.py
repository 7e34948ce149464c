"""PostgreSQL rows of the closed loop: email-key holders, duplicate pairs, suppressions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from projections.closed_loop.duplicates import DuplicatePair, Holder
from services.processor.closed_loop import ClosedLoopWrite, SuppressedRow


async def load_identities(
    pool: asyncpg.Pool, email_keys: Sequence[str]
) -> dict[str, dict[str, Holder]]:
    """Per email key, the leads that hold it."""
    rows = await pool.fetch(
        "SELECT email_key, lead_id, first_seen, event_id FROM lead_identity"
        " WHERE email_key = ANY($1::text[])",
        list(email_keys),
    )
    out: dict[str, dict[str, Holder]] = {}
    for r in rows:
        holder = Holder(r["first_seen"], r["lead_id"], r["email_key"], r["event_id"])
        out.setdefault(r["email_key"], {})[r["lead_id"]] = holder
    return out


#: Columns of each table, in the field order of its row type (007); the replay COPYs them.
IDENTITY_COLUMNS = ("email_key", "lead_id", "first_seen", "event_id")
DUPLICATE_COLUMNS = (
    "original_id", "duplicate_id", "email_key", "original_first_seen", "duplicate_first_seen",
    "derived_event_id",
)  # fmt: skip
SUPPRESSION_COLUMNS = (
    "lead_id", "event_id", "event_time", "event_source", "to_stage", "action", "suppressed_by",
    "reason_code", "disqualified_at", "lead_source", "campaign_id", "channel",
)  # fmt: skip


def identity_row(h: Holder) -> tuple[Any, ...]:
    return (h.email_key, h.lead_id, h.first_seen, h.event_id)


def duplicate_row(p: DuplicatePair) -> tuple[Any, ...]:
    return (p.original.lead_id, p.duplicate.lead_id, p.original.email_key,
            p.original.first_seen, p.duplicate.first_seen, p.id)  # fmt: skip


def suppression_row(s: SuppressedRow) -> tuple[Any, ...]:
    r = s.rehandoff
    return (r.event.subject, r.event.id, r.event.time, r.event.source, r.to_stage, s.action,
            r.suppression.event_id, r.suppression.reason_code, r.suppression.at, s.lead_source,
            s.campaign_id, s.channel)  # fmt: skip


def commit_args(write: ClosedLoopWrite) -> tuple[Any, ...]:
    """The closed-loop arguments of ``commit_batch`` (007), None for an empty set: the email
    keys to fence, sorted (the order their locks are taken in, so two workers cannot
    deadlock); the holders the attempt compared against, as parallel key and lead arrays; the
    identity, duplicate and suppression rows to insert."""
    keys = sorted({h.email_key for h in write.holders})
    seen_keys: list[str] = []
    seen_leads: list[str] = []
    for key in keys:
        for lead_id in write.seen_holders.get(key, ()):
            seen_keys.append(key)
            seen_leads.append(lead_id)
    return (
        keys or None, seen_keys or None, seen_leads or None,
        [identity_row(h) for h in write.holders] or None,
        [duplicate_row(p) for p in write.pairs] or None,
        [suppression_row(s) for s in write.suppressed] or None,
    )  # fmt: skip
