"""Funnel flow from the ``event_archive`` table, recomputed on every request.

Nothing is read from the snapshot tables (``lead_current``, ``lead_stage_history``): each
lead's archived events are folded again with the pure core (``projections.funnel_lead``) as
known at ``as_of``, so a report about the same past is the same after any replay. Reads run
in one read-only, repeatable-read transaction and stream the archive with a server-side
cursor in lead order, so memory holds one lead's events at a time plus the counters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson

from events.codec import decode_obj
from events.envelope import Event
from events.errors import RejectedInput
from events.funnel import Funnel
from projections.funnel_lead import lead_flow
from projections.funnel_report import FunnelBuilder, FunnelFlow, FunnelQuery
from services.api.funnel_models import FunnelReport, report_of

#: Every lead with an event before the period end (a lead that appears later cannot be in
#: the period), with its whole history up to as_of.
_FLOW_SQL = """
SELECT lead_id, event_id, payload::text AS payload FROM event_archive
WHERE event_time <= $1 AND lead_id IN (
    SELECT lead_id FROM event_archive WHERE event_time < $2 AND event_time <= $1)
ORDER BY lead_id, event_time, event_id
"""


class PostgresFunnelReader:
    """Funnel reports over an asyncpg pool (the API's and the CLI's reader)."""

    def __init__(self, pool: asyncpg.Pool, funnel: Funnel, *, prefetch: int = 2000) -> None:
        self.pool = pool
        self.funnel = funnel
        self.prefetch = prefetch
        #: Archived events that no longer decode, from the last read (named, never hidden).
        self.warnings: list[str] = []

    async def flow(self, query: FunnelQuery) -> FunnelFlow:
        """The pure report for ``[start, end)`` as known at ``as_of``."""
        builder = FunnelBuilder(self.funnel, query)
        self.warnings = []
        async for lead_id, events in self._leads(_FLOW_SQL, query.as_of, query.end):
            builder.add(lead_flow(lead_id, events, self.funnel, query.as_of))
        return builder.result()

    async def report(self, query: FunnelQuery) -> FunnelReport:
        """The response body of ``GET /v1/funnel``."""
        found = await self.flow(query)
        return report_of(found, query.by, self.warnings)

    async def _leads(self, sql: str, *args: Any) -> AsyncIterator[tuple[str, list[Event]]]:
        """(lead id, decoded events) per lead, from rows ordered by lead id."""
        lead: str | None = None
        events: list[Event] = []
        async with self.pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                async for row in conn.cursor(sql, *args, prefetch=self.prefetch):
                    if row["lead_id"] != lead:
                        if lead is not None:
                            yield lead, events
                        lead, events = row["lead_id"], []
                    try:
                        events.append(decode_obj(orjson.loads(row["payload"])))
                    except RejectedInput as exc:
                        self.warnings.append(
                            f"archived event {row['event_id']} of lead {lead} no longer "
                            f"decodes ({exc.rejection.reason.value}); left out"
                        )
            if lead is not None:
                yield lead, events
