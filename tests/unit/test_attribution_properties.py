"""Properties of attribution over random deals and histories, for every packaged model and for
random custom ones: order independence, exact sums, non-negative shares and amounts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from events.attribution_config import (
    WEIGHT_KEYS,
    ModelConfig,
    PositionalModel,
    TimeDecayModel,
    load_attribution,
)
from events.envelope import Event
from projections.attribution import Attribution, DealFacts, Touch, attribute, attribute_lead
from projections.attribution.money import digits_for

from .factories import (
    FUNNEL,
    LEAD,
    T0,
    created,
    deal_created,
    deal_lost,
    deal_won,
    moved,
    touched,
)

PACKAGED: tuple[ModelConfig, ...] = load_attribution().models
FAST = settings(max_examples=60, deadline=None)
#: Gaps with ties (0) and long quiet spells, so time decay sees tiny and zero weights too.
GAPS_HOURS = (0, 0, 1, 5, 24, 24 * 7, 24 * 90, 24 * 365 * 3)

amounts = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal(10**9), places=2, allow_nan=False
)


@st.composite
def custom_models(draw: st.DrawFn) -> ModelConfig:
    """A positional model with random exact weights, or time decay with a random half-life."""
    if draw(st.booleans()):
        hours = draw(st.integers(1, 24 * 60))
        return TimeDecayModel(name="decay_x", version=1, half_life=timedelta(hours=hours))
    cuts = sorted(draw(st.lists(st.integers(0, 1000), min_size=4, max_size=4)))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, 1000], strict=True)]
    weights = {key: Decimal(part) / 1000 for key, part in zip(WEIGHT_KEYS, parts, strict=True)}
    return PositionalModel(name="custom", version=1, weights=weights)


def hours(draw: st.DrawFn) -> timedelta:
    return timedelta(hours=draw(st.sampled_from(GAPS_HOURS)))


@st.composite
def deals(draw: st.DrawFn) -> tuple[DealFacts, list[Touch]]:
    """A deal in any state with 0..40 touches around its milestones (some after the close)."""
    when = T0
    path = []
    for i in range(draw(st.integers(0, 40))):
        when += hours(draw)
        campaign = draw(st.sampled_from(["a", "b", "c"]))
        path.append(Touch(f"t{i:02d}", when, campaign, draw(st.sampled_from(["x", "y"])), "ad"))
    spread = (when - T0) + timedelta(days=30)

    def moment() -> timedelta:
        return spread * draw(st.integers(0, 100)) / 100

    status = draw(st.sampled_from(["won", "open", "lost"]))
    created_at = T0 + moment() if draw(st.booleans()) else None
    closed = (created_at or T0) + moment()
    facts = DealFacts(
        deal_id="deal-1",
        lead_id=LEAD,
        amount=draw(amounts),
        currency=draw(st.sampled_from(["EUR", "JPY", "BHD"])),
        created_at=created_at,
        won_at=closed if status == "won" else None,
        lost_at=closed if status == "lost" else None,
        lead_stage_at=T0 + moment() if draw(st.booleans()) else None,
    )
    return facts, path


def check_invariants(result: Attribution) -> None:
    credited = sum((c.amount for c in result.credits), Decimal(0))
    assert credited + result.unattributed == result.amount
    assert all(c.share >= 0 and c.amount >= 0 for c in result.credits)
    digits = digits_for(result.amount, result.currency)
    assert all(c.amount.as_tuple().exponent == -digits for c in result.credits)
    if result.credits:
        assert sum(c.share for c in result.credits) == 1
        assert result.unattributed == 0
        unit = Fraction(1, 10**digits)
        for c in result.credits:
            # Within a unit of the share's money (plus the 1e-12 rounding of the share).
            gap = abs(Fraction(c.amount) - Fraction(c.share) * Fraction(result.amount))
            assert gap < unit + Fraction(result.amount) / 10**12
    else:
        assert result.unattributed == result.amount


@settings(max_examples=150, deadline=None)
@given(deals(), custom_models())
def test_credit_always_sums_exactly_to_the_amount_with_non_negative_shares(
    deal: tuple[DealFacts, list[Touch]], custom: ModelConfig
) -> None:
    facts, path = deal
    known = [t for t in (facts.created_at, facts.closed_at, *(t.at for t in path)) if t]
    as_of = max(known, default=T0)
    for model in (*PACKAGED, custom):
        result = attribute(facts, path, model, as_of=as_of)
        check_invariants(result)
        assert (result.model, result.model_version) == (model.name, model.version)


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """A lead's history in event-time order: creation, maybe a move to the lead stage,
    touches, and one or two deals in any state, with ties in time."""
    when = T0
    stage = draw(st.sampled_from(FUNNEL.initial_stages))
    events = [created(LEAD, when, stage, id="created")]
    kinds = draw(st.lists(st.sampled_from(["touch", "touch", "deal", "close"]), max_size=16))
    if stage == "subscriber" and draw(st.booleans()):
        kinds.insert(draw(st.integers(0, len(kinds))), "move")
    open_deals: list[str] = []
    for i, kind in enumerate(kinds):
        when += timedelta(hours=draw(st.sampled_from([0, 1, 30])))
        eid = f"e{i:02d}"
        if kind == "touch":
            campaign = draw(st.sampled_from(["a", "b", "c"]))
            events.append(touched(LEAD, when, campaign, id=eid))
        elif kind == "move":
            events.append(moved(LEAD, when, "subscriber", "lead", id=eid))
        elif kind == "deal" and len(open_deals) < 2:
            deal = f"deal-{i}"
            events.append(deal_created(LEAD, when, deal, str(draw(amounts)), id=eid))
            open_deals.append(deal)
        elif kind == "close" and open_deals:
            close = draw(st.sampled_from([deal_won, deal_lost]))
            events.append(close(LEAD, when, open_deals.pop(0), str(draw(amounts)), id=eid))
    return events


@FAST
@given(st.data())
def test_attribution_does_not_depend_on_the_order_events_arrive_in(data: st.DataObject) -> None:
    events = data.draw(histories())
    arrival = data.draw(st.permutations(events))
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=3))
    as_of = T0 + timedelta(hours=data.draw(st.integers(0, 16 * 30)))
    custom = data.draw(custom_models())
    for model in (*PACKAGED, custom):
        expected = attribute_lead(events, FUNNEL, model, as_of=as_of)
        assert attribute_lead([*arrival, *repeats], FUNNEL, model, as_of=as_of) == expected
        for result in expected:
            check_invariants(result)
