"""The demo simulator's journeys: deterministic, funnel-valid, realistically timed."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from events.catalog import (
    DealCreated,
    DealLost,
    DealWon,
    LeadAssigned,
    LeadContacted,
    LeadCreated,
    LeadDisqualified,
    LeadRecycled,
    LeadStageChanged,
    TouchpointRecorded,
)
from events.closed_loop import EmailRules
from events.codec import decode, encode
from events.envelope import Event
from events.funnel import Funnel, load_funnel
from events.validation import check_against_funnel
from projections.closed_loop.email import normalize_email
from services.simulator.journeys import SimConfig, Timeline, journey
from services.simulator.run import default_leads_per_hour
from services.simulator.world import survivor_of

START = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
SEEDS = (1, 7, 42, 2024)
LEADS_PER_SEED = 50


@pytest.fixture(scope="module")
def funnel() -> Funnel:
    return load_funnel()


def _journeys(seeds: tuple[int, ...] = SEEDS, leads: int = LEADS_PER_SEED) -> Iterator[list[Event]]:
    for seed in seeds:
        cfg = SimConfig(seed=seed)
        for lead_no in range(1, leads + 1):
            rng = random.Random(f"{seed}-{lead_no}")
            yield journey(lead_no, START + timedelta(minutes=lead_no), rng, cfg)


def _stage_after(event: Event) -> str | None:
    """The stage an event puts the lead in, or None if it does not change the stage."""
    data = event.data
    if isinstance(data, LeadCreated):
        return data.stage
    if isinstance(data, LeadStageChanged):
        return data.to_stage
    if isinstance(data, LeadRecycled):
        return "recycled"
    if isinstance(data, LeadDisqualified):
        return "disqualified"
    return None


def _first_action_delays(events: list[Event]) -> list[timedelta]:
    """Per MQL entry: the time to the first sales action (contact, accept or reject)."""
    delays: list[timedelta] = []
    mql_at: datetime | None = None
    for event in events:
        data = event.data
        if mql_at is not None and isinstance(
            data, LeadContacted | LeadStageChanged | LeadRecycled | LeadDisqualified
        ):
            delays.append(event.time - mql_at)
            mql_at = None
        if _stage_after(event) == "mql":
            mql_at = event.time
    return delays


def test_the_same_seed_and_start_give_the_same_events_ids_included() -> None:
    cfg = SimConfig(seed=11)
    first = [journey(n, START, random.Random(n), cfg) for n in range(1, 30)]
    again = [journey(n, START, random.Random(n), cfg) for n in range(1, 30)]
    assert first == again
    assert [e.id for e in first[3]] == [f"sim-11-4-{k}" for k in range(len(first[3]))]
    assert first[0][0].subject == "L-000001"


def test_timelines_with_the_same_seed_emit_identical_streams() -> None:
    def stream(seed: int) -> list[Event]:
        timeline = Timeline(SimConfig(seed=seed), START, leads_per_hour=20)
        return timeline.until(START + timedelta(days=1))

    assert stream(3) == stream(3)
    assert stream(3) != stream(4)


def test_every_generated_event_passes_the_funnel_and_survives_a_codec_round_trip(
    funnel: Funnel,
) -> None:
    for events in _journeys():
        for event in events:
            assert check_against_funnel(event, funnel) is None, event
            assert decode(encode(event)) == event


def test_ids_are_unique_across_leads_and_seeds() -> None:
    ids = [(e.source, e.id) for events in _journeys() for e in events]
    assert len(ids) == len(set(ids))


def test_each_lead_starts_with_a_touch_never_goes_back_in_time_and_chains_its_stages() -> None:
    for events in _journeys():
        assert isinstance(events[0].data, TouchpointRecorded)
        assert all(a.time <= b.time for a, b in itertools.pairwise(events))
        assert len({e.subject for e in events}) == 1
        stage: str | None = None
        for event in events:
            data = event.data
            if isinstance(data, LeadStageChanged | LeadRecycled | LeadDisqualified):
                assert data.from_stage == stage, (event, stage)
            stage = _stage_after(event) or stage
        assert stage is not None


def test_each_lead_has_one_to_five_touchpoints_and_one_creation() -> None:
    for events in _journeys():
        touches = [e for e in events if isinstance(e.data, TouchpointRecorded)]
        assert 1 <= len(touches) <= 5
        assert sum(isinstance(e.data, LeadCreated) for e in events) == 1


def test_most_first_sales_actions_come_within_the_hour_with_a_tail_of_sla_misses() -> None:
    delays = [d for events in _journeys(leads=150) for d in _first_action_delays(events)]
    assert len(delays) > 300
    late = sum(d > timedelta(hours=1) for d in delays) / len(delays)
    assert 0.1 < late < 0.3
    assert any(d > timedelta(days=1) for d in delays)
    assert all(d > timedelta(0) for d in delays)


def test_no_sla_misses_are_generated_when_the_miss_ratio_is_zero() -> None:
    cfg = SimConfig(seed=5, sla_miss_ratio=0.0)
    delays = [
        d
        for n in range(1, 150)
        for d in _first_action_delays(journey(n, START, random.Random(n), cfg))
    ]
    assert delays
    assert max(delays) < timedelta(hours=1)


def test_routing_assigns_owners_from_the_rep_pool_before_the_first_sales_action() -> None:
    cfg = SimConfig()
    reps = {r.rep_id: r.team for r in cfg.reps}
    assigned = 0
    for events in _journeys():
        for event in events:
            if isinstance(event.data, LeadAssigned):
                assigned += 1
                assert reps[event.data.owner_id] == event.data.team
    assert assigned > 50


def test_deals_carry_two_decimal_amounts_and_close_as_won_or_lost_with_the_stage() -> None:
    won = lost = 0
    for events in _journeys(leads=100):
        for event in events:
            data = event.data
            if isinstance(data, DealCreated | DealWon | DealLost):
                assert isinstance(data.amount, Decimal)
                assert data.amount.as_tuple().exponent == -2
                assert Decimal("5000.00") <= data.amount <= Decimal("120000.00")
                assert data.currency in ("EUR", "USD")
        stages = [_stage_after(e) for e in events]
        if any(isinstance(e.data, DealWon) for e in events):
            won += 1
            assert "customer" in stages
        if any(isinstance(e.data, DealLost) for e in events):
            lost += 1
            assert "lost" in stages
    assert won > 5
    assert lost > 5


def test_disqualifications_use_varied_reason_codes_of_the_funnel(funnel: Funnel) -> None:
    codes = {
        e.data.reason_code
        for events in _journeys()
        for e in events
        if isinstance(e.data, LeadDisqualified)
    }
    assert codes <= set(funnel.disqualification_reasons)
    assert len(codes) >= 5


def test_some_leads_recycle_nurture_and_duplicate_an_earlier_email() -> None:
    all_events = [e for events in _journeys(leads=150) for e in events]
    types = {e.type for e in all_events}
    assert {"lead.recycled", "lead.merged", "touchpoint.recorded", "lead.contacted"} <= types
    assert any(_stage_after(e) == "nurture" for e in all_events)
    assert any(_stage_after(e) == "subscriber" for e in all_events)
    cfg = SimConfig(seed=7)
    duplicate = next(n for n in range(2, 1000) if survivor_of(cfg, n) is not None)
    original = survivor_of(cfg, duplicate)
    assert original is not None
    assert original < duplicate
    emails = []
    for n in (original, duplicate):
        created = journey(n, START, random.Random(n), cfg)
        emails += [e.data.email for e in created if isinstance(e.data, LeadCreated)]
    assert emails[0] != emails[1]
    assert emails[0] is not None
    assert emails[1] is not None
    rules = EmailRules()
    assert normalize_email(emails[0], rules) == normalize_email(emails[1], rules)


def test_timeline_until_is_monotonic_emits_each_event_once_and_never_later_than_t() -> None:
    timeline = Timeline(SimConfig(seed=9), START, leads_per_hour=40)
    seen: set[str] = set()
    last: datetime | None = None
    rng = random.Random(0)
    t = START
    for _ in range(200):
        t += timedelta(seconds=rng.randint(0, 1800))
        batch = timeline.until(t)
        for event in batch:
            assert event.time <= t
            assert event.id not in seen
            assert last is None or event.time >= last
            seen.add(event.id)
            last = event.time
        assert timeline.until(t - timedelta(hours=1)) == []
    assert len(seen) > 300
    assert timeline.until(t) == []


def test_timeline_output_does_not_depend_on_how_often_it_is_asked() -> None:
    end = START + timedelta(days=1)
    coarse = Timeline(SimConfig(seed=2), START, leads_per_hour=30).until(end)
    fine_timeline = Timeline(SimConfig(seed=2), START, leads_per_hour=30)
    fine = [
        e
        for m in range(0, 24 * 60 + 1, 7)
        for e in fine_timeline.until(START + timedelta(minutes=m))
    ]
    fine += fine_timeline.until(end)
    assert [e.id for e in coarse] == [e.id for e in fine]


def test_leads_arrive_at_roughly_the_configured_rate_of_simulated_time() -> None:
    timeline = Timeline(SimConfig(seed=1), START, leads_per_hour=60)
    events = timeline.until(START + timedelta(hours=10))
    assert 450 < timeline.leads_started < 750
    assert sum(isinstance(e.data, TouchpointRecorded) for e in events) > 450


def test_invalid_configurations_are_refused() -> None:
    with pytest.raises(ValueError, match="leads_per_hour"):
        Timeline(SimConfig(), START, leads_per_hour=0)
    with pytest.raises(ValueError, match="sla_miss_ratio"):
        SimConfig(sla_miss_ratio=1.5)
    with pytest.raises(ValueError, match="rep"):
        SimConfig(reps=())


def test_default_arrivals_scale_with_the_publish_cap_and_the_speedup() -> None:
    assert default_leads_per_hour(50, 600) == pytest.approx(50.0)
    assert default_leads_per_hour(100, 600) == pytest.approx(2 * default_leads_per_hour(50, 600))
