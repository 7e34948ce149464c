"""The API's view of one lead, read from the Postgres read models (never from Kafka)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from projections.time_in_stage import stage_times
from projections.views import Handoff, StageSpan
from services.api.models import HandoffOut, LeadDetail, StageTimeOut, StageVisit


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _handoff_out(h: Handoff) -> HandoffOut:
    return HandoffOut(
        started_at=h.started_at,
        assigned_at=h.assigned_at,
        action=h.action,
        action_at=h.action_at,
        latency_seconds=h.latency_seconds,
        system_delay_seconds=h.system_delay_seconds,
        human_delay_seconds=h.human_delay_seconds,
    )


class PostgresLeadReader:
    """Implements the API's ``LeadReader`` over an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], datetime] = _utc_now) -> None:
        self.pool = pool
        self.clock = clock

    async def get_lead(self, lead_id: str) -> LeadDetail | None:
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            # One snapshot for the three tables, so a concurrent batch never shows half a lead.
            lead = await conn.fetchrow("SELECT * FROM lead_current WHERE lead_id = $1", lead_id)
            if lead is None:
                return None
            stage_rows = await conn.fetch(
                "SELECT stage, team, entered_at, exited_at, entered_via, from_stage, reason"
                " FROM lead_stage_history WHERE lead_id = $1 ORDER BY seq",
                lead_id,
            )
            handoff_rows = await conn.fetch(
                "SELECT started_at, start_event_id, assigned_at, action_at, action,"
                " action_event_id FROM lead_handoff WHERE lead_id = $1 ORDER BY seq",
                lead_id,
            )
        spans = [StageSpan(**dict(r)) for r in stage_rows]
        handoffs = [_handoff_out(Handoff(**dict(r))) for r in handoff_rows]
        return LeadDetail(
            lead_id=lead["lead_id"],
            current_stage=lead["current_stage"],
            highest_stage=lead["highest_stage"],
            owner_id=lead["owner_id"],
            team=lead["owner_team"],
            created_at=lead["created_at"],
            entered_current_at=lead["entered_current_at"],
            last_event_at=lead["last_event_at"],
            event_count=lead["event_count"],
            stage_history=[
                StageVisit(
                    stage=s.stage,
                    team=s.team,
                    entered_at=s.entered_at,
                    exited_at=s.exited_at,
                    seconds=s.seconds,
                    from_stage=s.from_stage,
                    reason=s.reason,
                    entered_via=s.entered_via,
                )
                for s in spans
            ],
            time_in_stage=[
                StageTimeOut(
                    stage=t.stage,
                    visits=t.visits,
                    cumulative_seconds=t.cumulative_seconds,
                    latest_seconds=t.latest_seconds,
                )
                for t in stage_times(spans, self.clock())
            ],
            handoff=handoffs[-1] if handoffs else None,
            handoffs=handoffs,
        )
