import gc
import weakref
from dataclasses import replace

from services.gc_policy import YOUNG_THRESHOLD, BatchCollector, tune_for_batches


def test_tuning_raises_only_the_young_threshold_and_returns_the_previous_setting() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        old = tune_for_batches()
        assert old == (700, 10, 10)
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    finally:
        gc.set_threshold(*before)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Node:
    def __init__(self) -> None:
        self.me = self


def test_a_finished_batch_freezes_what_survived_it() -> None:
    try:
        collector = BatchCollector(full_every=60.0, clock=_Clock())
        kept = [object() for _ in range(10)], {"a": [1]}
        collector.batch_done()
        assert gc.get_freeze_count() > 0
        assert gc.get_count()[0] < 50  # the young generation starts empty again
        del kept
    finally:
        gc.unfreeze()


def test_a_cycle_frozen_by_a_batch_is_collected_by_the_next_full_collection() -> None:
    clock = _Clock()
    try:
        collector = BatchCollector(full_every=60.0, clock=clock)
        node = _Node()
        probe = weakref.ref(node)
        collector.batch_done()
        del node
        gc.collect()  # a plain collection skips frozen objects
        assert probe() is not None
        clock.now = 30.0
        collector.batch_done()
        assert probe() is not None
        assert collector.full_collections == 0
        clock.now = 61.0
        collector.batch_done()
        assert probe() is None
        assert collector.full_collections == 1
        assert collector.found >= 1
    finally:
        gc.unfreeze()


async def _cyclic_garbage_after(batches: int) -> int:
    """Unreachable cycles left behind by ``batches`` batches through the pipeline with the
    SLA engine, each with a malformed record and a rejected one among its events."""
    # Imported here: the pipeline's fixtures are not needed by the tests above.
    from .factories import assigned, at, contacted, created, moved
    from .test_sla_pipeline import Log, pipeline

    pipe, _, _ = pipeline()
    log = Log()
    gc.collect()
    try:
        collector = BatchCollector(full_every=None)
        for b in range(batches):
            start = len(log.records)
            lead = f"L{b}"
            log.event(created(lead, at(b), "mql", id=f"{lead}-0"))
            log.event(assigned(lead, at(b + 1))).event(contacted(lead, at(b + 2)))
            log.event(moved(lead, at(b + 3), "mql", "sal"))
            log.event(created(lead, at(days=90), id=f"{lead}-x"))  # from the future
            log.records.append(replace(log.records[-1], offset=log.records[-1].offset + 1,
                                       value=b"{not json"))  # fmt: skip
            log._next[0] += 1
            await pipe.process(log.records[start:])
            collector.batch_done()
    finally:
        gc.unfreeze()
    return gc.collect()


async def test_batches_leave_no_reference_cycles_for_a_frozen_heap_to_keep() -> None:
    # What a freeze would keep forever is cyclic garbage; the pipeline makes none per batch.
    assert await _cyclic_garbage_after(12) == await _cyclic_garbage_after(2)
