"""The documented rules around the hand-computed tables: missing milestones, the instant of
a milestone, lost deals, and what ``attribute`` accepts."""

from __future__ import annotations

import pytest

from events.attribution_config import PositionalModel
from projections.attribution import Position, attribute

from .test_attribution_models import amounts, day, deal, run, touches

P = Position


def test_a_lost_deal_labels_its_closing_touch_closed_lost() -> None:
    result = run("j_shaped", deal(lead_stage=1, created=2, lost=10), touches(0, 7, 14))
    assert result.status == "lost"
    assert result.closed_at == day(10)
    assert [c.positions for c in result.credits] == [
        (P.FIRST, P.LEAD_CREATION, P.OPPORTUNITY_CREATION),
        (P.CLOSED_LOST,),
    ]
    assert amounts(result) == ["250.00", "750.00"]


# --- the documented rules for missing milestones ----------------------------------------


def test_weight_of_a_missing_milestone_is_redistributed_in_proportion_to_the_others() -> None:
    # The lead reached the lead stage before any touch: no lead-creation touch.
    facts = deal(lead_stage=0, created=10, won=14)
    u = run("u_shaped", facts, touches(5, 7))
    assert [c.positions for c in u.credits] == [
        (P.FIRST,),
        (P.OPPORTUNITY_CREATION, P.CLOSED_WON),
    ]
    # First 40, rest 20, lead creation's 40 spread 2:1 over them.
    assert amounts(u) == ["666.67", "333.33"]
    assert amounts(run("w_shaped", facts, touches(5, 7))) == ["500.00", "500.00"]


def test_a_deal_without_deal_created_has_no_opportunity_creation_touch() -> None:
    result = run("w_shaped", deal(lead_stage=1, created=None, won=14), touches(0, 7))
    assert [c.positions for c in result.credits] == [
        (P.FIRST, P.LEAD_CREATION),
        (P.CLOSED_WON,),
    ]
    # 60 for A; B is the rest (10); the missing 30 is redistributed 6:1.
    assert amounts(result) == ["857.14", "142.86"]


def test_a_model_whose_weighted_milestones_are_all_missing_splits_equally() -> None:
    lead_only = PositionalModel(name="lead_only", version=1, weights={"lead_creation": 1})
    facts = deal(lead_stage=None, created=2, won=9)
    result = attribute(facts, touches(0, 7), lead_only, as_of=day(10))
    assert amounts(result) == ["500.00", "500.00"]


def test_a_touch_at_the_instant_of_a_milestone_counts_as_before_it() -> None:
    result = run("w_shaped", deal(lead_stage=7, created=14, won=21), touches(0, 7, 14, 21))
    assert [c.positions for c in result.credits] == [
        (P.FIRST,),
        (P.LEAD_CREATION,),
        (P.OPPORTUNITY_CREATION,),
        (P.CLOSED_WON,),
    ]


# --- inputs ------------------------------------------------------------------------------


def test_the_order_and_duplicates_of_the_touches_passed_in_do_not_matter() -> None:
    path = touches(0, 7, 7, 14)
    facts = deal(lead_stage=1, created=10, won=20)
    expected = run("w_shaped", facts, path)
    assert run("w_shaped", facts, [*reversed(path), path[1]]) == expected


def test_deal_facts_from_after_as_of_are_refused() -> None:
    with pytest.raises(ValueError, match="won_at after as_of"):
        run("linear", deal(lead_stage=1, created=2, won=9), touches(0), as_of=5)


def test_deal_facts_cannot_be_both_won_and_lost() -> None:
    with pytest.raises(ValueError, match="both won and lost"):
        deal(lead_stage=1, created=2, won=3, lost=4)


def test_a_negative_deal_amount_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        deal("-1.00", lead_stage=1, created=2)
