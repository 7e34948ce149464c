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
collection sees them, so little is promoted and the older generations stay small. Cycles
(asyncio futures, exception tracebacks) are still collected, only less often.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_for_batches"]

#: Allocations (net of frees) between young collections; CPython's default is 700.
YOUNG_THRESHOLD = 100_000


def tune_for_batches(young: int = YOUNG_THRESHOLD) -> tuple[int, int, int]:
    """Raise the young-generation threshold, keep the older ones; returns the old setting."""
    old = gc.get_threshold()
    gc.set_threshold(young, old[1], old[2])
    return old
