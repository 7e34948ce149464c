"""The processor's side of the SLA tables: load timer rows, and encode them for the batch's
``commit_batch`` call (``PostgresProjectionStore.commit`` calls ``commit_args``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from projections.sla import Timer
from projections.sla_emit import TimerRow, shared_tags
from projections.sla_volume import VolumeFact
from services.processor.sla_engine import SlaWrite

COLUMNS = (
    "lead_id", "policy", "cycle_id", "kafka_partition", "started_at", "warn_at", "deadline",
    "escalate_at", "stopped_at", "outcome", "stop_reason", "stop_event_id", "owner_id", "team",
    "assigned_at", "limit_seconds", "elapsed_seconds", "status", "emitted", "next_fire_at",
)  # fmt: skip
FACT_COLUMNS = ("lead_id", "event_id", "kind", "at", "month", "team", "rep_id")


def row_values(
    row: TimerRow, limit_seconds: float, elapsed_seconds: float | None
) -> tuple[Any, ...]:
    t = row.timer
    emitted = row.emitted
    # ``row.status``, inlined: this runs for every row a batch writes.
    status = (
        t.outcome
        if t.outcome is not None
        else ("breached" if "breached" in emitted else "warning" if "warning" in emitted else "ok")
    )
    return (
        t.lead_id, t.policy, t.cycle, row.partition, t.started_at, t.warn_at, t.deadline,
        list(t.escalate_at), t.stopped_at, t.outcome, t.stop_reason, t.stop_event_id, t.owner_id,
        t.team, t.assigned_at, limit_seconds, elapsed_seconds, status, sorted(emitted),
        row.next_fire_at,
    )  # fmt: skip


def timer_row(r: asyncpg.Record) -> TimerRow:
    """A stored row back as the value the engine works with."""
    timer = Timer(
        lead_id=r["lead_id"],
        policy=r["policy"],
        cycle=r["cycle_id"],
        started_at=r["started_at"],
        warn_at=r["warn_at"],
        deadline=r["deadline"],
        escalate_at=tuple(r["escalate_at"]),
        stopped_at=r["stopped_at"],
        outcome=r["outcome"],
        stop_reason=r["stop_reason"],
        stop_event_id=r["stop_event_id"],
        owner_id=r["owner_id"],
        team=r["team"],
        assigned_at=r["assigned_at"],
    )
    return TimerRow(timer, r["kafka_partition"], shared_tags(frozenset(r["emitted"])))


async def load_timers(pool: asyncpg.Pool, lead_ids: Sequence[str]) -> dict[str, list[TimerRow]]:
    rows = await pool.fetch("SELECT * FROM sla_timer WHERE lead_id = ANY($1::text[])", lead_ids)
    out: dict[str, list[TimerRow]] = {}
    for r in rows:
        out.setdefault(r["lead_id"], []).append(timer_row(r))
    return out


async def load_pending(pool: asyncpg.Pool, partitions: Sequence[int]) -> list[TimerRow]:
    rows = await pool.fetch(
        "SELECT * FROM sla_timer WHERE kafka_partition = ANY($1::int[])"
        " AND next_fire_at IS NOT NULL",
        list(partitions),
    )
    return [timer_row(r) for r in rows]


def commit_args(sla: SlaWrite) -> tuple[Any, Any, Any]:
    """The SLA arguments of ``commit_batch`` (007): the changed timer rows to upsert, the leads
    whose volume facts are replaced, and their new facts (None for an empty set)."""
    figures = sla.figures
    timers = [row_values(row, *figures[row.timer.key]) for row in sla.rows] or None
    if not sla.facts:
        return timers, None, None
    facts = [fact_values(f) for facts in sla.facts.values() for f in facts]
    return timers, list(sla.facts), facts or None


def fact_values(f: VolumeFact) -> tuple[Any, ...]:
    """A volume fact as an ``sla_volume_fact`` row."""
    return (f.lead_id, f.event_id, f.kind, f.at, f.month, f.team, f.rep_id)
