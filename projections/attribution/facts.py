"""What attribution needs from a lead's history: its touches and the facts of its deals.

``touches_and_deals`` reads a lead's events in ``projections.lead.order_key`` order, so the
same events in any arrival order give equal results. Rules for messy histories:

- Events are deduplicated by id (the first in event order wins).
- ``as_of`` cuts the history: events after it are unknown, which is what a replay
  ``--as-of`` needs ("what did we believe on 1 October?").
- A deal's outcome is its earliest close (``deal.won`` or ``deal.lost``); at the same
  instant a win beats a loss. Its amount and currency come from that close, or, while open,
  from its latest ``deal.created``. A deal known only from a close has no creation time.
- ``lead_stage_at`` is when the lead first stood on the funnel's main path at or beyond the
  lead stage (``lead.created`` into it, or a stage change into it; side stages such as
  nurture never count), else when it was created; None when neither is in the history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from events.catalog import (
    DealCreated,
    DealLost,
    DealWon,
    LeadCreated,
    LeadStageChanged,
    TouchpointRecorded,
)
from events.envelope import Event
from events.funnel import Funnel
from projections.lead import order_key

DealStatus = Literal["won", "open", "lost"]


@dataclass(frozen=True, slots=True)
class Touch:
    """One marketing touch (a ``touchpoint.recorded`` event) of a lead."""

    event_id: str
    at: datetime
    campaign_id: str
    channel: str
    touch_type: str

    @property
    def order(self) -> tuple[datetime, str]:
        """Event time, then id: the order of ``projections.lead.order_key`` among touches."""
        return (self.at, self.event_id)


@dataclass(frozen=True, slots=True)
class DealFacts:
    """One deal of a lead as known at some moment: amount, currency and milestone times.

    At most one of ``won_at`` and ``lost_at`` is set: the outcome is decided before this is
    built. ``lead_stage_at`` is the lead's lead-creation milestone time (see module doc).
    """

    deal_id: str
    lead_id: str
    amount: Decimal
    currency: str
    created_at: datetime | None
    won_at: datetime | None
    lost_at: datetime | None
    lead_stage_at: datetime | None

    def __post_init__(self) -> None:
        if not (self.amount.is_finite() and self.amount >= 0):
            raise ValueError(f"deal {self.deal_id}: amount must be finite and >= 0")
        if self.won_at is not None and self.lost_at is not None:
            raise ValueError(f"deal {self.deal_id}: cannot be both won and lost")

    @property
    def status(self) -> DealStatus:
        """``won``, ``lost``, or ``open`` while neither is known."""
        if self.won_at is not None:
            return "won"
        return "lost" if self.lost_at is not None else "open"

    @property
    def closed_at(self) -> datetime | None:
        """When the deal was won or lost; None while open."""
        return self.won_at or self.lost_at


_DealEvent = DealCreated | DealWon | DealLost


def touches_and_deals(
    events: Iterable[Event],
    funnel: Funnel,
    *,
    as_of: datetime | None = None,
    lead_stage: str = "lead",
) -> tuple[tuple[Touch, ...], tuple[DealFacts, ...]]:
    """A lead's touches (in touch order) and deals (in order of first appearance), from its
    events in any order. Pass the accepted events (``LeadState.events``) of one lead."""
    if lead_stage not in funnel.main_path:
        raise ValueError(f"lead_stage {lead_stage!r} is not on the funnel's main path")
    ordered = _ordered(events, as_of)
    touches = tuple(
        Touch(e.id, e.time, e.data.campaign_id, e.data.channel, e.data.touch_type)
        for e in ordered
        if isinstance(e.data, TouchpointRecorded)
    )
    stage_at = _lead_stage_at(ordered, funnel, funnel.rank(lead_stage))
    by_deal: dict[str, list[Event]] = {}
    for event in ordered:
        if isinstance(event.data, _DealEvent):
            by_deal.setdefault(event.data.deal_id, []).append(event)
    deals = tuple(_deal(deal_id, history, stage_at) for deal_id, history in by_deal.items())
    return touches, deals


def _ordered(events: Iterable[Event], as_of: datetime | None) -> list[Event]:
    ordered = sorted(
        (e for e in events if as_of is None or e.time <= as_of),
        key=order_key,
    )
    seen: set[str] = set()
    unique = []
    for event in ordered:
        if event.id not in seen:
            seen.add(event.id)
            unique.append(event)
    return unique


def _lead_stage_at(ordered: list[Event], funnel: Funnel, rank: int) -> datetime | None:
    created_at: datetime | None = None
    for event in ordered:
        data = event.data
        if isinstance(data, LeadCreated):
            created_at = created_at or event.time
            stage: str | None = data.stage
        elif isinstance(data, LeadStageChanged):
            stage = data.to_stage
        else:
            continue
        # rank() is -1 for side stages, so nurture or recycled never reach the milestone.
        if stage in funnel.stages and funnel.rank(stage) >= rank:
            return event.time
    return created_at


def _deal(deal_id: str, history: list[Event], lead_stage_at: datetime | None) -> DealFacts:
    created = [e for e in history if isinstance(e.data, DealCreated)]
    # Earliest close decides; at one instant a win (rank 0) beats a loss, whatever the ids.
    closes = sorted(
        (e for e in history if isinstance(e.data, DealWon | DealLost)),
        key=lambda e: (e.time, 0 if isinstance(e.data, DealWon) else 1, e.id),
    )
    decisive = closes[0] if closes else created[-1]
    data = decisive.data
    assert isinstance(data, _DealEvent)  # by construction of ``history``
    return DealFacts(
        deal_id=deal_id,
        lead_id=decisive.subject,
        amount=data.amount,
        currency=data.currency,
        created_at=created[0].time if created else None,
        won_at=decisive.time if isinstance(data, DealWon) else None,
        lost_at=decisive.time if isinstance(data, DealLost) else None,
        lead_stage_at=lead_stage_at,
    )
