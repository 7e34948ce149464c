"""Attribution of one deal under one model: ``attribute``, and ``attribute_lead`` for all the
deals of a lead's history at once (what replay and reports call).

Time comes in as ``as_of``; nothing here reads a clock. An open deal is attributed as it
stands at ``as_of``, with its closing position ``pending`` on the latest touch. Its credit is
included in its ``Attribution`` (credits sum to the deal amount whatever the status) because
the pending touch really is where the model would put the closing weight today; but it is
provisional, so ``status`` says ``open``, each credit says whether it holds the pending
position, ``pending`` totals that credit, and ``rollup`` reports open deals as pipeline,
never as revenue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from events.attribution_config import ModelConfig
from events.envelope import Event
from events.funnel import Funnel
from projections.attribution.facts import DealFacts, DealStatus, Touch, touches_and_deals
from projections.attribution.milestones import (
    Position,
    conversion_time,
    counted_touches,
    milestones,
)
from projections.attribution.money import (
    exact_difference,
    exact_sum,
    round_shares,
    split_amount,
)
from projections.attribution.weights import weights


@dataclass(frozen=True, slots=True)
class Credit:
    """What one counted touch earned.

    ``positions``: the milestones the touch holds (``(middle,)`` for none), whatever the
    model. ``share``: its fraction of the deal under the model, rounded to 12 places so a
    deal's shares sum to exactly 1. ``amount``: its money, in the currency's minor unit,
    split from the exact share; may be zero (a middle touch under first touch).
    """

    touch: Touch
    positions: tuple[Position, ...]
    share: Decimal
    amount: Decimal

    @property
    def is_pending(self) -> bool:
        """True for the open deal's latest touch: its closing credit may still move."""
        return Position.PENDING in self.positions


@dataclass(frozen=True, slots=True)
class Attribution:
    """The credit for one deal under one model version, as known at ``as_of``.

    ``credits`` has one entry per counted touch, in touch order (zero-credit touches too, so an
    explanation shows the whole path). Their amounts plus ``unattributed`` equal ``amount``
    exactly. ``unattributed`` is the whole amount when no touch counts, else zero.
    """

    deal_id: str
    lead_id: str
    model: str
    model_version: int
    status: DealStatus
    amount: Decimal
    currency: str
    closed_at: datetime | None
    as_of: datetime
    credits: tuple[Credit, ...]
    unattributed: Decimal

    @property
    def model_label(self) -> str:
        """``name@vN``, as reports print it."""
        return f"{self.model}@v{self.model_version}"

    @property
    def pending(self) -> Decimal:
        """Credit of the touch holding the pending position: all of it, including what that
        touch earns for other milestones it also holds (zero unless the deal is open)."""
        return exact_sum(c.amount for c in self.credits if c.is_pending)


def attribute(
    deal: DealFacts, touches: Sequence[Touch], model: ModelConfig, *, as_of: datetime
) -> Attribution:
    """Credit ``deal`` to ``touches`` (any order, any touches of its lead) under ``model``.

    Only touches at or before the conversion count: the close for a won or lost deal,
    ``as_of`` for an open one. ``deal`` must be known as of ``as_of`` (build it with
    ``touches_and_deals(..., as_of=as_of)``): facts from after ``as_of`` raise ValueError,
    because the amount of a deal that closed later is not what was known at ``as_of``.
    """
    late = [
        name
        for name, when in (
            ("created_at", deal.created_at),
            ("won_at", deal.won_at),
            ("lost_at", deal.lost_at),
        )
        if when is not None and when > as_of
    ]
    if late:
        raise ValueError(
            f"deal {deal.deal_id}: {', '.join(late)} after as_of {as_of.isoformat()}; "
            "build the facts with touches_and_deals(..., as_of=as_of)"
        )
    counted = counted_touches(touches, conversion_time(deal, as_of))
    marks = milestones(deal, counted)
    weighed = weights(model, counted, marks)
    parts = zip(
        round_shares(weighed), split_amount(deal.amount, deal.currency, weighed), strict=True
    )
    credits = tuple(
        Credit(touch=touch, positions=marks.positions(index), share=share, amount=amount)
        for index, (touch, (share, amount)) in enumerate(zip(counted, parts, strict=True))
    )
    credited = exact_sum(credit.amount for credit in credits)
    return Attribution(
        deal_id=deal.deal_id,
        lead_id=deal.lead_id,
        model=model.name,
        model_version=model.version,
        status=deal.status,
        amount=deal.amount,
        currency=deal.currency,
        closed_at=deal.closed_at,
        as_of=as_of,
        credits=credits,
        # Zero (at the amount's scale) when any touch counts, the whole amount when none.
        unattributed=exact_difference(deal.amount, credited),
    )


def attribute_lead(
    events: Iterable[Event],
    funnel: Funnel,
    model: ModelConfig,
    *,
    as_of: datetime,
    lead_stage: str = "lead",
) -> tuple[Attribution, ...]:
    """Every deal of one lead's history (any order) as known at ``as_of``, under ``model``,
    in order of the deals' first appearance."""
    touches, deals = touches_and_deals(events, funnel, as_of=as_of, lead_stage=lead_stage)
    return tuple(attribute(deal, touches, model, as_of=as_of) for deal in deals)
