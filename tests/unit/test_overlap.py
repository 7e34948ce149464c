"""Folding batch N+1 while batch N commits gives exactly what one batch at a time gives."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import timedelta

import orjson

from events.envelope import Event
from projections.lead import LeadState
from projections.sla_emit import TimerRow
from services.processor.batch import BatchOutcome
from services.processor.overlap import Overlapped
from services.processor.pipeline import BatchPipeline, Limits, SlaWiring
from services.processor.ports import BatchWrite
from services.processor.records import Checkpoint, Record
from services.processor.sla_engine import SlaEngine

from .factories import FUNNEL, assigned, at, contacted, created, moved
from .sla_support import RULES
from .test_pipeline import TOPIC, InMemoryStore, RecordingDeadLetters, record
from .test_sla_pipeline import RecordingDerived


class SlowStore(InMemoryStore):
    """The fake store, but every call yields to the event loop, as a real round trip does:
    otherwise a write would finish before the next batch could be staged beside it."""

    def __init__(self) -> None:
        super().__init__()
        #: the derived topic of the pipeline that writes here
        self.derived = RecordingDerived(self)

    async def load_histories(self, lead_ids: Sequence[str]) -> dict[str, list[Event]]:
        await asyncio.sleep(0)
        return await super().load_histories(lead_ids)

    async def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        await asyncio.sleep(0)
        return await super().existing_ids(event_ids)

    async def load_timers(self, lead_ids: Sequence[str]) -> dict[str, list[TimerRow]]:
        await asyncio.sleep(0)
        return await super().load_timers(lead_ids)

    async def commit(
        self,
        batch: BatchWrite,
        expected: dict[int, int | None],
        delivered: Awaitable[None] | None = None,
    ) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        await super().commit(batch, expected, delivered)


def journeys(leads: int, contact_after: float = 20) -> list[Record]:
    """Leads walking into MQL and being worked, interleaved in time over two partitions; the
    first contact comes ``contact_after`` minutes (more for some) after creation."""
    events: list[tuple[int, Event]] = []
    for n in range(leads):
        lead, t = f"lead-{n}", n * 3.0
        events += [
            (n, created(lead, at(t))),
            (n, moved(lead, at(t + 5), "lead", "mql")),
            (n, assigned(lead, at(t + 7))),
            (n, contacted(lead, at(t + contact_after * (1 + n % 4)))),
        ]
    events.sort(key=lambda x: x[1].time)
    offsets = [0, 0]
    out = []
    for n, event in events:
        p = n % 2
        out.append(record(offsets[p], event, key=event.subject.encode(), partition=p))
        offsets[p] += 1
    return out


def batches(records: list[Record], size: int) -> list[list[Record]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def make(store: InMemoryStore, *, sla: bool = False, cache_leads: int = 200_000) -> BatchPipeline:
    limits = Limits(
        max_future_skew=timedelta(minutes=5), allowed_lateness=timedelta(days=7),
        cache_leads=cache_leads,
    )  # fmt: skip
    derived = store.derived if isinstance(store, SlowStore) else RecordingDerived(store)
    wiring = SlaWiring(SlaEngine(RULES, cache_leads=cache_leads), store, derived)
    return BatchPipeline(
        TOPIC, FUNNEL, store, RecordingDeadLetters(store), limits, retry_delay=0,
        sla=wiring if sla else None,
    )  # fmt: skip


def tables(store: InMemoryStore) -> tuple[object, ...]:
    leads: dict[str, LeadState] = dict(sorted(store.leads.items()))
    checkpoints: dict[int, Checkpoint] = dict(sorted(store.checkpoints.items()))
    timers = dict(sorted(store.timers.items()))
    fired = {k: row.emitted for k, row in timers.items()}
    # With multiplicity: a threshold announced twice would be a defect even though
    # consumers dedupe by id.
    derived = sorted(e.id for e in store.derived.sent) if isinstance(store, SlowStore) else []
    return (leads, sorted(store.archive), checkpoints, timers, fired, derived)


async def sequentially(parts: list[list[Record]], **options: int | bool) -> InMemoryStore:
    store = SlowStore()
    pipe = make(store, **options)  # type: ignore[arg-type]
    for part in parts:
        await pipe.process(part)
    return store


async def overlapped(
    parts: list[list[Record]], store: InMemoryStore, **options: int | bool
) -> list[tuple[int, int]]:
    """Runs the batches overlapped; returns (batch, commits so far) as each is reported."""
    pipe = make(store, **options)  # type: ignore[arg-type]
    done: list[tuple[int, int]] = []

    def on_done(tag: int, outcome: BatchOutcome) -> None:
        done.append((tag, len(store.commits)))

    driver: Overlapped[int] = Overlapped(pipe, on_done)
    for n, part in enumerate(parts):
        await driver.submit(n, part)
    await driver.close()
    return done


async def test_overlapped_batches_commit_the_same_read_models_as_one_at_a_time() -> None:
    parts = batches(journeys(12), 5)
    store = SlowStore()
    done = await overlapped(parts, store)
    assert tables(store) == tables(await sequentially(parts))
    assert [tag for tag, _ in done] == list(range(len(parts))), "each batch once, in order"
    assert all(commits >= tag + 1 for tag, commits in done), "reported only after its commit"


async def test_the_next_batch_is_staged_while_the_previous_one_is_still_committing() -> None:
    parts = batches(journeys(4), 4)
    store = SlowStore()
    pipe = make(store)
    driver: Overlapped[int] = Overlapped(pipe, lambda tag, outcome: None)
    await driver.submit(0, parts[0])
    assert store.commits == [], "submit returns before the commit ends"
    await driver.submit(1, parts[1])
    assert len(store.commits) == 1, "the second write waits for the first commit"
    await driver.close()
    assert len(store.commits) == 2


async def test_a_lost_connection_redoes_the_failed_batch_and_the_one_staged_on_it() -> None:
    parts = batches(journeys(12), 5)
    store = SlowStore()
    store.outages = 2  # the first two commits fail as if the connection dropped
    done = await overlapped(parts, store)
    assert tables(store) == tables(await sequentially(parts))
    assert sorted(tag for tag, _ in done) == list(range(len(parts)))


async def test_a_connection_dropped_mid_commit_redoes_the_batch_and_the_one_behind_it() -> None:
    parts = batches(journeys(12), 5)
    store = SlowStore()
    store.fail_next_commit = OSError("server closed the connection unexpectedly")
    done = await overlapped(parts, store)
    assert tables(store) == tables(await sequentially(parts))
    assert len(done) == len(parts)


async def test_a_partition_moved_by_another_worker_mid_flight_is_reloaded_and_redone() -> None:
    parts = batches(journeys(12), 5)
    moved_to = (0, Checkpoint(1, at(5)))  # another worker committed offsets 0 and 1
    store, reference = SlowStore(), SlowStore()
    store.move_checkpoint_once = reference.move_checkpoint_once = moved_to
    await overlapped(parts, store)
    pipe = make(reference)
    for part in parts:
        await pipe.process(part)
    assert tables(store) == tables(reference)


async def test_a_record_the_store_refuses_is_dead_lettered_and_the_rest_still_commits() -> None:
    records = journeys(8)
    parts = batches(records, 5)
    poison = _event_id(records[9])
    store, reference = SlowStore(), SlowStore()
    store.refuse = reference.refuse = {poison}
    await overlapped(parts, store)
    pipe = make(reference)
    for part in parts:
        await pipe.process(part)
    assert tables(store) == tables(reference)
    assert poison not in store.archive
    assert len(store.archive) == len(records) - 1


async def test_an_event_id_of_the_batch_in_flight_is_a_duplicate_for_another_lead() -> None:
    first = created("lead-a", at(0), id="shared-id")
    again = created("lead-b", at(1), id="shared-id")
    parts = [
        [record(0, first, key=b"lead-a")],
        [record(1, again, key=b"lead-b")],
    ]
    store = SlowStore()
    outcomes: list[BatchOutcome] = []
    driver: Overlapped[int] = Overlapped(make(store), lambda tag, o: outcomes.append(o))
    for n, part in enumerate(parts):
        await driver.submit(n, part)
    await driver.close()
    assert [r.rejection.reason.value for r in outcomes[1].rejected] == ["duplicate"]
    assert set(store.leads) == {"lead-a"}


async def test_leads_of_the_batch_in_flight_stay_cached_however_small_the_cache() -> None:
    # With room for one lead, the cache must still keep what is not committed yet: a refold
    # from the archive would miss it.
    parts = batches(journeys(10, contact_after=150), 3)
    store = SlowStore()
    await overlapped(parts, store, cache_leads=1, sla=True)
    assert tables(store) == tables(await sequentially(parts, cache_leads=1, sla=True))


async def test_sla_timers_come_out_the_same_overlapped() -> None:
    parts = batches(journeys(12, contact_after=150), 4)
    store = SlowStore()
    await overlapped(parts, store, sla=True)
    reference = await sequentially(parts, sla=True)
    assert any(row.emitted for row in store.timers.values()), "some thresholds fired"
    assert tables(store) == tables(reference)


async def test_a_failure_while_the_stream_is_idle_is_redone_without_waiting_for_more() -> None:
    parts = batches(journeys(2), 8)
    store = SlowStore()
    store.outages = 1
    done: list[int] = []
    driver: Overlapped[int] = Overlapped(make(store), lambda tag, o: done.append(tag))
    await driver.submit(0, parts[0])
    for _ in range(50):  # no further batch, no close(): the recovery runs by itself
        await asyncio.sleep(0)
        if done:
            break
    assert done == [0]
    assert store.checkpoints


def _event_id(r: Record) -> str:
    return str(orjson.loads(r.value)["id"])
