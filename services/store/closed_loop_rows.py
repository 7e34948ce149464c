"""PostgreSQL rows of the closed loop: email-key holders, duplicate pairs, suppressions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from projections.closed_loop.duplicates import DuplicatePair, Holder
from services.processor.closed_loop import ClosedLoopWrite, SuppressedRow
from services.processor.ports import StoreUnavailable


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


async def write_closed_loop(conn: asyncpg.Connection, write: ClosedLoopWrite) -> None:
    """Insert the attempt's rows inside the batch transaction, after fencing the email keys."""
    keys = sorted({h.email_key for h in write.holders})
    if keys:
        await _fence(conn, keys, write.seen_holders)
        await conn.executemany(
            "INSERT INTO lead_identity (email_key, lead_id, first_seen, event_id)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            [identity_row(h) for h in write.holders],
        )
    if write.pairs:
        await conn.executemany(
            "INSERT INTO lead_duplicate (original_id, duplicate_id, email_key,"
            " original_first_seen, duplicate_first_seen, derived_event_id)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            [duplicate_row(p) for p in write.pairs],
        )
    if write.suppressed:
        await conn.executemany(
            "INSERT INTO handoff_suppression (lead_id, event_id, event_time, event_source,"
            " to_stage, action, suppressed_by, reason_code, disqualified_at, lead_source,"
            " campaign_id, channel) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"
            " ON CONFLICT DO NOTHING",
            [suppression_row(s) for s in write.suppressed],
        )


async def _fence(
    conn: asyncpg.Connection, keys: Sequence[str], seen: dict[str, frozenset[str]]
) -> None:
    # Two workers may create leads with one email on two partitions at once. Per-key locks
    # (in sorted order, so no deadlock) serialise them; the second one then sees the first's
    # committed holder here, which it did not compare against, and redoes its batch.
    for key in keys:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", key)
    rows = await conn.fetch(
        "SELECT email_key, lead_id FROM lead_identity WHERE email_key = ANY($1::text[])",
        list(keys),
    )
    for r in rows:
        if r["lead_id"] not in seen.get(r["email_key"], frozenset()):
            raise StoreUnavailable(
                f"lead {r['lead_id']} took email key {r['email_key'][:12]}... meanwhile"
            )
