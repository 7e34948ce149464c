"""A lead's audit trail from PostgreSQL: archive, stage history, rejections and SLA timers.

Everything is read in one read-only, repeatable-read transaction, so the timeline is one
consistent snapshot even while the processor commits. The ``sla_timer`` table belongs to the
SLA engine; a database without it (or a query on it that fails) gives a timeline without SLA
facts and ``sla_available=False``, never an error.

A survivor of ``lead.merged`` gets the merged view (``projections.closed_loop.merge``): the
archives, rejections and SLA timers of every lead merged into it (transitively, found through
``lead_current.merged_into``), and stages recomputed by folding both histories in event-time
order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from events.codec import decode_obj
from events.envelope import Event
from events.errors import RejectedInput
from events.funnel import Funnel, load_funnel
from projections.closed_loop.merge import merged_state
from projections.views import StageSpan
from services.api.audit_models import KafkaPosition, LeadTimeline, TimelineEntry
from services.store.audit_closed_loop import closed_loop_entries
from services.store.audit_timeline import Archived, CurrentRow, build_timeline


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PostgresAuditReader:
    """Implements the API's ``AuditReader`` over an asyncpg pool."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Callable[[], datetime] = _utc_now,
        funnel: Funnel | None = None,
    ) -> None:
        self.pool = pool
        self.clock = clock
        #: folds the merged view of a survivor; the packaged funnel unless given
        self.funnel = funnel or load_funnel()

    async def timeline(self, lead_id: str) -> LeadTimeline | None:
        """Every event, rejection and SLA fact of the lead in event-time order; None when the
        lead is unknown."""
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            current = await conn.fetchrow(
                "SELECT current_stage, highest_stage, owner_id, owner_team FROM lead_current"
                " WHERE lead_id = $1",
                lead_id,
            )
            ids = [lead_id, *await _merged_into(conn, lead_id)]
            archived = await conn.fetch(
                "SELECT lead_id, event_id, event_type, source, event_time,"
                " payload::text AS payload, kafka_topic, kafka_partition, kafka_offset"
                " FROM event_archive WHERE lead_id = ANY($1::text[])"
                " ORDER BY event_time, event_id",
                ids,
            )
            spans = await conn.fetch(
                "SELECT stage, team, entered_at, exited_at, entered_via, from_stage, reason"
                " FROM lead_stage_history WHERE lead_id = $1 ORDER BY seq",
                lead_id,
            )
            rejected = await conn.fetch(
                "SELECT kafka_topic, kafka_partition, kafka_offset, event_id, reason, detail,"
                " raw, rejected_at FROM rejected_event WHERE lead_id = ANY($1::text[])"
                " ORDER BY rejected_at, kafka_topic, kafka_partition, kafka_offset",
                ids,
            )
            sla_rows = await _sla_rows(conn, ids)
            loop = await _closed_loop(conn, ids)
        rows = [_archived(r) for r in archived]
        stages = [StageSpan(**dict(r)) for r in spans]
        head = (
            CurrentRow(
                current["current_stage"],
                current["highest_stage"],
                current["owner_id"],
                current["owner_team"],
            )
            if current is not None
            else None
        )
        origin = None
        if len(ids) > 1:
            histories: dict[str, list[Event]] = {i: [] for i in ids}
            for row, raw in zip(rows, archived, strict=True):
                if row.event is not None:
                    histories[raw["lead_id"]].append(row.event)
            merged = merged_state(lead_id, histories, self.funnel)
            view = merged.state.view
            origin = dict(merged.origin)
            origin.update({r["event_id"]: r["lead_id"] for r in archived})
            stages = list(view.stages)
            head = CurrentRow(view.current_stage, view.highest_stage, view.owner_id, view.team)
        return build_timeline(
            lead_id,
            archived=rows,
            spans=stages,
            current=head,
            rejected=[dict(r) for r in rejected],
            sla_rows=sla_rows,
            now=self.clock(),
            origin=origin,
            closed_loop=loop,
        )


async def _closed_loop(conn: asyncpg.Connection, lead_ids: list[str]) -> list[TimelineEntry]:
    """Suppressed re-handoffs and duplicate pairs of the leads (none before migration 003)."""
    if not await conn.fetchval("SELECT to_regclass('handoff_suppression') IS NOT NULL"):
        return []
    suppressions = await conn.fetch(
        "SELECT * FROM handoff_suppression WHERE lead_id = ANY($1::text[])", lead_ids
    )
    duplicates = await conn.fetch(
        "SELECT * FROM lead_duplicate WHERE original_id = ANY($1::text[])"
        " OR duplicate_id = ANY($1::text[])",
        lead_ids,
    )
    return closed_loop_entries([dict(r) for r in suppressions], [dict(r) for r in duplicates])


async def _merged_into(conn: asyncpg.Connection, lead_id: str) -> list[str]:
    """Leads merged into ``lead_id``, directly or through a chain (UNION stops at cycles)."""
    rows = await conn.fetch(
        "WITH RECURSIVE m(lead_id) AS ("
        " SELECT lead_id FROM lead_current WHERE merged_into = $1"
        " UNION SELECT c.lead_id FROM lead_current c JOIN m ON c.merged_into = m.lead_id)"
        " SELECT lead_id FROM m WHERE lead_id <> $1 ORDER BY lead_id",
        lead_id,
    )
    return [r["lead_id"] for r in rows]


async def _sla_rows(conn: asyncpg.Connection, lead_ids: list[str]) -> list[dict[str, Any]] | None:
    """The leads' ``sla_timer`` rows; None when this database has no such table."""
    if not await conn.fetchval("SELECT to_regclass('sla_timer') IS NOT NULL"):
        return None
    try:
        # A savepoint: a failing query (the SLA schema changed under us) must not abort the
        # audit's transaction.
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT * FROM sla_timer WHERE lead_id = ANY($1::text[])"
                " ORDER BY started_at, policy, cycle_id",
                lead_ids,
            )
    except asyncpg.PostgresError:
        return None
    return [dict(r) for r in rows]


def _archived(row: Any) -> Archived:
    position = KafkaPosition(
        topic=row["kafka_topic"], partition=row["kafka_partition"], offset=row["kafka_offset"]
    )
    try:
        event = decode_obj(orjson.loads(row["payload"]))
        problem = None
    except RejectedInput as exc:
        event, problem = None, str(exc)
    return Archived(
        event_id=row["event_id"],
        type=row["event_type"],
        source=row["source"],
        time=row["event_time"],
        position=position,
        event=event,
        problem=problem,
    )
