"""Cyclic garbage collection tuned for a process that holds a large, acyclic working set.

The processor keeps thousands of leads' histories in memory, and every batch allocates tens of
thousands of short-lived objects (decoded events, views, rows) that stay alive until the batch
is committed. With CPython's default young-generation threshold of 700 allocations, those
temporaries survive several young collections mid-batch, get promoted, and then every older
collection walks them together with the whole lead cache. Measured with
``bench/pipeline_only.py --no-sla`` (50,000 events, 2026-12-02): 5,864 events/s with the
defaults, 10,589 with a young threshold of 100,000 -- close to 45% of the pipeline's time was
the collector walking objects that reference counting frees anyway.

A large young threshold lets a batch's temporaries die by reference counting before any
collection sees them. That still left the lead cache: each committed batch replaces some
cached states, the survivors are promoted, and every full collection (one per ~25% of the
heap promoted, i.e. every few seconds at full speed) walks the whole cache again. So after
each committed batch, ``BatchCollector`` freezes what survived (``gc.freeze``: the
collector no longer looks at it; reference counting still frees it). ``bench/stage_cpu.py``
over 200,000 events, 2026-12-02: 48.6 µs/event with the young threshold alone, 33.4 with the
freeze after each batch, 33.3 with the collector off.

What freezing gives up: a reference cycle that was alive at a freeze and dies later is never
collected. The lead cache and a batch's objects are acyclic (a unit test runs batches with
rejections and SLA timers and finds no cyclic garbage that grows with them; a 600,000-event
stage left none at all), and cycles created and dropped between two freezes are still
collected as usual. So the worker does not unfreeze: a full collection of a large cache is a
long pause -- 11 to 14 s for 100,000 cached leads (4.9 million tracked objects) on this
loaded 2-core machine, beyond the 10 s consumer session timeout, so the group would evict
the worker. The young-threshold policy alone ran such collections automatically, each time
the promoted objects grew by a quarter of the heap; freezing removes them. ``full_every``
brings periodic full collections back for a process that can afford the pause.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

__all__ = ["YOUNG_THRESHOLD", "BatchCollector", "tune_for_batches"]

#: Allocations (net of frees) between young collections; CPython's default is 700.
YOUNG_THRESHOLD = 100_000


def tune_for_batches(young: int = YOUNG_THRESHOLD) -> tuple[int, int, int]:
    """Raise the young-generation threshold, keep the older ones; returns the old setting."""
    old = gc.get_threshold()
    gc.set_threshold(young, old[1], old[2])
    return old


class BatchCollector:
    """Call ``batch_done`` after each committed batch: what survived it is frozen, and, if
    ``full_every`` is set, every ``full_every`` seconds (by ``clock``) everything is
    collected once."""

    def __init__(
        self,
        full_every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.full_every = full_every
        self._clock = clock
        self._last_full = clock()
        #: full collections run and the unreachable objects they found (for the curious)
        self.full_collections = 0
        self.found = 0

    def batch_done(self) -> None:
        now = self._clock()
        if self.full_every is not None and now - self._last_full >= self.full_every:
            self._last_full = now
            gc.unfreeze()
            self.found += gc.collect()
            self.full_collections += 1
        gc.freeze()
