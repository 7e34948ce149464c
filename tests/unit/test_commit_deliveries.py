"""Dead letters and derived events travel while the store writes, and land before it commits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

import pytest

from services.processor.pipeline import BatchPipeline
from services.processor.ports import BatchWrite, RejectedRecord

from .test_pipeline import JOURNEY, InMemoryStore, pipeline, record


class WritingStore(InMemoryStore):
    """Notes when its statements run relative to the deliveries it is handed."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def commit(
        self,
        batch: BatchWrite,
        expected: dict[int, int | None],
        delivered: Awaitable[None] | None = None,
    ) -> None:
        self.log.append("statements")
        await asyncio.sleep(0)  # a round trip: the deliveries get going meanwhile
        await super().commit(batch, expected, delivered)
        self.log.append("committed")


class SlowDeadLetters:
    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log = log
        self.fail = fail

    async def send(self, rejected: Sequence[RejectedRecord]) -> None:
        self.log.append("sending")
        await asyncio.sleep(0)
        if self.fail:
            raise OSError("broker unreachable")
        self.log.append("sent")


def _wired(log: list[str], fail: bool = False) -> tuple[BatchPipeline, WritingStore]:
    pipe, _, _ = pipeline()
    store = WritingStore(log)
    pipe.store = store
    pipe.dead_letters = SlowDeadLetters(log, fail)
    return pipe, store


async def test_dead_letters_are_sent_while_the_store_writes_and_before_it_commits() -> None:
    log: list[str] = []
    pipe, store = _wired(log)
    await pipe.process([record(0, JOURNEY[0]), record(1, value=b"{oops")])
    assert log == ["statements", "sending", "sent", "committed"]
    assert len(store.commits) == 1


async def test_a_failed_delivery_commits_nothing_and_its_error_surfaces() -> None:
    log: list[str] = []
    pipe, store = _wired(log, fail=True)
    with pytest.raises(OSError, match="broker unreachable"):
        await pipe.write(await pipe.stage([record(0, JOURNEY[0]), record(1, value=b"{x")]))
    assert store.commits == []
    assert store.checkpoints == {}


async def test_a_batch_with_nothing_to_deliver_commits_without_waiting_on_anything() -> None:
    log: list[str] = []
    pipe, store = _wired(log)
    await pipe.process([record(0, JOURNEY[0])])
    assert log == ["statements", "committed"]
    assert len(store.commits) == 1
