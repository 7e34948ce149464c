import gc
import weakref

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
