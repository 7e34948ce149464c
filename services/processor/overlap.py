"""Fold the next batch while the previous one commits.

PostgreSQL runs in its own process, so while it executes batch N's transaction this process
can decode and fold batch N+1 instead of waiting. ``Overlapped`` keeps at most one batch in
flight: N+1 is staged on top of N's uncommitted state, and its own write starts only once N's
commit has succeeded, so commits stay in order and each keeps its checkpoint fence.

If a write fails, everything staged after it was built on state that may never be committed.
The pipeline has already forgotten its caches; ``Overlapped`` then processes the failed batch
and every batch staged behind it again, one by one, with ``BatchPipeline.process`` (which
retries, reloads and bisects as usual). A batch is reported done (``on_done``: ack it to
Faust, count it) only after its commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.processor.batch import BatchOutcome, Staged
from services.processor.pipeline import BatchPipeline
from services.processor.records import Record

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class _Flight(Generic[T]):
    tag: T
    records: Sequence[Record]
    staged: Staged
    task: asyncio.Future[None]


class Overlapped(Generic[T]):
    """Drives a ``BatchPipeline`` with one commit in flight behind the fold."""

    def __init__(self, pipeline: BatchPipeline, on_done: Callable[[T, BatchOutcome], None]) -> None:
        self.pipeline = pipeline
        self.on_done = on_done
        self._flight: _Flight[T] | None = None
        # Serialises the pipeline's state changes: a recovery started when a write fails
        # while the stream is idle must not interleave with the next submit.
        self._lock = asyncio.Lock()
        self._recovery: asyncio.Future[None] | None = None

    async def submit(self, tag: T, records: Sequence[Record]) -> None:
        """Stage ``records`` and start committing them; returns before the commit ends."""
        async with self._lock:
            try:
                staged: Staged | None = await self.pipeline.stage(records)
            except Exception as exc:
                log.warning("staging failed (%s); the batch is processed on its own", exc)
                staged = None
            if not await self._land() or staged is None:
                # Staged on state that was never committed, or not staged at all: the
                # sequential path retries, reloads and bisects as it always does.
                self.on_done(tag, await self.pipeline.process(records))
                return
            task = asyncio.ensure_future(self.pipeline.write(staged))
            flight = _Flight(tag, records, staged, task)
            flight.task.add_done_callback(lambda task: self._written(flight, task))
            self._flight = flight

    async def close(self) -> None:
        """Wait for the batch in flight, redoing it if its write failed (at shutdown, after
        a failure while the stream is idle, and in tests)."""
        async with self._lock:
            await self._land()

    def _written(self, flight: _Flight[T], task: asyncio.Future[None]) -> None:
        # Runs as soon as the commit ends, so an idle stream still acks its last batch.
        if task.cancelled():
            return
        if task.exception() is None:
            self.on_done(flight.tag, flight.staged.outcome)
        elif not self._lock.locked():
            # Nothing else would look at the failure until the next batch: recover now.
            self._recovery = asyncio.ensure_future(self.close())

    async def _land(self) -> bool:
        """Wait for the write in flight. True when it committed (or there was none); False
        when it failed and was redone, which voids anything staged after it."""
        flight, self._flight = self._flight, None
        if flight is None:
            return True
        try:
            # Shielded: a shutdown cancels the agent, not a transaction half sent. If it is
            # cancelled anyway, nothing was acked, so Kafka delivers the batch again.
            await asyncio.shield(flight.task)
        except Exception as exc:
            log.warning("batch not committed (%s); redoing it from the store", exc)
            # The pipeline forgot its caches when the write failed, possibly in the middle
            # of staging the next batch; forget again so nothing of that survives.
            self.pipeline.forget()
            self.on_done(flight.tag, await self.pipeline.process(flight.records))
            return False
        self.pipeline.settle(flight.staged)
        return True
