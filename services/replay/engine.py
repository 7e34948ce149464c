"""The replay engine: history in large batches through the live pipeline, state out in bulk.

``replay`` feeds every record of a source (Kafka from offset 0, or the archive) through the
same ``BatchPipeline`` the processor runs, with the same funnel, SLA rules and intake limits,
over an in-memory store (``services.replay.memory``). When the source is exhausted (or every
partition reached the ``--as-of`` cut), the final state is COPYed into a fresh schema.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from events.attribution_config import AttributionConfig
from events.funnel import Funnel
from projections.sla import SlaRules
from services.processor.closed_loop import ClosedLoopEngine
from services.processor.pipeline import BatchPipeline, ClosedLoopWiring, Limits, SlaWiring
from services.processor.records import Record
from services.replay.credits import credit_rows_in_order
from services.replay.cut import AsOfCut
from services.replay.memory import DiscardDerived, KeepDeadLetters, MemoryStore, ReplayState
from services.replay.schema import building, check_target
from services.replay.sla_deferred import DeferredSlaEngine
from services.replay.writer import write_state

#: Leads kept as objects (pipeline cache and store); the others are packed (see memory.py).
#: Far above what one batch touches, and above the ~26k leads open at once in the bench
#: (a lead spans 3 days, one starts every 10 s), so a packed lead is rarely unpacked.
KEEP_LEADS = 50_000


class Source(Protocol):
    async def open(self) -> int: ...

    def batches(self) -> AsyncIterator[list[Record]]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """What to rebuild, from where, with which rules."""

    dsn: str
    schema: str
    topic: str
    funnel: Funnel
    sla_rules: SlaRules
    limits: Limits = field(default_factory=Limits)
    as_of: datetime | None = None
    #: attribution models whose credit the replay stores (None: none)
    attribution: AttributionConfig | None = None
    replace: bool = False
    #: the live processor's email HMAC key: the closed loop keys emails with it
    email_hmac_key: bytes = b""
    #: what the records come from, recorded in the schema's replay_run row
    source: str = "kafka"


@dataclass(frozen=True, slots=True)
class ReplayCounts:
    """What a replay rebuilt, as its summary prints it."""

    accepted: int = 0
    rejected: int = 0
    leads: int = 0
    timers: int = 0
    credits: int = 0
    derived: int = 0

    @staticmethod
    def of(state: ReplayState) -> ReplayCounts:
        return ReplayCounts(
            state.accepted, len(state.rejected), state.lead_count, state.timer_count,
            len(state.credits), state.derived,
        )  # fmt: skip


@dataclass(slots=True)
class ReplayResult:
    counts: ReplayCounts = field(default_factory=ReplayCounts)
    records: int = 0
    ticks: int = 0
    #: records left out by the as-of cut
    cut: int = 0
    read_seconds: float = 0.0
    write_seconds: float = 0.0
    #: this process's CPU time (``time.process_time``) in the fold and in the write
    read_cpu: float = 0.0
    write_cpu: float = 0.0
    written: dict[str, int] = field(default_factory=dict)
    #: processes that folded (``services.replay.parallel``); why it fell back to one, if it did
    workers: int = 1
    fallback: str | None = None

    @property
    def seconds(self) -> float:
        return self.read_seconds + self.write_seconds


@dataclass(slots=True)
class FoldResult(ReplayResult):
    """A replay's result in this process, with the folded state itself."""

    state: ReplayState = field(default_factory=ReplayState)


Progress = Callable[[int, int | None], None]


async def fold_source(
    plan: ReplayPlan,
    source: Source,
    progress: Progress | None = None,
    keep_leads: int = KEEP_LEADS,
    credit: bool = True,
) -> FoldResult:
    """Run every record of ``source`` through the live pipeline into memory (no writes).
    ``keep_leads``: how many leads stay unpacked (a memory bound, not a result changer).
    ``credit``: also compute the attribution credit (a parallel replay's worker does it later,
    once the as-of time of every partition is known)."""
    store = MemoryStore(keep_leads=keep_leads)
    limits = Limits(
        max_future_skew=plan.limits.max_future_skew,
        allowed_lateness=plan.limits.allowed_lateness,
        max_event_bytes=plan.limits.max_event_bytes,
        cache_leads=keep_leads,
    )
    sla = DeferredSlaEngine(plan.sla_rules)
    pipeline = BatchPipeline(
        plan.topic, plan.funnel, store, KeepDeadLetters(), limits,
        sla=SlaWiring(sla, store, DiscardDerived()),
        closed_loop=ClosedLoopWiring(
            ClosedLoopEngine(plan.funnel, plan.email_hmac_key), store, DiscardDerived()
        ),
        changes=False,  # the facts for metrics: nobody reads them in a replay
    )  # fmt: skip
    result = FoldResult(state=store.state)
    cut = AsOfCut(plan.as_of) if plan.as_of is not None else None
    started, cpu = time.perf_counter(), time.process_time()
    total = await source.open()
    try:
        if progress is not None:
            progress(0, total)
        async for batch in source.batches():
            kept = cut.keep(batch) if cut is not None else batch
            if kept:
                outcome = await pipeline.process(kept)
                result.ticks += outcome.ticks
            result.records += len(kept)
            if progress is not None:
                progress(len(batch), None)
    finally:
        await source.close()
    store.add_final(sla.finish_values())
    if cut is not None:
        result.cut = cut.dropped
    if credit:
        add_credits(plan, store.state, plan.as_of or latest_time(store.state))
    result.read_seconds = time.perf_counter() - started
    result.read_cpu = time.process_time() - cpu
    result.counts = ReplayCounts.of(store.state)
    return result


def add_credits(plan: ReplayPlan, state: ReplayState, as_of: datetime | None) -> None:
    """The attribution credit of the folded leads as of ``as_of`` (none without models or
    without any stream time)."""
    if plan.attribution is None or as_of is None:
        return
    state.credit_as_of = as_of
    state.credits = credit_rows_in_order(
        state.leads_by_id(plan.funnel), plan.funnel, plan.attribution, as_of
    )


async def replay(
    plan: ReplayPlan,
    source: Source,
    progress: Progress | None = None,
    on_table: Callable[[str, int | None], None] | None = None,
) -> FoldResult:
    """Rebuild every registered projection of ``source`` into the fresh schema ``plan.schema``
    (built aside and put in place once complete: see ``schema.building``)."""
    await check_target(plan.dsn, plan.schema, replace=plan.replace)
    with no_cycle_collection():
        result = await fold_source(plan, source, progress)
        started, cpu = time.perf_counter(), time.process_time()
        async with building(plan.dsn, plan.schema, replace=plan.replace) as staging:
            result.written = await write_state(
                plan.dsn, staging, result.state, (plan.source, plan.as_of, result.records),
                on_table,
            )  # fmt: skip
        result.write_seconds = time.perf_counter() - started
        result.write_cpu = time.process_time() - cpu
    return result


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector for the replay's duration.

    A replay grows a heap of millions of long-lived objects (every lead's events, timers,
    rows), and each full collection walks all of them: measured, that doubled the bulk write.
    Reference counting still frees everything acyclic, which is nearly all a replay drops.

    While the collector is off, every object allocated stays in the youngest generation, so
    the first young collection after ``gc.enable()`` would walk the whole replay state at
    once (measured: 0.5 s of a 50,000-event replay, several seconds at 200,000). Freezing and
    unfreezing first moves everything to the oldest generation without walking it: the
    cycles left (asyncio plumbing) are then found by the next full collection instead."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def latest_time(state: ReplayState) -> datetime | None:
    """The latest stream time of any partition the state has a checkpoint of."""
    times = [c.stream_time for c in state.checkpoints.values() if c.stream_time is not None]
    return max(times, default=None)
