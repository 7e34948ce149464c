"""``observe_all`` must expose exactly what one ``observe`` per value would."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from services.metrics_bulk import observe_all

BUCKETS = (1.0, 5.0, 60.0, 3600.0)


def _samples(histogram: Histogram) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for metric in histogram.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    ]


def _pair() -> tuple[Histogram, Histogram]:
    registry = CollectorRegistry()
    one = Histogram("one_seconds", "one by one", ["stage"], buckets=BUCKETS, registry=registry)
    bulk = Histogram("bulk_seconds", "all at once", ["stage"], buckets=BUCKETS, registry=registry)
    return one, bulk


values = st.lists(
    st.one_of(
        st.sampled_from([0.0, 1.0, 5.0, 60.0, 3600.0, 3600.5, -1.0]),
        st.floats(min_value=-10, max_value=1e7, allow_nan=False),
    ),
    max_size=50,
)


@given(values)
def test_bulk_observations_expose_the_same_buckets_count_and_sum_as_one_by_one(
    xs: list[float],
) -> None:
    one, bulk = _pair()
    child = one.labels(stage="mql")
    for x in xs:
        child.observe(x)
    observe_all(bulk.labels(stage="mql"), xs)
    left = [(n.replace("one_", ""), labels, v) for n, labels, v in _samples(one)]
    right = [(n.replace("bulk_", ""), labels, v) for n, labels, v in _samples(bulk)]
    assert [(n, labels) for n, labels, _ in left] == [(n, labels) for n, labels, _ in right]
    for (_, _, a), (_, _, b) in zip(left, right, strict=True):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_a_nan_goes_into_the_sum_but_into_no_bucket_as_observe_does() -> None:
    one, bulk = _pair()
    one.labels(stage="sql").observe(math.nan)
    one.labels(stage="sql").observe(2.0)
    observe_all(bulk.labels(stage="sql"), [math.nan, 2.0])
    counts = [v for n, _, v in _samples(bulk) if n.endswith("_bucket")]
    assert counts == [v for n, _, v in _samples(one) if n.endswith("_bucket")] == [0, 1, 1, 1, 1]
