"""Value types of the batch pipeline: its limits, its SLA wiring and a batch's outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from events.envelope import Event
from projections.changes import Changes
from services.processor.closed_loop import ClosedLoopEngine, IdentityStore
from services.processor.ports import BatchWrite, DerivedSink, RejectedRecord
from services.processor.sla_engine import SlaEngine, SlaStore


@dataclass(frozen=True, slots=True)
class Limits:
    max_future_skew: timedelta = timedelta(minutes=5)
    allowed_lateness: timedelta = timedelta(days=30)
    max_event_bytes: int = 64 * 1024
    #: leads kept folded in memory; evicted ones are refolded from the archive on demand.
    cache_leads: int = 200_000


@dataclass(frozen=True, slots=True)
class SlaWiring:
    """The SLA engine, where it loads committed timer rows from, and where facts go."""

    engine: SlaEngine
    store: SlaStore
    derived: DerivedSink


@dataclass(frozen=True, slots=True)
class ClosedLoopWiring:
    """The closed-loop engine, where it reads email-key holders, and where facts go."""

    engine: ClosedLoopEngine
    store: IdentityStore
    derived: DerivedSink


@dataclass(slots=True)
class BatchOutcome:
    """What a committed batch did, for metrics and logs."""

    accepted: list[Event] = field(default_factory=list)
    out_of_order: list[Event] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    changes: list[Changes] = field(default_factory=list)
    #: derived sla.* and closed-loop events produced (and committed) by this batch
    derived: list[Event] = field(default_factory=list)
    skipped: int = 0
    #: tick records applied: stream-time advances, neither accepted nor rejected
    ticks: int = 0

    def extend(self, other: BatchOutcome) -> BatchOutcome:
        self.accepted += other.accepted
        self.out_of_order += other.out_of_order
        self.rejected += other.rejected
        self.changes += other.changes
        self.derived += other.derived
        self.skipped += other.skipped
        self.ticks += other.ticks
        return self


@dataclass(slots=True)
class Staged:
    """A folded batch on its way to PostgreSQL (see ``BatchPipeline.stage``)."""

    #: order of staging; identifies the batch while it is in flight
    serial: int
    outcome: BatchOutcome
    #: None when every record was committed before (a redelivery): nothing to write
    write: BatchWrite | None
    #: the stored offset each partition must still have when the batch commits (the fence)
    expected: dict[int, int | None]
    sla_derived: list[Event]
    loop_derived: list[Event]
    #: leads whose cached state this batch changed: not evictable until it is committed
    leads: set[str]
    #: ids of the events it accepted: taken, though not in the archive until it commits
    ids: set[str]
