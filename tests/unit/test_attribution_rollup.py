"""Credit per campaign and per channel: won revenue, open pipeline, the unattributed row."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from events.attribution_config import load_attribution
from projections.attribution import (
    Attribution,
    DealFacts,
    Dimension,
    Rollup,
    Touch,
    attribute,
    rollup,
)

from .factories import at

CONFIG = load_attribution()
LINEAR = CONFIG.model("linear")
AS_OF = at(days=100)


def touch(event_id: str, day: int, campaign: str, channel: str) -> Touch:
    return Touch(event_id, at(days=day), campaign, channel, "form_fill")


def facts(
    deal_id: str,
    amount: str,
    *,
    lead: str = "lead-1",
    won: int | None = 50,
    lost: int | None = None,
    currency: str = "EUR",
) -> DealFacts:
    def when(day: int | None) -> datetime | None:
        return None if day is None else at(days=day)

    return DealFacts(
        deal_id, lead, Decimal(amount), currency, at(days=20), when(won), when(lost), at(days=1)
    )


PATH = [
    touch("t1", 0, "webinar", "events"),
    touch("t2", 5, "spring-ads", "ads"),
    touch("t3", 30, "webinar", "email"),
]


def attributions() -> list[Attribution]:
    return [
        attribute(facts("won-1", "300.00"), PATH, LINEAR, as_of=AS_OF),
        # Same touch ids on another lead: touches are counted per lead.
        attribute(facts("won-2", "90.00", lead="lead-2"), PATH[:2], LINEAR, as_of=AS_OF),
        attribute(facts("won-3", "70.00"), [], LINEAR, as_of=AS_OF),
        attribute(facts("open-1", "600.00", won=None), PATH, LINEAR, as_of=AS_OF),
        attribute(facts("open-2", "10.00", won=None), [], LINEAR, as_of=AS_OF),
        attribute(facts("lost-1", "999.00", won=None, lost=60), PATH, LINEAR, as_of=AS_OF),
        attribute(facts("won-usd", "10.00", currency="USD"), PATH[:1], LINEAR, as_of=AS_OF),
    ]


def row(
    key: str | None,
    revenue: str,
    deals: int,
    touches: int,
    pipeline: str,
    pending: str,
    open_deals: int,
    open_touches: int,
    *,
    currency: str = "EUR",
) -> Rollup:
    return Rollup(
        "linear",
        1,
        "campaign",
        key,
        currency,
        Decimal(revenue),
        deals,
        touches,
        Decimal(pipeline),
        Decimal(pending),
        open_deals,
        open_touches,
    )


def test_credit_per_campaign_separates_revenue_pipeline_and_the_unattributed() -> None:
    assert rollup(attributions(), by="campaign") == (
        # won-1: 100 + 100 (t1, t3); won-2: 45 (t1 of lead-2); open-1: 200 + 200, t3 pending.
        row("spring-ads", "145.00", 2, 2, "200.00", "0", 1, 1),
        row("webinar", "245.00", 2, 3, "400.00", "200.00", 1, 2),
        row(None, "70.00", 1, 0, "10.00", "0", 1, 0),
        row("webinar", "10.00", 1, 1, "0", "0", 0, 0, currency="USD"),
    )


def test_revenue_rows_sum_to_exactly_the_won_amount_per_currency() -> None:
    dimensions: tuple[Dimension, ...] = ("campaign", "channel")
    for by in dimensions:
        rows = rollup(attributions(), by=by)
        eur = [r for r in rows if r.currency == "EUR"]
        assert sum(r.revenue for r in eur) == Decimal("460.00")
        assert sum(r.pipeline for r in eur) == Decimal("610.00")


def test_credit_per_channel() -> None:
    rows = {(r.currency, r.key): r for r in rollup(attributions(), by="channel")}
    assert rows["EUR", "events"].revenue == Decimal("145.00")
    assert rows["EUR", "email"].pending == Decimal("200.00")
    assert all(r.dimension == "channel" for r in rows.values())


def test_a_touch_without_credit_does_not_count_for_its_campaign() -> None:
    first = CONFIG.model("first_touch")
    rows = rollup([attribute(facts("won-1", "300.00"), PATH, first, as_of=AS_OF)], "campaign")
    assert [(r.key, r.revenue, r.deals, r.touches) for r in rows] == [
        ("webinar", Decimal("300.00"), 1, 1)
    ]


def test_rollup_names_the_model_version_it_used() -> None:
    rows = rollup(attributions(), by="campaign")
    assert {(r.model, r.model_version) for r in rows} == {("linear", 1)}


def test_mixing_model_versions_is_refused() -> None:
    w = CONFIG.model("W")
    mixed = [
        attribute(facts("a", "1.00"), PATH, LINEAR, as_of=AS_OF),
        attribute(facts("b", "1.00"), PATH, w, as_of=AS_OF),
    ]
    with pytest.raises(ValueError, match="one rollup per model version"):
        rollup(mixed, by="campaign")


def test_a_deal_counted_twice_is_refused() -> None:
    twice = attribute(facts("a", "1.00"), PATH, LINEAR, as_of=AS_OF)
    with pytest.raises(ValueError, match="deal a appears twice"):
        rollup([twice, twice], by="campaign")


def test_no_attributions_make_no_rows() -> None:
    assert rollup([], by="channel") == ()
