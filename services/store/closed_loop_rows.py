"""PostgreSQL rows of the closed loop: email-key holders, duplicate pairs, suppressions."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from projections.closed_loop.duplicates import Holder
from services.processor.closed_loop import ClosedLoopWrite
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


async def write_closed_loop(conn: asyncpg.Connection, write: ClosedLoopWrite) -> None:
    """Insert the attempt's rows inside the batch transaction, after fencing the email keys."""
    keys = sorted({h.email_key for h in write.holders})
    if keys:
        await _fence(conn, keys, write.seen_holders)
        await conn.executemany(
            "INSERT INTO lead_identity (email_key, lead_id, first_seen, event_id)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            [(h.email_key, h.lead_id, h.first_seen, h.event_id) for h in write.holders],
        )
    if write.pairs:
        await conn.executemany(
            "INSERT INTO lead_duplicate (original_id, duplicate_id, email_key,"
            " original_first_seen, duplicate_first_seen, derived_event_id)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            [
                (p.original.lead_id, p.duplicate.lead_id, p.original.email_key,
                 p.original.first_seen, p.duplicate.first_seen, p.id)
                for p in write.pairs
            ],
        )  # fmt: skip
    if write.suppressed:
        await conn.executemany(
            "INSERT INTO handoff_suppression (lead_id, event_id, event_time, event_source,"
            " to_stage, action, suppressed_by, reason_code, disqualified_at, lead_source,"
            " campaign_id, channel) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"
            " ON CONFLICT DO NOTHING",
            [
                (s.rehandoff.event.subject, s.rehandoff.event.id, s.rehandoff.event.time,
                 s.rehandoff.event.source, s.rehandoff.to_stage, s.action,
                 s.rehandoff.suppression.event_id, s.rehandoff.suppression.reason_code,
                 s.rehandoff.suppression.at, s.lead_source, s.campaign_id, s.channel)
                for s in write.suppressed
            ],
        )  # fmt: skip


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
