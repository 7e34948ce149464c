"""Sales feedback from the event archive: the histories of leads with feedback-bearing events in
the period, aggregated by the pure ``projections.closed_loop.feedback``."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import orjson

from events.codec import decode_obj
from events.envelope import Event
from events.errors import RejectedInput
from events.funnel import Funnel
from projections.closed_loop.feedback import Dimension, FeedbackRow, feedback

#: Events that can open a handoff, reject it, disqualify or re-hand over a lead.
_TYPES = ["lead.created", "lead.stage_changed", "lead.disqualified", "lead.recycled"]


class PostgresFeedbackReader:
    """Reads whole histories of the leads concerned, in one repeatable-read snapshot."""

    def __init__(self, pool: asyncpg.Pool, funnel: Funnel) -> None:
        self.pool = pool
        self.funnel = funnel

    async def feedback(self, start: datetime, end: datetime, by: Dimension) -> list[FeedbackRow]:
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            rows = await conn.fetch(
                "SELECT lead_id, payload::text AS payload FROM event_archive WHERE lead_id IN"
                " (SELECT DISTINCT lead_id FROM event_archive WHERE event_time >= $1"
                " AND event_time < $2 AND event_type = ANY($3::text[]))",
                start,
                end,
                _TYPES,
            )
        histories: dict[str, list[Event]] = {}
        for r in rows:
            try:
                event = decode_obj(orjson.loads(r["payload"]))
            except RejectedInput:
                continue  # an archived payload the current code cannot read counts as absent
            histories.setdefault(r["lead_id"], []).append(event)
        return feedback(histories, self.funnel, start, end, by)
