"""PostgreSQL side of the processor: one transaction per batch, rows and checkpoints together."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import asyncpg
import orjson

from events.codec import decode_obj, to_obj
from events.envelope import Event
from projections.closed_loop.duplicates import Holder
from projections.lead import LeadState
from projections.sla_emit import TimerRow
from projections.views import Handoff, StageSpan
from services.processor.ports import (
    BatchWrite,
    CheckpointMoved,
    RejectedRecord,
    StoreUnavailable,
    UnstorableBatch,
)
from services.processor.records import Checkpoint, Record
from services.store import closed_loop_rows, sla_rows

LEAD_COLUMNS = (
    "lead_id", "current_stage", "current_team", "highest_stage", "owner_id", "owner_team",
    "created_at", "entered_current_at", "first_event_at", "last_event_at", "event_count",
    "merged_into", "handoff_started_at", "handoff_action", "handoff_latency_seconds",
)  # fmt: skip
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _retryable(
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Turn driver and network failures into ``StoreUnavailable`` so the pipeline, which knows
    nothing of asyncpg, can tell "retry later" from a real bug."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


#: event_archive columns the processor (and a replay) write; see 001 and 005.
ARCHIVE_COLUMNS = (
    "event_id", "lead_id", "event_type", "source", "event_time", "schemaversion", "payload",
    "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp_ms", "kafka_header_keys",
    "kafka_header_values",
)  # fmt: skip
REJECTED_COLUMNS = (
    "kafka_topic", "kafka_partition", "kafka_offset", "lead_id", "event_id", "reason", "detail",
    "raw", "kafka_key", "kafka_timestamp_ms", "kafka_header_keys", "kafka_header_values",
)  # fmt: skip


def archive_row(r: Record, e: Event) -> tuple[Any, ...]:
    """An accepted event as an ``event_archive`` row, with what restore needs to republish it."""
    return (
        e.id, e.subject, e.type, e.source, e.time, e.schemaversion,
        orjson.dumps(to_obj(e)).decode(), r.topic, r.partition, r.offset, r.timestamp_ms,
        [k for k, _ in r.headers], [v for _, v in r.headers],
    )  # fmt: skip


#: ``ARCHIVE_COLUMNS`` without the header arrays: a record without headers gets the columns'
#: default, an empty array (006), the same value ``archive_row`` writes for it.
_BARE_ARCHIVE_COLUMNS = ARCHIVE_COLUMNS[:-2]


def _bare_archive_row(r: Record, e: Event) -> tuple[Any, ...]:
    # Encoding two empty arrays costs asyncpg more than the other eleven values together.
    return (
        e.id, e.subject, e.type, e.source, e.time, e.schemaversion,
        orjson.dumps(to_obj(e)).decode(), r.topic, r.partition, r.offset, r.timestamp_ms,
    )  # fmt: skip


def rejected_row(x: RejectedRecord) -> tuple[Any, ...]:
    """A rejected record as a ``rejected_event`` row: reason, raw bytes, key and headers."""
    r = x.record
    return (
        r.topic, r.partition, r.offset, x.lead_id, x.event_id, x.rejection.reason.value,
        x.rejection.detail, r.value, r.key, r.timestamp_ms, [k for k, _ in r.headers],
        [v for _, v in r.headers],
    )  # fmt: skip


def lead_row(state: LeadState) -> tuple[Any, ...]:
    v = state.view
    last = v.handoffs[-1] if v.handoffs else None
    current_team = v.stages[-1].team if v.stages else None
    return (
        v.lead_id, v.current_stage, current_team, v.highest_stage, v.owner_id, v.team,
        v.created_at, v.entered_current_at, v.first_event_at, v.last_event_at, v.event_count,
        v.merged_into, last.started_at if last else None, last.action if last else None,
        last.latency_seconds if last else None,
    )  # fmt: skip


class PostgresProjectionStore:
    """Implements ``ProjectionStore`` over an asyncpg pool for one consumer name."""

    def __init__(self, pool: asyncpg.Pool, consumer: str) -> None:
        self.pool = pool
        self.consumer = consumer

    @_retryable
    async def load_checkpoints(
        self, topic: str, partitions: Sequence[int]
    ) -> dict[int, Checkpoint]:
        rows = await self.pool.fetch(
            "SELECT kafka_partition, kafka_offset, stream_time FROM projection_checkpoint"
            " WHERE consumer = $1 AND kafka_topic = $2 AND kafka_partition = ANY($3::int[])",
            self.consumer,
            topic,
            list(partitions),
        )
        return {r["kafka_partition"]: Checkpoint(r["kafka_offset"], r["stream_time"]) for r in rows}

    @_retryable
    async def load_histories(self, lead_ids: Sequence[str]) -> dict[str, list[Event]]:
        rows = await self.pool.fetch(
            "SELECT lead_id, payload::text AS payload FROM event_archive"
            " WHERE lead_id = ANY($1::text[]) ORDER BY lead_id, event_time, event_id",
            list(lead_ids),
        )
        out: dict[str, list[Event]] = {}
        for r in rows:
            out.setdefault(r["lead_id"], []).append(decode_obj(orjson.loads(r["payload"])))
        return out

    @_retryable
    async def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        rows = await self.pool.fetch(
            "SELECT event_id FROM event_archive WHERE event_id = ANY($1::text[])", list(event_ids)
        )
        return {r["event_id"] for r in rows}

    @_retryable
    async def load_timers(self, lead_ids: Sequence[str]) -> dict[str, list[TimerRow]]:
        return await sla_rows.load_timers(self.pool, lead_ids)

    @_retryable
    async def load_pending(self, partitions: Sequence[int]) -> list[TimerRow]:
        return await sla_rows.load_pending(self.pool, partitions)

    @_retryable
    async def load_identities(self, email_keys: Sequence[str]) -> dict[str, dict[str, Holder]]:
        return await closed_loop_rows.load_identities(self.pool, email_keys)

    @_retryable
    async def commit(self, batch: BatchWrite, expected: dict[int, int | None]) -> None:
        try:
            await self._commit(batch, expected)
        except (asyncpg.DataError, asyncpg.ProgramLimitExceededError) as exc:
            # Class 22 and 54: the values themselves are wrong, a retry cannot help.
            raise UnstorableBatch(f"{type(exc).__name__}: {exc}") from exc

    async def _commit(self, batch: BatchWrite, expected: dict[int, int | None]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._fence(conn, batch.topic, expected)
            if batch.accepted:
                await _write_archive(conn, batch.accepted)
            if batch.leads:
                await self._write_leads(conn, batch.leads, batch.before)
            if batch.sla is not None:
                await sla_rows.write_sla(conn, batch.sla)
            if batch.closed_loop is not None:
                await closed_loop_rows.write_closed_loop(conn, batch.closed_loop)
            if batch.rejected:
                await conn.executemany(
                    f"INSERT INTO rejected_event ({', '.join(REJECTED_COLUMNS)}) VALUES"
                    f" ({', '.join(f'${i}' for i in range(1, len(REJECTED_COLUMNS) + 1))})"
                    " ON CONFLICT DO NOTHING",
                    [rejected_row(x) for x in batch.rejected],
                )
            marks = sorted(batch.checkpoints.items())
            await conn.execute(
                "INSERT INTO projection_checkpoint"
                " (consumer, kafka_topic, kafka_partition, kafka_offset, stream_time)"
                " SELECT $1, $2, * FROM unnest($3::int[], $4::bigint[], $5::timestamptz[])"
                " ON CONFLICT (consumer, kafka_topic, kafka_partition)"
                " DO UPDATE SET kafka_offset = EXCLUDED.kafka_offset,"
                " stream_time = EXCLUDED.stream_time, updated_at = now()",
                self.consumer,
                batch.topic,
                [p for p, _ in marks],
                [c.offset for _, c in marks],
                [c.stream_time for _, c in marks],
            )

    async def _fence(
        self, conn: asyncpg.Connection, topic: str, expected: dict[int, int | None]
    ) -> None:
        # Row locks serialise two workers that both believe they own a partition (a rebalance
        # in flight); the loser sees an offset it did not expect and redoes its batch.
        rows = await conn.fetch(
            "SELECT kafka_partition, kafka_offset FROM projection_checkpoint"
            " WHERE consumer = $1 AND kafka_topic = $2 AND kafka_partition = ANY($3::int[])"
            " ORDER BY kafka_partition FOR UPDATE",
            self.consumer,
            topic,
            sorted(expected),
        )
        stored = {r["kafka_partition"]: r["kafka_offset"] for r in rows}
        for partition, offset in expected.items():
            if stored.get(partition) != offset:
                raise CheckpointMoved(f"partition {partition}: {stored.get(partition)} != {offset}")

    async def _write_leads(
        self,
        conn: asyncpg.Connection,
        leads: Sequence[LeadState],
        before: Mapping[str, LeadState],
    ) -> None:
        # A committed lead with events has its row: update it. Without events it has none:
        # insert. Without a ``before`` entry it may have either: upsert.
        rows: dict[str, list[tuple[Any, ...]]] = {"update": [], "insert": [], "upsert": []}
        for s in leads:
            previous = before.get(s.lead_id)
            how = "upsert" if previous is None else "update" if previous.events else "insert"
            rows[how].append(lead_row(s))
        # Rows to update go as one array of a composite type (006), not one array per column:
        # asyncpg type-checks every element of an array, and a tuple's fields are encoded as
        # cheaply as COPY values. New rows go by COPY.
        if rows["update"]:
            await conn.execute(_UPDATE_LEAD, rows["update"])
        if rows["insert"]:
            await conn.copy_records_to_table(
                "lead_current", columns=LEAD_COLUMNS, records=rows["insert"]
            )
        if rows["upsert"]:
            await conn.execute(_UPSERT_LEAD, rows["upsert"])
        stages = delta(leads, before, _stages, stage_row)
        handoffs = delta(leads, before, _handoffs, handoff_row)
        for table, d, columns in (
            ("lead_stage_history", stages, STAGE_COLUMNS),
            ("lead_handoff", handoffs, HANDOFF_COLUMNS),
        ):
            if d.cut_ids:
                await conn.execute(
                    f"DELETE FROM {table} t USING unnest($1::text[], $2::int[]) AS d(lead_id, seq)"
                    " WHERE t.lead_id = d.lead_id AND t.seq >= d.seq",
                    d.cut_ids,
                    d.cut_seqs,
                )
            if d.updated:
                await conn.execute(_UPDATE_HISTORY[table], d.updated)
            if d.inserted:
                await conn.copy_records_to_table(table, columns=columns, records=d.inserted)


async def _write_archive(
    conn: asyncpg.Connection, accepted: Sequence[tuple[Record, Event]]
) -> None:
    bare = [_bare_archive_row(r, e) for r, e in accepted if not r.headers]
    if bare:
        await conn.copy_records_to_table(
            "event_archive", columns=_BARE_ARCHIVE_COLUMNS, records=bare
        )
    if len(bare) < len(accepted):
        await conn.copy_records_to_table(
            "event_archive", columns=ARCHIVE_COLUMNS,
            records=[archive_row(r, e) for r, e in accepted if r.headers],
        )  # fmt: skip


STAGE_COLUMNS = (
    "lead_id", "seq", "stage", "team", "entered_at", "exited_at", "seconds", "from_stage",
    "reason", "entered_via",
)  # fmt: skip
HANDOFF_COLUMNS = (
    "lead_id", "seq", "started_at", "start_event_id", "assigned_at", "action", "action_at",
    "action_event_id", "latency_seconds", "system_delay_seconds", "human_delay_seconds",
)  # fmt: skip


def stage_row(lead_id: str, seq: int, sp: StageSpan) -> tuple[Any, ...]:
    return (
        lead_id, seq, sp.stage, sp.team, sp.entered_at, sp.exited_at, sp.seconds,
        sp.from_stage, sp.reason, sp.entered_via,
    )  # fmt: skip


def handoff_row(lead_id: str, seq: int, h: Handoff) -> tuple[Any, ...]:
    return (
        lead_id, seq, h.started_at, h.start_event_id, h.assigned_at, h.action, h.action_at,
        h.action_event_id, h.latency_seconds, h.system_delay_seconds, h.human_delay_seconds,
    )  # fmt: skip


def stage_rows(leads: Iterable[LeadState]) -> list[tuple[Any, ...]]:
    """``lead_stage_history`` rows: one per stay, numbered from 0 per lead."""
    return [stage_row(s.lead_id, i, sp) for s in leads for i, sp in enumerate(s.view.stages)]


def handoff_rows(leads: Iterable[LeadState]) -> list[tuple[Any, ...]]:
    """``lead_handoff`` rows: one per marketing -> sales handoff, numbered from 0 per lead."""
    return [handoff_row(s.lead_id, i, h) for s in leads for i, h in enumerate(s.view.handoffs)]


def _stages(s: LeadState) -> tuple[StageSpan, ...]:
    return s.view.stages


def _handoffs(s: LeadState) -> tuple[Handoff, ...]:
    return s.view.handoffs


#: The composite types of 006, one field per column in ``LEAD_COLUMNS``, ``STAGE_COLUMNS``
#: and ``HANDOFF_COLUMNS`` order.
_ROW_TYPES = {
    "lead_current": "lead_current_row",
    "lead_stage_history": "lead_stage_row",
    "lead_handoff": "lead_handoff_row",
}
_UPDATE_LEAD = (
    "UPDATE lead_current t SET "
    + ", ".join(f"{c} = d.{c}" for c in LEAD_COLUMNS[1:])
    + ", updated_at = now() FROM unnest($1::lead_current_row[]) AS d WHERE t.lead_id = d.lead_id"
)
_UPSERT_LEAD = (
    f"INSERT INTO lead_current ({', '.join(LEAD_COLUMNS)})"
    " SELECT * FROM unnest($1::lead_current_row[])"
    " ON CONFLICT (lead_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in LEAD_COLUMNS[1:])
    + ", updated_at = now()"
)
_UPDATE_HISTORY = {
    table: f"UPDATE {table} t SET "
    + ", ".join(f"{c} = d.{c}" for c in columns[2:])
    + f" FROM unnest($1::{_ROW_TYPES[table]}[]) AS d"
    " WHERE t.lead_id = d.lead_id AND t.seq = d.seq"
    for table, columns in (("lead_stage_history", STAGE_COLUMNS), ("lead_handoff", HANDOFF_COLUMNS))
}


@dataclass(slots=True)
class Delta:
    """What turns the stored rows of one table into the new ones: for each ``cut_ids[i]``,
    delete its rows with seq >= ``cut_seqs[i]``; then update the stored rows ``updated`` by
    (lead_id, seq) and insert the rows ``inserted``, which no stored row has the key of."""

    updated: list[tuple[Any, ...]] = field(default_factory=list)
    inserted: list[tuple[Any, ...]] = field(default_factory=list)
    cut_ids: list[str] = field(default_factory=list)
    cut_seqs: list[int] = field(default_factory=list)


def delta(
    leads: Iterable[LeadState],
    before: Mapping[str, LeadState],
    items: Callable[[LeadState], Sequence[T]],
    row: Callable[[str, int, T], tuple[Any, ...]],
) -> Delta:
    """The row changes from ``before`` (what is committed) to ``leads``, by position.

    Rows are numbered per lead, so comparing the two sequences seq by seq gives exactly the
    rows a full rewrite would change: an in-order event touches the closed previous stay and
    the new one; a late event that splits a stay or drops a ``lead.created`` stay changes the
    rows from there on. A lead with no ``before`` entry has all its rows deleted and written.
    """
    out = Delta()
    for state in leads:
        lead_id = state.lead_id
        new = items(state)
        previous = before.get(lead_id)
        if previous is None:
            out.cut_ids.append(lead_id)
            out.cut_seqs.append(0)
            out.inserted.extend(row(lead_id, i, x) for i, x in enumerate(new))
            continue
        old = items(previous)
        if len(old) > len(new):
            out.cut_ids.append(lead_id)
            out.cut_seqs.append(len(new))
        for i, x in enumerate(new):
            if i >= len(old):
                out.inserted.append(row(lead_id, i, x))
            # Views share unchanged spans, so identity settles most comparisons.
            elif old[i] is not x and old[i] != x:
                out.updated.append(row(lead_id, i, x))
    return out
