"""What the batch pipeline needs from the outside world, as small Protocols.

The Postgres store and the Kafka dead-letter sink implement them; unit tests use fakes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from events.envelope import Event
from events.errors import Rejection
from projections.lead import LeadState
from services.processor.records import Checkpoint, Record
from services.processor.sla_engine import SlaWrite

if TYPE_CHECKING:  # the closed-loop engine imports RejectedRecord from here
    from services.processor.closed_loop import ClosedLoopWrite


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    record: Record
    rejection: Rejection
    lead_id: str | None
    event_id: str | None


@dataclass(frozen=True, slots=True)
class BatchWrite:
    """Everything one batch changes, committed atomically with its checkpoints."""

    topic: str
    accepted: Sequence[tuple[Record, Event]]
    leads: Sequence[LeadState]
    rejected: Sequence[RejectedRecord]
    checkpoints: dict[int, Checkpoint]
    #: SLA timer rows and volume facts; None when the pipeline runs without SLA rules.
    sla: SlaWrite | None = None
    #: identities, duplicate pairs and suppressed re-handoffs; None without the closed loop.
    closed_loop: ClosedLoopWrite | None = None
    #: what is committed for (some of) the leads in ``leads``, so the store writes only the
    #: rows that differ; a lead without an entry has all its rows rewritten.
    before: Mapping[str, LeadState] = field(default_factory=dict)


class CheckpointMoved(Exception):
    """Another worker advanced a partition we are writing: reload and redo the batch."""


class UnstorableBatch(Exception):
    """The store refused the batch's data itself (not a lost connection): retrying the same
    batch would fail forever, so the pipeline bisects it to find the poison record."""


class StoreUnavailable(Exception):
    """The store could not answer or commit now (connection lost, server restarting, a
    concurrent writer won a race); state is untouched, so the same batch can be retried."""


class ProjectionStore(Protocol):
    async def load_checkpoints(
        self, topic: str, partitions: Sequence[int]
    ) -> dict[int, Checkpoint]: ...

    async def load_histories(self, lead_ids: Sequence[str]) -> dict[str, list[Event]]: ...

    async def existing_ids(self, event_ids: Sequence[str]) -> set[str]: ...

    async def commit(
        self,
        batch: BatchWrite,
        expected: dict[int, int | None],
        delivered: Awaitable[None] | None = None,
    ) -> None:
        """Write the batch; raise CheckpointMoved if a stored offset differs from ``expected``,
        UnstorableBatch if the data itself cannot be stored.

        ``delivered``: the batch's derived events and dead letters on their way to the broker.
        The store writes meanwhile and awaits it just before its transaction commits; if it
        fails, nothing is committed and its exception propagates unchanged."""


@runtime_checkable
class PreparesCommits(Protocol):
    """A store that can do a batch's client-side commit work ahead of ``commit``."""

    def prepare(self, batch: BatchWrite, expected: dict[int, int | None]) -> None:
        """Build what ``commit`` will send for this batch (CPU only, no I/O); called while
        an earlier batch may still be committing. ``commit`` of another batch ignores it."""


class DerivedSink(Protocol):
    async def send(self, events: Sequence[Event]) -> None:
        """Publish derived events (keyed by lead id) and wait until the broker has them."""


class DeadLetterSink(Protocol):
    async def send(self, rejected: Sequence[RejectedRecord]) -> None:
        """Publish to the rejected-events topic and wait until the broker has them."""
