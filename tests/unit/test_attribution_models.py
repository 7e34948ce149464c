"""Every packaged model against hand-computed deals: 1, 2, 3 coinciding and 10 touches, an
open deal with a pending position, and a deal without touches. The rules around them are in
``test_attribution_rules``; both share the builders defined here.

Times are whole days from ``T0`` and touches sit whole half-lives (7 d) apart, so time decay
weights are exact powers of two and every expected cent below can be checked on paper.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from events.attribution_config import load_attribution
from projections.attribution import Attribution, DealFacts, Position, Touch, attribute

from .factories import LEAD, at

CONFIG = load_attribution()
MODELS = CONFIG.names
P = Position


def day(n: float) -> datetime:
    return at(days=n)


def touches(*days: float) -> list[Touch]:
    return [
        Touch(f"t{i}", day(d), f"cmp-{i % 3}", ("email", "ads")[i % 2], "form_fill")
        for i, d in enumerate(days)
    ]


def deal(
    amount: str = "1000.00",
    *,
    lead_stage: float | None,
    created: float | None,
    won: float | None = None,
    lost: float | None = None,
    currency: str = "EUR",
) -> DealFacts:
    return DealFacts(
        deal_id="deal-1",
        lead_id=LEAD,
        amount=Decimal(amount),
        currency=currency,
        created_at=None if created is None else day(created),
        won_at=None if won is None else day(won),
        lost_at=None if lost is None else day(lost),
        lead_stage_at=None if lead_stage is None else day(lead_stage),
    )


def run(model: str, facts: DealFacts, path: list[Touch], as_of: float = 365) -> Attribution:
    result = attribute(facts, path, CONFIG.model(model), as_of=day(as_of))
    # The invariant every case below relies on, checked on every result.
    assert sum(c.amount for c in result.credits) + result.unattributed == result.amount
    return result


def amounts(result: Attribution) -> list[str]:
    return [str(credit.amount) for credit in result.credits]


def test_every_packaged_model_is_covered_by_the_tables_below() -> None:
    tables = (ONE_TOUCH, TWO_TOUCHES, COINCIDING, TEN_TOUCHES, OPEN_DEAL)
    assert all(set(table) == set(MODELS) for table in tables)
    assert len(MODELS) == 9


# --- one touch: it holds every milestone -------------------------------------------------

ONE_TOUCH = {model: ["1000.00"] for model in MODELS}


@pytest.mark.parametrize("model", MODELS)
def test_a_single_touch_gets_the_whole_deal_under_every_model(model: str) -> None:
    result = run(model, deal(lead_stage=1, created=2, won=3), touches(0))
    assert amounts(result) == ONE_TOUCH[model]
    (credit,) = result.credits
    assert credit.positions == (P.FIRST, P.LEAD_CREATION, P.OPPORTUNITY_CREATION, P.CLOSED_WON)
    assert credit.share == 1
    assert result.unattributed == 0
    assert (result.model, result.model_version, result.status) == (model, 1, "won")


# --- two touches: A = first + lead creation, B = opportunity creation + closed won ---------

TWO_TOUCHES = {
    "first_touch": ["1000.00", "0.00"],
    "last_touch": ["0.00", "1000.00"],
    "linear": ["500.00", "500.00"],
    # A: 40+40; B holds no U milestone, so it is the rest: 20.
    "u_shaped": ["800.00", "200.00"],
    # A: 30+30, B: 30 (opportunity); no rest touch, so 60:30 normalized = 2/3 : 1/3.
    "w_shaped": ["666.67", "333.33"],
    "full_path": ["500.00", "500.00"],
    # B is one half-life after A: weights 1/2 : 1.
    "time_decay": ["333.33", "666.67"],
    # 20 : 60 with no middle, normalized.
    "j_shaped": ["250.00", "750.00"],
    "inverse_j": ["750.00", "250.00"],
}


@pytest.mark.parametrize("model", MODELS)
def test_two_touches_share_the_weights_of_the_milestones_they_hold(model: str) -> None:
    result = run(model, deal(lead_stage=1, created=10, won=14), touches(0, 7))
    assert amounts(result) == TWO_TOUCHES[model]
    assert [c.positions for c in result.credits] == [
        (P.FIRST, P.LEAD_CREATION),
        (P.OPPORTUNITY_CREATION, P.CLOSED_WON),
    ]


# --- three touches, three milestones on the first one -------------------------------------

COINCIDING = {
    "first_touch": ["1000.00", "0.00", "0.00"],
    "last_touch": ["0.00", "0.00", "1000.00"],
    # 1/3 each; the one cent left over goes to the earliest of the equal remainders.
    "linear": ["333.34", "333.33", "333.33"],
    "u_shaped": ["800.00", "100.00", "100.00"],
    "w_shaped": ["900.00", "50.00", "50.00"],
    "full_path": ["675.00", "100.00", "225.00"],
    # 1/4 : 1/2 : 1 = 1/7, 2/7, 4/7: cents 14285.71, 28571.43, 57142.86 -> the two cents
    # left over go to the largest remainders (.86 and .71).
    "time_decay": ["142.86", "285.71", "571.43"],
    "j_shaped": ["200.00", "200.00", "600.00"],
    "inverse_j": ["600.00", "200.00", "200.00"],
}


@pytest.mark.parametrize("model", MODELS)
def test_a_touch_holding_three_milestones_gets_the_sum_of_their_weights(model: str) -> None:
    result = run(model, deal(lead_stage=1, created=2, won=15), touches(0, 7, 14))
    assert amounts(result) == COINCIDING[model]
    assert [c.positions for c in result.credits] == [
        (P.FIRST, P.LEAD_CREATION, P.OPPORTUNITY_CREATION),
        (P.MIDDLE,),
        (P.CLOSED_WON,),
    ]


# --- ten touches, a week apart: t0 first, t2 lead, t6 opportunity, t9 closed won -----------


def row(text: str) -> list[str]:
    return text.split()


TEN_TOUCHES = {  # t0 .. t9
    "first_touch": row("1023.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00"),
    "last_touch": row("0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 1023.00"),
    "linear": row("102.30 " * 10),
    # Rest 1023 * 0.2 / 8 = 25.575 on each of 8: four cents left over, to the earliest four.
    "u_shaped": row("409.20 25.58 409.20 25.58 25.58 25.58 25.57 25.57 25.57 25.57"),
    # Rest 102.30 / 7 = 14.614..: three cents left over, to t1, t3, t4.
    "w_shaped": row("306.90 14.62 306.90 14.62 14.62 14.61 306.90 14.61 14.61 14.61"),
    # 1023 * 0.225 = 230.175 on each milestone: two cents left, to t0 and t2 (earliest ties).
    "full_path": row("230.18 17.05 230.18 17.05 17.05 17.05 230.17 17.05 17.05 230.17"),
    # Weights 2^-9 .. 2^0 sum to 1023/512: exactly 1, 2, 4, .. 512.
    "time_decay": row("1.00 2.00 4.00 8.00 16.00 32.00 64.00 128.00 256.00 512.00"),
    "j_shaped": row("204.60 25.58 25.58 25.58 25.58 25.57 25.57 25.57 25.57 613.80"),
    "inverse_j": row("613.80 25.58 25.58 25.58 25.58 25.57 25.57 25.57 25.57 204.60"),
}


@pytest.mark.parametrize("model", MODELS)
def test_ten_touches_get_the_hand_computed_credit(model: str) -> None:
    facts = deal("1023.00", lead_stage=15, created=43, won=64)
    result = run(model, facts, touches(*(7 * i for i in range(10))))
    assert amounts(result) == TEN_TOUCHES[model]
    assert [c.positions for c in result.credits] == [
        (P.FIRST,),
        (P.MIDDLE,),
        (P.LEAD_CREATION,),
        *[(P.MIDDLE,)] * 3,
        (P.OPPORTUNITY_CREATION,),
        (P.MIDDLE,),
        (P.MIDDLE,),
        (P.CLOSED_WON,),
    ]
    assert sum(c.share for c in result.credits) == 1


# --- an open deal: the closing position is pending on the latest touch --------------------

OPEN_DEAL = {  # (amounts, pending)
    "first_touch": (["1000.00", "0.00", "0.00"], "0.00"),
    "last_touch": (["0.00", "0.00", "1000.00"], "1000.00"),
    "linear": (["333.34", "333.33", "333.33"], "333.33"),
    "u_shaped": (["800.00", "100.00", "100.00"], "100.00"),
    "w_shaped": (["600.00", "300.00", "100.00"], "100.00"),
    # 45 : 22.5 : 22.5, nothing in the middle.
    "full_path": (["500.00", "250.00", "250.00"], "250.00"),
    "time_decay": (["142.86", "285.71", "571.43"], "571.43"),
    "j_shaped": (["200.00", "200.00", "600.00"], "600.00"),
    "inverse_j": (["600.00", "200.00", "200.00"], "200.00"),
}


@pytest.mark.parametrize("model", MODELS)
def test_an_open_deal_puts_its_closing_weight_on_a_pending_latest_touch(model: str) -> None:
    path = touches(0, 7, 14, 25)  # t3 comes after as_of: not known yet
    result = run(model, deal(lead_stage=1, created=10), path, as_of=20)
    expected, pending = OPEN_DEAL[model]
    assert amounts(result) == expected
    assert str(result.pending) == pending
    assert result.status == "open"
    assert result.closed_at is None
    assert [c.positions for c in result.credits] == [
        (P.FIRST, P.LEAD_CREATION),
        (P.OPPORTUNITY_CREATION,),
        (P.PENDING,),
    ]
    assert [c.is_pending for c in result.credits] == [False, False, True]


def test_the_pending_position_moves_to_each_newer_touch_until_the_deal_is_won() -> None:
    path = touches(0, 7, 14, 25)
    later = run("last_touch", deal(lead_stage=1, created=10), path, as_of=30)
    assert [c.touch.event_id for c in later.credits if c.is_pending] == ["t3"]
    won = run("last_touch", deal(lead_stage=1, created=10, won=40), path)
    assert won.credits[-1].positions == (P.CLOSED_WON,)
    assert won.pending == 0
    assert won.status == "won"


# --- no touches --------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_a_deal_without_touches_is_wholly_unattributed(model: str) -> None:
    result = run(model, deal(lead_stage=1, created=2, won=3), [])
    assert result.credits == ()
    assert result.unattributed == Decimal("1000.00")
    assert result.status == "won"


@pytest.mark.parametrize("model", MODELS)
def test_touches_after_the_close_do_not_count(model: str) -> None:
    result = run(model, deal(lead_stage=1, created=2, won=3), touches(4, 5))
    assert result.credits == ()
    assert result.unattributed == Decimal("1000.00")
