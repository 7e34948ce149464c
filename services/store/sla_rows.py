"""The processor's side of the SLA tables: load timer rows, and write them inside the batch
transaction (``PostgresProjectionStore.commit`` calls ``write_sla``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from projections.sla import Timer
from projections.sla_emit import TimerRow
from projections.sla_volume import VolumeFact
from services.processor.sla_engine import SlaWrite

COLUMNS = (
    "lead_id", "policy", "cycle_id", "kafka_partition", "started_at", "warn_at", "deadline",
    "escalate_at", "stopped_at", "outcome", "stop_reason", "stop_event_id", "owner_id", "team",
    "assigned_at", "limit_seconds", "elapsed_seconds", "status", "emitted", "next_fire_at",
)  # fmt: skip
_UPSERT = (
    f"INSERT INTO sla_timer ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM sla_timer_in"
    " ON CONFLICT (lead_id, policy, cycle_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[3:])
    + ", updated_at = now()"
)
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
    return TimerRow(timer, r["kafka_partition"], frozenset(r["emitted"]))


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


async def write_sla(conn: asyncpg.Connection, sla: SlaWrite) -> None:
    """Upsert the changed timer rows and replace the changed leads' volume facts."""
    if sla.rows:
        # COPY into a per-session scratch table, then one set-based upsert: far faster than
        # row-by-row INSERT ... ON CONFLICT for the thousands of rows a replay batch touches.
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS sla_timer_in"
            " (LIKE sla_timer INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await conn.copy_records_to_table(
            "sla_timer_in",
            columns=COLUMNS,
            records=[row_values(row, *sla.figures[row.timer.key]) for row in sla.rows],
        )
        await conn.execute(_UPSERT)
    if sla.facts:
        await conn.execute(
            "DELETE FROM sla_volume_fact WHERE lead_id = ANY($1::text[])", list(sla.facts)
        )
        await conn.copy_records_to_table(
            "sla_volume_fact",
            columns=FACT_COLUMNS,
            records=[fact_values(f) for facts in sla.facts.values() for f in facts],
        )


def fact_values(f: VolumeFact) -> tuple[Any, ...]:
    """A volume fact as an ``sla_volume_fact`` row."""
    return (f.lead_id, f.event_id, f.kind, f.at, f.month, f.team, f.rep_id)
