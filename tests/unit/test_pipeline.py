"""The processor's batch pipeline, with hand-written fakes for Postgres and the dead letters."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import timedelta

import pytest

from events.codec import encode
from events.envelope import Event
from projections.lead import LeadState, empty, fold
from projections.sla_emit import TimerRow
from projections.sla_volume import VolumeFact
from services.processor.pipeline import BatchPipeline, Limits
from services.processor.ports import (
    BatchWrite,
    CheckpointMoved,
    RejectedRecord,
    StoreUnavailable,
    UnstorableBatch,
)
from services.processor.records import Checkpoint, Record
from tests.unit.factories import FUNNEL, LEAD, assigned, at, contacted, created, moved

TOPIC = "events"


class InMemoryStore:
    """What Postgres holds for the pipeline: archive, lead rows, SLA timers and checkpoints."""

    def __init__(self) -> None:
        self.archive: dict[str, Event] = {}
        self.leads: dict[str, LeadState] = {}
        self.checkpoints: dict[int, Checkpoint] = {}
        self.commits: list[BatchWrite] = []
        self.move_checkpoint_once: tuple[int, Checkpoint] | None = None
        #: event ids the fake "database" cannot store, like a value Postgres refuses.
        self.refuse: set[str] = set()
        #: commits that fail as if the connection dropped, before the next one succeeds.
        self.outages = 0
        self.timers: dict[tuple[str, str, str], TimerRow] = {}
        self.facts: dict[str, tuple[VolumeFact, ...]] = {}
        #: raise this from the next commit (once), like a connection lost mid-transaction.
        self.fail_next_commit: Exception | None = None

    async def load_timers(self, lead_ids: Sequence[str]) -> dict[str, list[TimerRow]]:
        out: dict[str, list[TimerRow]] = {}
        for key, row in self.timers.items():
            if key[0] in lead_ids:
                out.setdefault(key[0], []).append(row)
        return out

    async def load_pending(self, partitions: Sequence[int]) -> list[TimerRow]:
        return [r for r in self.timers.values() if r.partition in partitions and r.next_fire_at]

    async def load_checkpoints(
        self, topic: str, partitions: Sequence[int]
    ) -> dict[int, Checkpoint]:
        return {p: c for p, c in self.checkpoints.items() if p in partitions}

    async def load_histories(self, lead_ids: Sequence[str]) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {}
        for event in self.archive.values():
            if event.subject in lead_ids:
                out.setdefault(event.subject, []).append(event)
        return out

    async def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        return {i for i in event_ids if i in self.archive}

    async def commit(
        self,
        batch: BatchWrite,
        expected: dict[int, int | None],
        delivered: Awaitable[None] | None = None,
    ) -> None:
        if self.fail_next_commit is not None:
            failure, self.fail_next_commit = self.fail_next_commit, None
            raise failure
        if self.move_checkpoint_once is not None:
            partition, moved_to = self.move_checkpoint_once
            self.move_checkpoint_once = None
            self.checkpoints[partition] = moved_to
        for partition, offset in expected.items():
            stored = self.checkpoints.get(partition)
            if (stored.offset if stored else None) != offset:
                raise CheckpointMoved(str(partition))
        if self.outages:
            self.outages -= 1
            raise StoreUnavailable("ConnectionResetError: connection lost")
        if any(event.id in self.refuse for _, event in batch.accepted):
            raise UnstorableBatch("invalid byte sequence")
        for state in batch.leads:
            # The store writes only the rows that differ from ``before``, so it must be
            # exactly what is committed.
            if (previous := batch.before.get(state.lead_id)) is not None:
                held = self.leads.get(state.lead_id, empty(state.lead_id))
                assert previous.view == held.view, state.lead_id
        if delivered is not None:
            await delivered  # as the real store: after its checks, before it commits
        self.commits.append(batch)
        for _, event in batch.accepted:
            self.archive[event.id] = event
        for state in batch.leads:
            self.leads[state.lead_id] = state
        if batch.sla is not None:
            self.timers.update({row.timer.key: row for row in batch.sla.rows})
            self.facts.update(batch.sla.facts)
        self.checkpoints.update(batch.checkpoints)


class RecordingDeadLetters:
    def __init__(self, store: InMemoryStore) -> None:
        self.sent: list[RejectedRecord] = []
        self.store = store
        self.commits_before_send: list[int] = []

    async def send(self, rejected: Sequence[RejectedRecord]) -> None:
        self.commits_before_send.append(len(self.store.commits))
        self.sent.extend(rejected)


def record(offset: int, event: Event | None = None, *, value: bytes | None = None,
           key: bytes | None = LEAD.encode(), partition: int = 0) -> Record:  # fmt: skip
    payload = value if value is not None else encode(event) if event else b""
    return Record(
        TOPIC, partition, offset, key, payload, timestamp_ms=int(at(days=30).timestamp() * 1000)
    )


def pipeline() -> tuple[BatchPipeline, InMemoryStore, RecordingDeadLetters]:
    store = InMemoryStore()
    dead = RecordingDeadLetters(store)
    limits = Limits(max_future_skew=timedelta(minutes=5), allowed_lateness=timedelta(days=7))
    return BatchPipeline(TOPIC, FUNNEL, store, dead, limits, retry_delay=0), store, dead


JOURNEY = [
    created(LEAD, at(0)),
    moved(LEAD, at(10), "lead", "mql"),
    assigned(LEAD, at(12)),
    contacted(LEAD, at(40)),
]


async def test_a_batch_commits_its_leads_archive_and_checkpoint_together() -> None:
    pipe, store, _ = pipeline()
    outcome = await pipe.process([record(i, e) for i, e in enumerate(JOURNEY)])
    assert len(outcome.accepted) == 4
    assert len(store.commits) == 1
    assert store.checkpoints[0] == Checkpoint(3, at(40))
    assert store.leads[LEAD].view.current_stage == "mql"
    assert [h.latency_seconds for h in store.leads[LEAD].view.handoffs] == [30 * 60]


async def test_records_at_or_below_the_stored_offset_are_skipped_after_a_restart() -> None:
    pipe, store, _ = pipeline()
    records = [record(i, e) for i, e in enumerate(JOURNEY)]
    await pipe.process(records[:3])
    restarted = BatchPipeline(TOPIC, FUNNEL, store, RecordingDeadLetters(store), pipe.limits)
    outcome = await restarted.process(records)  # Kafka redelivers from an older offset
    assert outcome.skipped == 3
    assert [e.id for e in outcome.accepted] == [JOURNEY[3].id]
    assert store.leads[LEAD].view.handoffs[0].action == "contacted"


async def test_an_event_id_already_in_the_archive_is_dead_lettered_as_duplicate() -> None:
    pipe, store, dead = pipeline()
    await pipe.process([record(0, JOURNEY[0])])
    pipe.forget()  # even with a cold cache, the archive knows the id
    outcome = await pipe.process([record(1, JOURNEY[0])])
    assert [r.rejection.reason.value for r in outcome.rejected] == ["duplicate"]
    assert [r.record.offset for r in dead.sent] == [1]
    assert store.checkpoints[0].offset == 1, "a rejected record still advances the checkpoint"


async def test_dead_letters_are_sent_before_the_batch_commits() -> None:
    pipe, _, dead = pipeline()
    await pipe.process([record(0, JOURNEY[0]), record(1, value=b"{oops")])
    assert dead.commits_before_send == [0]
    assert dead.sent[0].rejection.reason.value == "malformed_json"


async def test_an_event_far_behind_the_partition_stream_time_is_too_late() -> None:
    pipe, _, _ = pipeline()
    ancient = moved(LEAD, at(days=-30), "lead", "nurture")
    outcome = await pipe.process([record(0, JOURNEY[0]), record(1, JOURNEY[3]), record(2, ancient)])
    assert [r.rejection.reason.value for r in outcome.rejected] == ["too_late"]


async def test_an_event_from_the_future_of_its_broker_timestamp_is_rejected() -> None:
    pipe, _, _ = pipeline()
    outcome = await pipe.process([record(0, created(LEAD, at(days=31)))])
    assert [r.rejection.reason.value for r in outcome.rejected] == ["future_event"]


@pytest.mark.parametrize(
    ("key", "reason"), [(None, "missing_key"), (b"someone-else", "key_mismatch")]
)
async def test_the_record_key_must_be_the_lead_id(key: bytes | None, reason: str) -> None:
    pipe, _, _ = pipeline()
    outcome = await pipe.process([record(0, JOURNEY[0], key=key)])
    assert [r.rejection.reason.value for r in outcome.rejected] == [reason]


async def test_a_late_event_of_a_cached_lead_is_placed_by_time_and_flagged_out_of_order() -> None:
    pipe, store, _ = pipeline()
    await pipe.process([record(0, JOURNEY[0]), record(1, JOURNEY[1]), record(2, JOURNEY[3])])
    outcome = await pipe.process([record(3, JOURNEY[2])])
    assert [e.id for e in outcome.out_of_order] == [JOURNEY[2].id]
    assert store.leads[LEAD].view.handoffs[0].system_delay_seconds == 2 * 60


async def test_a_checkpoint_moved_by_another_worker_makes_the_batch_reload_and_retry() -> None:
    pipe, store, _ = pipeline()
    await pipe.process([record(0, JOURNEY[0])])
    # Another worker owned partition 0 for a moment and applied offset 1.
    store.archive[JOURNEY[1].id] = JOURNEY[1]
    store.leads[LEAD] = fold(LEAD, JOURNEY[:2], FUNNEL)
    store.move_checkpoint_once = (0, Checkpoint(1, at(10)))
    outcome = await pipe.process([record(1, JOURNEY[1]), record(2, JOURNEY[2])])
    assert [e.id for e in outcome.accepted] == [JOURNEY[2].id]
    assert store.leads[LEAD].view.current_stage == "mql", "state reloaded from the archive"


async def test_a_record_the_store_refuses_is_bisected_out_and_dead_lettered() -> None:
    pipe, store, dead = pipeline()
    store.refuse = {JOURNEY[2].id}
    outcome = await pipe.process([record(i, e) for i, e in enumerate(JOURNEY)])

    assert [r.rejection.reason.value for r in outcome.rejected] == ["unstorable"]
    assert [r.record.offset for r in dead.sent] == [2]
    assert [e.id for e in outcome.accepted] == [JOURNEY[i].id for i in (0, 1, 3)]
    assert store.checkpoints[0].offset == 3, "the worker moved past the poison record"


async def test_a_store_outage_delays_the_batch_and_then_it_commits_once() -> None:
    pipe, store, _ = pipeline()
    store.outages = 2
    outcome = await pipe.process([record(i, e) for i, e in enumerate(JOURNEY)])

    assert len(outcome.accepted) == 4
    assert len(store.commits) == 1
    assert store.checkpoints[0].offset == 3
