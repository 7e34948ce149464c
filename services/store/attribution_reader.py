"""Attribution from the ``event_archive`` table: reports and deal explanations.

Credit is never stored: every answer is recomputed from the archived events with the pure
attribution core, so it is exact (Decimal) and reproducible to the cent for the same past.
Reads run in one read-only, repeatable-read transaction (a single snapshot, whatever the
processor commits meanwhile) and stream the archive with a server-side cursor in lead order,
so memory holds one lead's events at a time plus one ``Attribution`` per covered deal.
The touchpoints of a lead merged into another count as the survivor's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from events.attribution_config import AttributionConfig, load_attribution
from events.codec import decode_obj
from events.envelope import Event
from events.errors import RejectedInput
from events.funnel import Funnel
from services.api.attribution_models import AttributionReport, DealExplanation, Dimension
from services.store.attribution_report import ReportBuilder, ReportSpec, explain, resolve_models

#: The archive with the touchpoints of a merged lead (``lead.merged``, recorded in
#: ``lead_current.merged_into``) counted as its survivor's: the same person's touches credit
#: the survivor's deals (one merge step; see projections/closed_loop/merge.py).
_OWNED = """
WITH owned AS (
    SELECT COALESCE(m.merged_into, a.lead_id) AS lead_id, a.event_id, a.event_time,
           a.payload::text AS payload
    FROM event_archive a LEFT JOIN lead_current m
      ON m.lead_id = a.lead_id AND m.merged_into IS NOT NULL
     AND a.event_type = 'touchpoint.recorded')
"""
#: Leads with a deal event the report may cover: won or lost in the period, or created
#: before its end (possibly still open). A superset; the pure rules decide exactly.
_REPORT_SQL = f"""
{_OWNED}
SELECT lead_id, event_id, payload FROM owned
WHERE event_time <= $1 AND lead_id IN (
    SELECT lead_id FROM event_archive WHERE event_time <= $1 AND (
        (event_type IN ('deal.won', 'deal.lost') AND event_time >= $2 AND event_time < $3)
        OR (event_type = 'deal.created' AND event_time < $3)))
ORDER BY lead_id, event_time, event_id
"""
#: Every lead that mentions the deal, with its history up to ``as_of``.
_EXPLAIN_SQL = f"""
{_OWNED}
SELECT lead_id, event_id, payload FROM owned
WHERE event_time <= $2 AND lead_id IN (
    SELECT lead_id FROM event_archive
    WHERE event_type IN ('deal.created', 'deal.won', 'deal.lost')
      AND payload::jsonb -> 'data' ->> 'deal_id' = $1)
ORDER BY lead_id, event_time, event_id
"""


class PostgresAttributionReader:
    """Implements the API's ``AttributionReader`` over an asyncpg pool."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        funnel: Funnel,
        config: AttributionConfig | None = None,
        *,
        prefetch: int = 2000,
    ) -> None:
        self.pool = pool
        self.funnel = funnel
        self.config = config if config is not None else load_attribution()
        self.prefetch = prefetch

    async def report(
        self,
        models: Sequence[str],
        start: datetime,
        end: datetime,
        as_of: datetime,
        by: Sequence[Dimension] = ("campaign", "channel"),
    ) -> AttributionReport:
        """Credit per campaign and/or channel of the deals won in ``[start, end)`` and the
        open pipeline, as known at ``as_of``, under each model. UnknownModel for a bad name."""
        spec = ReportSpec(resolve_models(self.config, models), start, end, as_of, tuple(by))
        builder = ReportBuilder(spec, self.funnel)
        async for lead_id, events, broken in self._leads(_REPORT_SQL, as_of, start, end):
            builder.warnings.extend(broken)
            builder.add_lead(lead_id, events)
        return builder.report()

    async def explain(
        self, deal_id: str, models: Sequence[str], as_of: datetime
    ) -> DealExplanation | None:
        """Each counted touch of the deal under each model, or None when no lead knew the
        deal at ``as_of``. UnknownModel for a bad model name."""
        resolved = resolve_models(self.config, models)
        histories: list[tuple[str, Sequence[Event]]] = []
        warnings: list[str] = []
        async for lead_id, events, broken in self._leads(_EXPLAIN_SQL, deal_id, as_of):
            histories.append((lead_id, events))
            warnings.extend(broken)
        found = explain(deal_id, histories, resolved, self.funnel, as_of=as_of)
        if found is None or not warnings:
            return found
        return found.model_copy(update={"warnings": [*found.warnings, *warnings]})

    async def _leads(
        self, sql: str, *args: Any
    ) -> AsyncIterator[tuple[str, list[Event], list[str]]]:
        """(lead id, decoded events, warnings) per lead, from rows ordered by lead id."""
        lead: str | None = None
        events: list[Event] = []
        broken: list[str] = []
        async with self.pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                async for row in conn.cursor(sql, *args, prefetch=self.prefetch):
                    if row["lead_id"] != lead:
                        if lead is not None:
                            yield lead, events, broken
                        lead, events, broken = row["lead_id"], [], []
                    try:
                        events.append(decode_obj(orjson.loads(row["payload"])))
                    except RejectedInput as exc:
                        # Archived events were valid when accepted; one that no longer decodes
                        # (a removed schema version) must be visible, not silently dropped.
                        broken.append(
                            f"archived event {row['event_id']} of lead {lead} no longer "
                            f"decodes ({exc.rejection.reason.value}); left out"
                        )
            if lead is not None:
                yield lead, events, broken
