"""The closed loop inside the batch pipeline, with hand-written fakes."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import timedelta

import orjson

from events.catalog import LeadCreated
from events.closed_loop import ClosedLoopConfig, OnSuppressed
from events.closed_loop_events import HandoffSuppressed, LeadDuplicateDetected
from events.codec import encode
from events.envelope import Event, make_event
from events.funnel import Funnel
from projections.closed_loop.duplicates import Holder
from projections.closed_loop.email import email_key
from services.processor.closed_loop import ClosedLoopEngine
from services.processor.pipeline import BatchPipeline, ClosedLoopWiring, Limits
from services.processor.ports import BatchWrite, StoreUnavailable
from tests.unit.factories import FUNNEL, SOURCE, at, created, disqualified, moved, recycled
from tests.unit.test_pipeline import InMemoryStore, RecordingDeadLetters, record

KEY = b"k"


class IdentityStore(InMemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.identities: dict[str, dict[str, Holder]] = {}
        #: a holder "another worker" commits just before our next commit (once)
        self.sneak_in: Holder | None = None

    async def load_identities(self, email_keys: Sequence[str]) -> dict[str, dict[str, Holder]]:
        return {k: dict(self.identities[k]) for k in email_keys if k in self.identities}

    async def commit(
        self,
        batch: BatchWrite,
        expected: dict[int, int | None],
        delivered: Awaitable[None] | None = None,
    ) -> None:
        loop = batch.closed_loop
        if self.sneak_in is not None:
            h, self.sneak_in = self.sneak_in, None
            self.identities.setdefault(h.email_key, {})[h.lead_id] = h
        if loop is not None:
            for h in loop.holders:  # the fence of closed_loop_rows, in memory
                stored = set(self.identities.get(h.email_key, {}))
                if stored - loop.seen_holders.get(h.email_key, frozenset()):
                    raise StoreUnavailable("email key moved")
        await super().commit(batch, expected, delivered)
        if loop is not None:
            for h in loop.holders:
                self.identities.setdefault(h.email_key, {})[h.lead_id] = h


class Derived:
    def __init__(self) -> None:
        self.sent: list[Event] = []

    async def send(self, events: Sequence[Event]) -> None:
        self.sent.extend(events)


def pipeline(
    funnel: Funnel = FUNNEL,
) -> tuple[BatchPipeline, IdentityStore, RecordingDeadLetters, Derived]:
    store = IdentityStore()
    dead, derived = RecordingDeadLetters(store), Derived()
    loop = ClosedLoopWiring(ClosedLoopEngine(funnel, KEY), store, derived)
    limits = Limits(max_future_skew=timedelta(minutes=5), allowed_lateness=timedelta(days=7))
    pipe = BatchPipeline("events", funnel, store, dead, limits, retry_delay=0, closed_loop=loop)
    return pipe, store, dead, derived


def person(lead: str, minute: int, email: str) -> Event:
    data = LeadCreated(stage="mql", email=email, lead_source="webinar")
    return make_event(data, id=f"{lead}/c", subject=lead, source=SOURCE, time=at(minute))


def rec(offset: int, event: Event, partition: int = 0):  # type: ignore[no-untyped-def]
    return record(offset, event, key=event.subject.encode(), partition=partition)


async def test_the_archive_gets_the_email_key_and_never_the_address() -> None:
    pipe, store, _, _ = pipeline()
    await pipe.process([rec(0, person("L1", 0, "Ada@Example.com"))])
    archived = store.archive["L1/c"]
    assert isinstance(archived.data, LeadCreated)
    assert archived.data.email is None
    assert archived.data.email_key == email_key("ada@example.com", FUNNEL.closed_loop.email, KEY)
    assert b"Ada@" not in encode(archived)


async def test_rejected_bytes_are_redacted_for_storage_but_dead_lettered_as_sent() -> None:
    pipe, store, dead, _ = pipeline()
    bad = orjson.dumps({"id": "x", "data": {"email": "ada@example.com"}, "type": "nope"})
    await pipe.process([record(0, value=bad, key=b"L1")])
    assert dead.sent[0].record.value == bad
    stored = store.commits[0].rejected[0].record.value
    assert b"ada@example.com" not in stored
    assert b"ek1:" in stored


async def test_a_rehandoff_is_flagged_once_with_the_suppressing_reason() -> None:
    pipe, store, _, derived = pipeline()
    lead = "L1"
    history = [
        created(lead, at(0), "mql"),
        disqualified(lead, at(10), "mql", "competitor"),
        recycled(lead, at(20), "disqualified"),
    ]
    await pipe.process([rec(i, e) for i, e in enumerate(history)])
    await pipe.process([rec(3, moved(lead, at(30), "recycled", "mql"))])
    flagged = [e for e in derived.sent if isinstance(e.data, HandoffSuppressed)]
    data = [e.data for e in flagged if isinstance(e.data, HandoffSuppressed)]
    assert [(d.to_stage, d.action, d.reason_code) for d in data] == [
        ("recycled", "flagged", "competitor"), ("mql", "flagged", "competitor"),
    ]  # fmt: skip
    assert flagged[0].id == f"closedloop/suppressed/{lead}/{history[2].id}"
    assert store.leads[lead].view.current_stage == "mql", "flag mode applies the move"


async def test_reject_mode_dead_letters_the_rehandoff_and_still_announces_it() -> None:
    config = ClosedLoopConfig(on_suppressed_handoff=OnSuppressed.REJECT)
    pipe, store, dead, derived = pipeline(FUNNEL.model_copy(update={"closed_loop": config}))
    lead = "L1"
    history = [
        created(lead, at(0), "mql"),
        disqualified(lead, at(10), "mql", "spam"),
        recycled(lead, at(20), "disqualified"),
    ]
    await pipe.process([rec(i, e) for i, e in enumerate(history)])
    assert [x.rejection.reason.value for x in dead.sent] == ["suppressed_handoff"]
    assert store.leads[lead].view.current_stage == "disqualified"
    assert [e.data.action for e in derived.sent if isinstance(e.data, HandoffSuppressed)] == [
        "rejected"
    ]


async def test_duplicates_are_found_within_a_batch_and_across_batches() -> None:
    pipe, _store, _, derived = pipeline()
    first = [person("L1", 0, "John.Doe+x@Gmail.com"), person("L2", 5, "johndoe@gmail.com")]
    await pipe.process([rec(i, e) for i, e in enumerate(first)])
    await pipe.process([rec(2, person("L3", 9, "JOHNDOE@googlemail.com"))])
    await pipe.process([rec(3, person("L4", 9, "john.doe@example.com"))])
    pairs = [
        (e.data.original_id, e.data.lead_id)
        for e in derived.sent
        if isinstance(e.data, LeadDuplicateDetected)
    ]
    assert pairs == [("L1", "L2"), ("L1", "L3"), ("L2", "L3")]


async def test_a_holder_committed_meanwhile_by_another_worker_makes_the_batch_redo() -> None:
    pipe, store, _, derived = pipeline()
    key = email_key("ada@example.com", FUNNEL.closed_loop.email, KEY)
    assert key is not None
    store.sneak_in = Holder(at(0), "L-other-partition", key, "e0")
    await pipe.process([rec(0, person("L1", 5, "ada@example.com"))])
    pairs = [e.data for e in derived.sent if isinstance(e.data, LeadDuplicateDetected)]
    assert [(p.original_id, p.lead_id) for p in pairs] == [("L-other-partition", "L1")]
    assert len(store.commits) == 1
