"""PostgreSQL side of the processor: one transaction per batch, rows and checkpoints together."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import asyncpg
import orjson

from events.codec import decode_obj, to_json
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


#: event_archive columns the processor (and a replay) write, in ``event_archive_row`` order;
#: see 001, 005 and 007.
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
    """An accepted event as an ``event_archive_row`` (007), with what restore needs to
    republish it. The payload is the event's canonical JSON (``to_json``), stored as text
    (008) and read back by every reader with the codec. A record without headers gets NULL
    header fields, stored as the columns' default, an empty array (006): encoding two empty
    arrays costs the driver more than the other eleven values together."""
    headers = r.headers
    return (
        e.id, e.subject, e.type, e.source, e.time, e.schemaversion, to_json(e).decode(),
        r.topic, r.partition, r.offset, r.timestamp_ms,
        [k for k, _ in headers] if headers else None, [v for _, v in headers] if headers else None,
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
    """Implements ``ProjectionStore`` over an asyncpg pool for one consumer name.

    Every row of a batch goes as an argument of one ``commit_batch`` call, however large the
    batch: the whole write is one message to PostgreSQL and one reply. A COPY of the large
    row sets after the call (tried up to 2026-12) made the write a chain of round trips, and
    each step of it waited for this process's event loop, busy folding the next batch, while
    PostgreSQL sat idle, and the worker spent ~30% of its time waiting for its commits.
    Rows as arguments also cost both this process and PostgreSQL less CPU per event than
    COPY did (bench/README.md, point 13).
    """

    def __init__(self, pool: asyncpg.Pool, consumer: str) -> None:
        self.pool = pool
        self.consumer = consumer
        #: the batch and fence ``prepare`` built arguments for, and those (one at a time)
        self._prepared: tuple[BatchWrite, dict[int, int | None], list[Any]] | None = None

    def prepare(self, batch: BatchWrite, expected: dict[int, int | None]) -> None:
        # Building the arguments is CPU work of this process only. The worker calls this
        # while the previous batch is still committing, so PostgreSQL gets the batch's
        # statement the moment that commit lands instead of after this work.
        self._prepared = (batch, dict(expected), self._arguments(batch, expected))

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

    async def commit(
        self,
        batch: BatchWrite,
        expected: dict[int, int | None],
        delivered: Awaitable[None] | None = None,
    ) -> None:
        try:
            await self._commit(batch, expected, delivered)
        except _Undelivered as exc:
            # Not the store's failure: the caller sees the delivery's own exception.
            raise exc.error from None

    @_retryable
    async def _commit(
        self,
        batch: BatchWrite,
        expected: dict[int, int | None],
        delivered: Awaitable[None] | None,
    ) -> None:
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[0] is batch and prepared[1] == expected:
            args = prepared[2]
        else:
            args = self._arguments(batch, expected)
        try:
            async with self.pool.acquire() as conn:
                if delivered is None:
                    # One statement is its own transaction: one round trip in all.
                    self._check(await conn.fetchval(_COMMIT_BATCH, *args))
                    return
                async with conn.transaction():
                    self._check(await conn.fetchval(_COMMIT_BATCH, *args))
                    # The rows are written; the transaction commits only once the derived
                    # events and dead letters are with the broker.
                    try:
                        await delivered
                    except Exception as exc:
                        raise _Undelivered(exc) from exc
        except (asyncpg.DataError, asyncpg.ProgramLimitExceededError) as exc:
            # Class 22 and 54: the values themselves are wrong, a retry cannot help.
            raise UnstorableBatch(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _check(found: str | None) -> None:
        if found is None:
            return
        why, _, detail = found.partition(":")
        if why == "moved":
            raise CheckpointMoved(detail)
        # Another worker took an email key this batch compared against: state is untouched,
        # the batch is reloaded and redone.
        raise StoreUnavailable(detail)

    def _arguments(self, batch: BatchWrite, expected: dict[int, int | None]) -> list[Any]:
        """The arguments of ``commit_batch`` (007), in its parameter order; None for a row set
        the batch does not have, which the driver encodes for nothing."""
        fence = sorted(expected.items())
        archive = [archive_row(r, e) for r, e in batch.accepted]
        leads = _lead_args(batch.leads, batch.before)
        sla = sla_rows.commit_args(batch.sla) if batch.sla is not None else (None,) * 3
        loop = (
            closed_loop_rows.commit_args(batch.closed_loop)
            if batch.closed_loop is not None
            else (None,) * 6
        )
        marks = sorted(batch.checkpoints.items())
        return [
            self.consumer, batch.topic, [p for p, _ in fence], [o for _, o in fence],
            *loop[:3],
            archive or None,
            *leads,
            *sla,
            *loop[3:],
            [rejected_row(x) for x in batch.rejected] or None,
            [p for p, _ in marks], [c.offset for _, c in marks], [c.stream_time for _, c in marks],
        ]  # fmt: skip


class _Undelivered(Exception):
    """A delivery awaited inside the transaction failed; carries its exception past the
    store's own error translation."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _lead_args(leads: Sequence[LeadState], before: Mapping[str, LeadState]) -> list[Any]:
    """The lead arguments of ``commit_batch``: lead rows to update, insert and upsert, then
    the stage and handoff deltas (cuts, updates, inserts)."""
    # A committed lead with events has its row: update it. Without events it has none:
    # insert. Without a ``before`` entry it may have either: upsert.
    update: list[tuple[Any, ...]] = []
    insert: list[tuple[Any, ...]] = []
    upsert: list[tuple[Any, ...]] = []
    for s in leads:
        previous = before.get(s.lead_id)
        (upsert if previous is None else update if previous.events else insert).append(lead_row(s))
    stages = delta(leads, before, _stages, stage_row)
    handoffs = delta(leads, before, _handoffs, handoff_row)
    return [
        update or None, insert or None, upsert or None,
        stages.cut_ids or None, stages.cut_seqs or None, stages.updated or None,
        stages.inserted or None,
        handoffs.cut_ids or None, handoffs.cut_seqs or None, handoffs.updated or None,
        handoffs.inserted or None,
    ]  # fmt: skip


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


_COMMIT_BATCH = "SELECT commit_batch(" + ", ".join(f"${i}" for i in range(1, 30)) + ")"


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
    updated, inserted, cut_ids, cut_seqs = out.updated, out.inserted, out.cut_ids, out.cut_seqs
    committed = before.get
    for state in leads:
        lead_id = state.lead_id
        new = items(state)
        previous = committed(lead_id)
        if previous is None:
            cut_ids.append(lead_id)
            cut_seqs.append(0)
            inserted.extend([row(lead_id, i, x) for i, x in enumerate(new)])
            continue
        old = items(previous)
        if old is new:
            continue  # the view kept the whole tuple: nothing changed
        n_old, n_new = len(old), len(new)
        if n_old > n_new:
            cut_ids.append(lead_id)
            cut_seqs.append(n_new)
        for i in range(min(n_old, n_new)):
            x, y = new[i], old[i]
            # Views share unchanged spans, so identity settles most comparisons.
            if x is not y and x != y:
                updated.append(row(lead_id, i, x))
        for i in range(n_old, n_new):
            inserted.append(row(lead_id, i, new[i]))
    return out
