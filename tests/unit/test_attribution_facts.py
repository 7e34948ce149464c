"""Touches and deal facts read from a lead's events, and ``attribute_lead`` on top of them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from events.attribution_config import load_attribution
from events.envelope import Event
from projections.attribution import DealFacts, Touch, attribute_lead, touches_and_deals

from .factories import (
    FUNNEL,
    LEAD,
    at,
    contacted,
    created,
    deal_created,
    deal_lost,
    deal_won,
    moved,
    recycled,
    touched,
)

W = load_attribution().model("W")


def test_touches_come_out_in_event_time_order_with_their_campaign_and_channel() -> None:
    events = [
        touched(LEAD, at(days=2), "cmp-b", "ads", id="t2"),
        created(LEAD, at(days=1)),
        touched(LEAD, at(days=0), "cmp-a", "email", id="t1"),
        contacted(LEAD, at(days=3)),
    ]
    touches, deals = touches_and_deals(events, FUNNEL)
    assert touches == (
        Touch("t1", at(days=0), "cmp-a", "email", "form_fill"),
        Touch("t2", at(days=2), "cmp-b", "ads", "form_fill"),
    )
    assert deals == ()


def test_a_won_deal_takes_its_amount_and_time_from_the_win() -> None:
    events = [
        created(LEAD, at(0)),
        deal_created(LEAD, at(days=5), amount="900.00"),
        deal_won(LEAD, at(days=9), amount="1234.50"),
    ]
    _, (facts,) = touches_and_deals(events, FUNNEL)
    assert facts == DealFacts(
        deal_id="deal-1",
        lead_id=LEAD,
        amount=Decimal("1234.50"),
        currency="EUR",
        created_at=at(days=5),
        won_at=at(days=9),
        lost_at=None,
        lead_stage_at=at(0),
    )


def test_an_open_deal_takes_its_amount_from_its_latest_creation_event() -> None:
    events = [
        deal_created(LEAD, at(days=5), amount="900.00"),
        deal_created(LEAD, at(days=6), amount="950.00"),
    ]
    _, (facts,) = touches_and_deals(events, FUNNEL)
    assert (facts.amount, facts.created_at, facts.status) == (Decimal("950.00"), at(days=5), "open")
    assert facts.lead_stage_at is None


def test_the_earliest_close_decides_and_a_win_beats_a_loss_at_the_same_instant() -> None:
    later_loss = [deal_won(LEAD, at(days=3)), deal_lost(LEAD, at(days=4), amount="1.00")]
    same_instant = [
        deal_lost(LEAD, at(days=3), amount="1.00", id="a-lost"),
        deal_won(LEAD, at(days=3), id="z-won"),
    ]
    for events in (later_loss, same_instant):
        _, (facts,) = touches_and_deals(events, FUNNEL)
        assert (facts.status, facts.amount, facts.created_at) == ("won", Decimal("1000.00"), None)
    earlier_loss = [deal_lost(LEAD, at(days=2), amount="1.00"), deal_won(LEAD, at(days=3))]
    _, (facts,) = touches_and_deals(earlier_loss, FUNNEL)
    assert (facts.status, facts.lost_at, facts.amount) == ("lost", at(days=2), Decimal("1.00"))


def test_deals_are_listed_in_order_of_first_appearance() -> None:
    events = [deal_created(LEAD, at(days=2), "deal-b"), deal_created(LEAD, at(days=1), "deal-z")]
    _, deals = touches_and_deals(events, FUNNEL)
    assert [d.deal_id for d in deals] == ["deal-z", "deal-b"]


@pytest.mark.parametrize(
    ("history", "expected_day"),
    [
        ([created(LEAD, at(days=1), "lead")], 1),
        ([created(LEAD, at(days=1), "mql")], 1),
        (
            [
                created(LEAD, at(days=1), "subscriber"),
                moved(LEAD, at(days=4), "subscriber", "lead"),
            ],
            4,
        ),
        # Straight past the lead stage still reaches it.
        (
            [created(LEAD, at(days=1), "subscriber"), moved(LEAD, at(days=5), "subscriber", "mql")],
            5,
        ),
        # Nurture is a side stage: reaching it is not reaching the lead stage.
        (
            [
                created(LEAD, at(days=1), "subscriber"),
                moved(LEAD, at(days=2), "subscriber", "nurture"),
                moved(LEAD, at(days=6), "nurture", "lead"),
            ],
            6,
        ),
        # Never reached: the creation time stands in.
        ([created(LEAD, at(days=1), "subscriber")], 1),
    ],
)
def test_the_lead_creation_milestone_is_when_the_lead_first_reached_the_lead_stage(
    history: list[Event], expected_day: int
) -> None:
    events = [*history, deal_created(LEAD, at(days=9))]
    _, (facts,) = touches_and_deals(events, FUNNEL)
    assert facts.lead_stage_at == at(days=expected_day)


def test_a_recycled_lead_keeps_its_first_lead_stage_time() -> None:
    events = [
        created(LEAD, at(days=1), "mql"),
        recycled(LEAD, at(days=2), "mql"),
        moved(LEAD, at(days=3), "recycled", "lead"),
        deal_created(LEAD, at(days=4)),
    ]
    _, (facts,) = touches_and_deals(events, FUNNEL)
    assert facts.lead_stage_at == at(days=1)


def test_the_lead_stage_must_be_on_the_funnels_main_path() -> None:
    with pytest.raises(ValueError, match="'nurture' is not on the funnel's main path"):
        touches_and_deals([], FUNNEL, lead_stage="nurture")


def test_as_of_hides_everything_that_happened_later() -> None:
    events = [
        created(LEAD, at(days=0)),
        touched(LEAD, at(days=1), id="t1"),
        deal_created(LEAD, at(days=2), amount="500.00"),
        touched(LEAD, at(days=3), id="t2"),
        deal_won(LEAD, at(days=4), amount="800.00"),
        deal_created(LEAD, at(days=5), "deal-2"),
    ]
    touches, deals = touches_and_deals(events, FUNNEL, as_of=at(days=3))
    assert [t.event_id for t in touches] == ["t1", "t2"]
    (facts,) = deals
    assert (facts.status, facts.amount) == ("open", Decimal("500.00"))


def test_duplicate_deliveries_are_read_once() -> None:
    events = [touched(LEAD, at(days=1), id="t1"), deal_created(LEAD, at(days=2))]
    assert touches_and_deals([*events, *events], FUNNEL) == touches_and_deals(events, FUNNEL)


def test_attribute_lead_answers_what_was_believed_at_each_moment() -> None:
    events = [
        created(LEAD, at(days=0)),
        touched(LEAD, at(days=1), "cmp-a", id="t1"),
        deal_created(LEAD, at(days=2), amount="500.00"),
        touched(LEAD, at(days=3), "cmp-b", id="t2"),
        deal_won(LEAD, at(days=4), amount="800.00"),
        touched(LEAD, at(days=5), "cmp-c", id="t3"),
    ]
    (then,) = attribute_lead(events, FUNNEL, W, as_of=at(days=3))
    # Lead creation (day 0) precedes every touch, so W pays t1 30+30 and t2, the rest, 10.
    assert (then.status, then.amount, then.pending) == ("open", Decimal("500.00"), Decimal("71.43"))
    assert [str(c.amount) for c in then.credits] == ["428.57", "71.43"]
    (now,) = attribute_lead(reversed(events), FUNNEL, W, as_of=at(days=30))
    assert (now.status, now.amount, now.model_label) == ("won", Decimal("800.00"), "w_shaped@v1")
    assert [str(c.amount) for c in now.credits] == ["685.71", "114.29"]
    assert attribute_lead(events, FUNNEL, W, as_of=at(days=1)) == ()
