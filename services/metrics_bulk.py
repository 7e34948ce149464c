"""Many observations into one histogram child at once.

``Histogram.observe`` takes two locks and scans the buckets for every value: about 1 us,
which the processor paid once per stage exit. A committed batch's values are counted per
bucket first and added with one increment per bucket and one to the sum. This reaches into
prometheus_client's internals (``_upper_bounds``, ``_buckets``, ``_sum``), so the version is
pinned in pyproject.toml and tests/unit/test_metrics_bulk.py checks that the exposition is
the same as one ``observe`` per value.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any


def observe_all(child: Any, values: Sequence[float]) -> None:
    """``child.observe(v)`` for every ``v`` in ``values``, with one update per bucket."""
    if not values:
        return
    bounds: Sequence[float] = child._upper_bounds
    counts = [0] * len(bounds)
    for value in values:
        # observe() puts a value in the first bucket whose bound is >= it (the last bound is
        # +Inf). It puts NaN in none, though it adds it to the sum; bisect would say 0.
        if value == value:
            counts[bisect_left(bounds, value)] += 1
    child._sum.inc(sum(values))
    buckets = child._buckets
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)
