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


#: Columns of each table, with the PostgreSQL type of each for the unnest inserts.
IDENTITY_COLUMNS = ("email_key", "lead_id", "first_seen", "event_id")
IDENTITY_TYPES = ("text", "text", "timestamptz", "text")
DUPLICATE_COLUMNS = (
    "original_id", "duplicate_id", "email_key", "original_first_seen", "duplicate_first_seen",
    "derived_event_id",
)  # fmt: skip
DUPLICATE_TYPES = ("text", "text", "text", "timestamptz", "timestamptz", "text")
SUPPRESSION_COLUMNS = (
    "lead_id", "event_id", "event_time", "event_source", "to_stage", "action", "suppressed_by",
    "reason_code", "disqualified_at", "lead_source", "campaign_id", "channel",
)  # fmt: skip
SUPPRESSION_TYPES = (
    "text", "text", "timestamptz", "text", "text", "text", "text", "text", "timestamptz", "text",
    "text", "text",
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
    """Insert the attempt's rows inside the batch transaction, after fencing the email keys.

    One statement per table (arrays unnested server-side), not one round trip per row: a
    batch of new leads carries as many holders as leads.
    """
    keys = sorted({h.email_key for h in write.holders})
    if keys:
        await _fence(conn, keys, write.seen_holders)
        await _insert(conn, "lead_identity", IDENTITY_COLUMNS, IDENTITY_TYPES,
                      [identity_row(h) for h in write.holders])  # fmt: skip
    if write.pairs:
        await _insert(conn, "lead_duplicate", DUPLICATE_COLUMNS, DUPLICATE_TYPES,
                      [duplicate_row(p) for p in write.pairs])  # fmt: skip
    if write.suppressed:
        await _insert(conn, "handoff_suppression", SUPPRESSION_COLUMNS, SUPPRESSION_TYPES,
                      [suppression_row(s) for s in write.suppressed])  # fmt: skip


async def _insert(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    arrays = [list(column) for column in zip(*rows, strict=True)]
    params = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, 1))
    await conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({params})"
        " ON CONFLICT DO NOTHING",
        *arrays,
    )


async def _fence(
    conn: asyncpg.Connection, keys: Sequence[str], seen: dict[str, frozenset[str]]
) -> None:
    # Two workers may create leads with one email on two partitions at once. Per-key locks
    # (in sorted order, so no deadlock: unnest yields the sorted array in order) serialise
    # them; the second one then sees the first's committed holder here, which it did not
    # compare against, and redoes its batch.
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 7)) FROM unnest($1::text[]) AS k",
        list(keys),
    )
    rows = await conn.fetch(
        "SELECT email_key, lead_id FROM lead_identity WHERE email_key = ANY($1::text[])",
        list(keys),
    )
    for r in rows:
        if r["lead_id"] not in seen.get(r["email_key"], frozenset()):
            raise StoreUnavailable(
                f"lead {r['lead_id']} took email key {r['email_key'][:12]}... meanwhile"
            )
