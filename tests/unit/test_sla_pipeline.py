"""The SLA engine inside the batch pipeline: per-record firing, ticks, restarts, retries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from events.codec import encode
from events.envelope import Event
from events.tick import TICK_HEADERS, encode_tick
from services.processor.pipeline import BatchPipeline, Limits, SlaWiring
from services.processor.records import Record
from services.processor.sla_engine import SlaEngine

from .factories import FUNNEL, assigned, at, contacted, created, disqualified, moved
from .sla_support import RULES
from .test_pipeline import TOPIC, InMemoryStore, RecordingDeadLetters

BROKER_MS = int(at(days=60).timestamp() * 1000)


class RecordingDerived:
    """The derived topic: every send, and how many commits the store had at that moment."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.sent: list[Event] = []
        self.commits_before_send: list[int] = []

    async def send(self, events: Sequence[Event]) -> None:
        self.commits_before_send.append(len(self.store.commits))
        self.sent.extend(events)

    @property
    def ids(self) -> set[str]:
        return {e.id for e in self.sent}


def pipeline(
    store: InMemoryStore | None = None,
) -> tuple[BatchPipeline, InMemoryStore, RecordingDerived]:
    store = store or InMemoryStore()
    derived = RecordingDerived(store)
    limits = Limits(max_future_skew=timedelta(minutes=5), allowed_lateness=timedelta(days=30))
    sla = SlaWiring(SlaEngine(RULES), store, derived)
    pipe = BatchPipeline(TOPIC, FUNNEL, store, RecordingDeadLetters(store), limits, 0, sla=sla)
    return pipe, store, derived


class Log:
    """A partitioned log under construction: offsets are assigned per partition."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._next: dict[int, int] = {}

    def _offset(self, partition: int) -> int:
        self._next[partition] = self._next.get(partition, -1) + 1
        return self._next[partition]

    def event(self, event: Event, partition: int = 0) -> Log:
        key = event.subject.encode()
        offset = self._offset(partition)
        self.records.append(Record(TOPIC, partition, offset, key, encode(event), BROKER_MS))
        return self

    def tick(self, when: datetime, partition: int = 0, broker_ms: int = BROKER_MS) -> Log:
        value = encode_tick(when, "test")
        offset = self._offset(partition)
        self.records.append(
            Record(TOPIC, partition, offset, None, value, broker_ms, tuple(TICK_HEADERS))
        )
        return self


def first_touch_id(lead: str, cycle: str, tag: str) -> str:
    return f"sla/{lead}/mql_first_touch/{cycle}/{tag}"


# at(0) is Monday 10:00 in Berlin: a 1 h business-hours first touch is due at at(60).
A_MQL = created("A", at(0), "mql", id="a0")
B_MQL = created("B", at(30), "mql", id="b0")


async def test_a_breach_fires_when_another_leads_record_moves_stream_time_past_it() -> None:
    pipe, store, derived = pipeline()
    log = Log().event(A_MQL).event(created("B", at(61), id="b0"))
    outcome = await pipe.process(log.records)

    assert first_touch_id("A", "a0", "breached") in {e.id for e in outcome.derived}
    assert derived.commits_before_send == [0], "derived events are produced before the commit"
    row = store.timers[("A", "mql_first_touch", "a0")]
    assert row.status == "breached"
    assert row.emitted == {"started", "warning", "breached"}


async def test_a_tick_moves_stream_time_and_counts_as_neither_accepted_nor_rejected() -> None:
    pipe, store, derived = pipeline()
    log = Log().event(A_MQL).tick(at(hours=2, minutes=30))
    outcome = await pipe.process(log.records)

    assert (len(outcome.accepted), len(outcome.rejected), outcome.ticks) == (1, 0, 1)
    assert first_touch_id("A", "a0", "escalated-1") in derived.ids
    assert first_touch_id("A", "a0", "escalated-2") not in derived.ids
    assert store.checkpoints[0].offset == 1
    assert store.checkpoints[0].stream_time == at(hours=2, minutes=30)


async def test_a_tick_from_the_future_of_its_broker_time_is_rejected() -> None:
    pipe, _, derived = pipeline()
    log = Log().event(A_MQL).tick(at(days=61))
    outcome = await pipe.process(log.records)

    assert [r.rejection.reason.value for r in outcome.rejected] == ["future_event"]
    assert outcome.ticks == 0
    assert first_touch_id("A", "a0", "breached") not in derived.ids


async def test_a_tick_on_one_partition_does_not_fire_another_partitions_timers() -> None:
    pipe, _, derived = pipeline()
    await pipe.process(Log().event(A_MQL, partition=0).tick(at(days=3), partition=1).records)
    assert first_touch_id("A", "a0", "breached") not in derived.ids


def history() -> Log:
    """Two partitions, several leads, SLA outcomes of every kind, and ticks."""
    log = Log()
    log.event(A_MQL).event(B_MQL).event(created("C", at(5), "mql", id="c0"), partition=1)
    log.event(assigned("A", at(10))).event(contacted("A", at(20)))  # met in time
    log.event(assigned("C", at(40)), partition=1)
    log.event(moved("A", at(50), "mql", "sal"))
    log.event(created("D", at(90), id="d0"))  # B passes its warning and deadline here
    log.event(contacted("B", at(hours=3)))  # B: breached, escalated, then met late
    log.event(disqualified("C", at(hours=1, minutes=10), "mql", "poor_fit"), partition=1)
    log.event(moved("A", at(hours=4), "sal", "sql")).tick(at(days=2))
    log.event(disqualified("A", at(days=3), "sql", "no_budget"))  # sql_stagnation cancelled
    log.tick(at(days=20)).tick(at(days=20), partition=1)
    return log


async def run_in_batches(records: list[Record], size: int) -> tuple[set[str], InMemoryStore]:
    pipe, store, derived = pipeline()
    for i in range(0, len(records), size):
        await pipe.process(records[i : i + size])
    return derived.ids, store


async def test_the_same_log_gives_the_same_sla_events_whatever_the_batch_size() -> None:
    records = history().records
    whole, store = await run_in_batches(records, len(records))
    for size in (1, 2, 5):
        ids, other = await run_in_batches(records, size)
        assert ids == whole, size
        assert {k: r.emitted for k, r in other.timers.items()} == {
            k: r.emitted for k, r in store.timers.items()
        }
    # The facts the history was built to show:
    assert first_touch_id("A", "a0", "met") in whole
    assert first_touch_id("A", "a0", "warning") in whole
    assert first_touch_id("A", "a0", "breached") not in whole
    assert {first_touch_id("B", "b0", t) for t in ("breached", "escalated-1", "met")} <= whole
    sql_cycle = next(k for k in store.timers if k[1] == "sql_stagnation")[2]
    assert f"sla/A/sql_stagnation/{sql_cycle}/cancelled" in whole
    assert f"sla/A/sql_stagnation/{sql_cycle}/breached" not in whole
    assert "sla/D/mql_stagnation/d0/started" not in whole, "D never entered mql"


async def test_a_restarted_pipeline_rebuilds_its_queues_from_the_store() -> None:
    records = history().records
    whole, _ = await run_in_batches(records, len(records))
    pipe, store, first = pipeline()
    await pipe.process(records[:6])
    # A new process over the same store: cold caches, queues rebuilt from the timer rows.
    restarted, _, second = pipeline(store)
    await restarted.process(records)  # Kafka redelivers from an older offset
    assert first.ids | second.ids == whole
    assert not first.ids & second.ids, "nothing committed is produced again"


async def test_a_failed_commit_reproduces_the_same_derived_events_on_retry() -> None:
    records = history().records
    whole, _ = await run_in_batches(records, len(records))
    pipe, store, derived = pipeline()
    store.fail_next_commit = OSError("connection reset")
    await pipe.process(records)
    assert derived.ids == whole
    assert len(derived.sent) > len(whole), "the first attempt's events were sent twice"
    assert sorted(e.id for e in derived.sent) == sorted(
        [e.id for e in derived.sent[: len(derived.sent) // 2]] * 2
    )


async def test_volume_facts_are_written_with_the_batch() -> None:
    _, store = await run_in_batches(history().records, 3)
    mqls = {lead: [f.team for f in facts if f.kind == "mql"] for lead, facts in store.facts.items()}
    assert mqls == {"A": ["sales"], "B": [None], "C": ["sales"], "D": []}
