"""The SLA read side over PostgreSQL: the board of running timers and compliance reports.

Used by the HTTP API (``/v1/sla/*``), the CLI (``leadledger sla``) and the API process's SLA
gauges. Only the read models are read (``sla_timer``, ``sla_volume_fact``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import asyncpg

from events.sla_config import SlaConfig
from projections.sla_volume import month_of
from services import metrics
from services.api.sla_models import (
    OpenStatus,
    SlaCompliance,
    SlaOpenPage,
    SlaSummary,
    SlaTimerOut,
    VolumeMonth,
    delay_side,
    percent,
)

log = logging.getLogger(__name__)

# "Late" is read off the facts (a stop after the deadline), or for a running timer off the
# breach the processor declared; a late event that proves a timer was on time wins.
_LATE = (
    "(COALESCE(stopped_at > deadline, false) OR (outcome IS NULL AND 'breached' = ANY(emitted)))"
)
_COMPLIANCE = f"""
SELECT policy, COALESCE(team, 'unassigned') AS team,
       GROUPING(COALESCE(team, 'unassigned')) AS total,
       count(*) AS started,
       count(*) FILTER (WHERE outcome = 'met' AND NOT late) AS met,
       count(*) FILTER (WHERE late) AS breached,
       count(*) FILTER (WHERE outcome = 'cancelled' AND NOT late) AS cancelled,
       count(*) FILTER (WHERE outcome IS NULL AND NOT late) AS running,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY elapsed_seconds)
           FILTER (WHERE outcome = 'met') AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY elapsed_seconds)
           FILTER (WHERE outcome = 'met') AS p90
FROM (SELECT *, {_LATE} AS late FROM sla_timer WHERE started_at >= $1 AND started_at < $2) t
GROUP BY GROUPING SETS ((policy, COALESCE(team, 'unassigned')), (policy))
ORDER BY policy, total DESC, team
"""
_VOLUME = """
SELECT month, COALESCE(team, 'unassigned') AS team,
       count(*) FILTER (WHERE kind = 'mql') AS mqls,
       count(DISTINCT rep_id) FILTER (WHERE kind = 'assignment') AS active_reps
FROM sla_volume_fact WHERE month >= $1 AND month <= $2
GROUP BY 1, 2 ORDER BY 1, 2
"""


class PostgresSlaReader:
    """Implements the API's ``SlaReader``."""

    def __init__(self, pool: asyncpg.Pool, config: SlaConfig) -> None:
        self.pool = pool
        self.config = config

    async def open_timers(
        self,
        now: datetime,
        *,
        policy: str | None = None,
        owner: str | None = None,
        team: str | None = None,
        status: OpenStatus | None = None,
        limit: int = 100,
    ) -> SlaOpenPage:
        rows = await self.pool.fetch(
            "SELECT * FROM sla_timer WHERE outcome IS NULL"
            " AND ($1::text IS NULL OR policy = $1) AND ($2::text IS NULL OR owner_id = $2)"
            " AND ($3::text IS NULL OR team = $3) AND ($4::text IS NULL OR status = $4)"
            " ORDER BY deadline, warn_at, lead_id, policy, cycle_id LIMIT $5",
            policy, owner, team, status, limit,
        )  # fmt: skip
        timers = [
            SlaTimerOut(
                lead_id=r["lead_id"],
                policy=r["policy"],
                cycle_id=r["cycle_id"],
                owner_id=r["owner_id"],
                team=r["team"],
                status=r["status"],
                started_at=r["started_at"],
                warn_at=r["warn_at"],
                deadline=r["deadline"],
                next_escalation_at=_next_escalation(r["escalate_at"], r["emitted"]),
                delay_side=delay_side(r["assigned_at"], now),
                time_left_seconds=(r["deadline"] - now).total_seconds(),
            )
            for r in rows
        ]
        return SlaOpenPage(as_of=now, count=len(timers), timers=timers)

    async def summary(self, start: datetime, end: datetime) -> SlaSummary:
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            compliance = await conn.fetch(_COMPLIANCE, start, end)
            volume = []
            target = self.config.volume
            if target is not None and end > start:
                first = month_of(start, target.timezone)
                last = month_of(end - timedelta(microseconds=1), target.timezone)
                volume = await conn.fetch(_VOLUME, first, last)
        policies = [
            SlaCompliance(
                policy=r["policy"],
                team="all" if r["total"] else r["team"],
                started=r["started"],
                met=r["met"],
                breached=r["breached"],
                cancelled=r["cancelled"],
                running=r["running"],
                met_percent=percent(r["met"], r["met"] + r["breached"]),
                breached_percent=percent(r["breached"], r["met"] + r["breached"]),
                p50_seconds=_round(r["p50"]),
                p90_seconds=_round(r["p90"]),
            )
            for r in compliance
        ]
        per_rep = target.per_rep if target else 1
        months = [
            VolumeMonth(
                month=r["month"],
                team=r["team"],
                mqls=r["mqls"],
                active_reps=r["active_reps"],
                per_rep=per_rep,
                target=per_rep * r["active_reps"],
                met=r["mqls"] >= per_rep * r["active_reps"] if r["active_reps"] else None,
            )
            for r in volume
        ]
        return SlaSummary(start=start, end=end, policies=policies, volume=months)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _next_escalation(escalate_at: list[datetime], emitted: list[str]) -> datetime | None:
    for level, at in enumerate(escalate_at, start=1):
        if f"escalated-{level}" not in emitted:
            return at
    return None


async def refresh_sla_gauges(pool: asyncpg.Pool, config: SlaConfig, every: float = 5.0) -> None:
    """Keep ``leadledger_sla_open_timers`` (event time) and ``leadledger_sla_overdue_timers``
    (wall clock, live only) equal to ``sla_timer``, for every configured policy.

    Read from Postgres like ``leadledger_leads``, so the figures stay whole however many
    processors share the partitions; the two are separate metrics so the wall-clock view
    never mixes with the event-time one.
    """
    while True:
        try:
            rows = await pool.fetch(
                "SELECT policy, status, count(*) AS n,"
                " count(*) FILTER (WHERE deadline < now()) AS overdue"
                " FROM sla_timer WHERE outcome IS NULL GROUP BY policy, status"
            )
            counts = {(r["policy"], r["status"]): r for r in rows}
            for policy in config.policies:
                overdue = 0
                for status in ("ok", "warning", "breached"):
                    row = counts.get((policy, status))
                    metrics.SLA_OPEN_TIMERS.labels(policy=policy, status=status).set(
                        row["n"] if row else 0
                    )
                    overdue += row["overdue"] if row else 0
                metrics.SLA_OVERDUE.labels(policy=policy).set(overdue)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("could not refresh the SLA gauges: %s", exc)
        await asyncio.sleep(every)
