"""Properties of funnel flow over random valid journeys (the lead fold's own strategy):
balances add up, adjacent periods chain, counts are bounded, and arrival order is
irrelevant."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from events.envelope import Event
from projections.funnel_flow import flow
from projections.funnel_lead import lead_flow

from .factories import FUNNEL, LEAD, T0
from .test_fold_properties import FAST, journeys

#: Period bounds in minutes after T0 (journeys span up to a few days).
CUTS = st.lists(st.integers(0, 20_000), min_size=3, max_size=3, unique=True).map(sorted)


@FAST
@given(journeys(), CUTS, st.integers(0, 30_000), st.randoms(use_true_random=False))
def test_balances_chain_counts_are_bounded_and_arrival_order_does_not_matter(
    events: list[Event], cuts: list[int], as_of_minutes: int, rng: random.Random
) -> None:
    a, b, c = (T0 + timedelta(minutes=m) for m in cuts)
    as_of = T0 + timedelta(minutes=as_of_minutes)
    lead = lead_flow(LEAD, events, FUNNEL, as_of)
    first, second, whole = (flow([lead], FUNNEL, s, e) for s, e in ((a, b), (b, c), (a, c)))
    for x, y, z in zip(first, second, whole, strict=True):
        for period in (x, y, z):
            assert period.balance_end == period.balance_start + period.inflow - period.outflow
            assert 0 <= period.balance_start <= 1, "one lead is in at most one stage"
            assert period.entrants <= period.inflow
            assert period.converted is None or period.converted <= period.entrants
            assert period.exits == period.outflow
        assert x.balance_end == y.balance_start
        assert (x.inflow + y.inflow, x.outflow + y.outflow) == (z.inflow, z.outflow)
        assert (x.balance_start, y.balance_end) == (z.balance_start, z.balance_end)
    shuffled = list(events)
    rng.shuffle(shuffled)
    assert lead_flow(LEAD, shuffled, FUNNEL, as_of) == lead
