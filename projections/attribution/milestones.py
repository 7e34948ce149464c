"""Milestone positions: which of a deal's counted touches is first, lead creation,
opportunity creation and closing.

Touches count when they are at or before the conversion: the won or lost time of a closed
deal, ``as_of`` for an open one. Among them, in touch order (time, then event id):

- ``first``: the first touch.
- ``lead_creation``: the last touch at or before ``lead_stage_at``.
- ``opportunity_creation``: the last touch at or before the deal was created.
- the closing position, on the last counted touch: ``closed_won`` for a won deal,
  ``pending`` for an open one (it moves to each newer touch until the deal closes, as in
  Marketo Measure), ``closed_lost`` for a lost one.
- ``middle``: the label of a touch holding none of the above.

Milestones compare event times inclusively: a touch at the very instant of ``deal.created``
counts as before it, because touches and deals at one instant have no meaningful order (their
``order_key`` tie-break is only the id). A milestone with no touch at or before its time
(the lead was created before any touch, the deal has no ``deal.created``) is missing; several
milestones may fall on one touch. Labels are facts about the touch and do not depend on the
model; how a model pays them is ``projections.attribution.weights``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from projections.attribution.facts import DealFacts, DealStatus, Touch


class Position(StrEnum):
    """A touch's position in a deal's journey, in milestone order."""

    FIRST = "first"
    LEAD_CREATION = "lead_creation"
    OPPORTUNITY_CREATION = "opportunity_creation"
    CLOSED_WON = "closed_won"
    PENDING = "pending"
    CLOSED_LOST = "closed_lost"
    MIDDLE = "middle"


#: The label of the closing position, by deal status.
CLOSING: dict[DealStatus, Position] = {
    "won": Position.CLOSED_WON,
    "open": Position.PENDING,
    "lost": Position.CLOSED_LOST,
}


@dataclass(frozen=True, slots=True)
class Milestones:
    """Touch indexes (into the counted touches) of each milestone; None when missing."""

    first: int | None
    lead_creation: int | None
    opportunity_creation: int | None
    closing: int | None
    closing_label: Position

    def positions(self, index: int) -> tuple[Position, ...]:
        """The labels of the touch at ``index``, in milestone order; ``(MIDDLE,)`` if none."""
        held = tuple(
            position
            for position, at in (
                (Position.FIRST, self.first),
                (Position.LEAD_CREATION, self.lead_creation),
                (Position.OPPORTUNITY_CREATION, self.opportunity_creation),
                (self.closing_label, self.closing),
            )
            if at == index
        )
        return held or (Position.MIDDLE,)


def conversion_time(deal: DealFacts, as_of: datetime) -> datetime:
    """The cut-off for counting touches: the close, or ``as_of`` while the deal is open."""
    return deal.closed_at or as_of


def counted_touches(touches: Sequence[Touch], cutoff: datetime) -> tuple[Touch, ...]:
    """The touches at or before ``cutoff`` in touch order, deduplicated by event id."""
    kept: dict[str, Touch] = {}
    # Sorting on every field first makes "the earliest copy of an id wins" independent of
    # the input order, even for copies that differ in more than their time.
    for touch in sorted(touches, key=_every_field):
        kept.setdefault(touch.event_id, touch)
    return tuple(t for t in sorted(kept.values(), key=lambda t: t.order) if t.at <= cutoff)


def _every_field(touch: Touch) -> tuple[datetime, str, str, str, str]:
    return (touch.at, touch.event_id, touch.campaign_id, touch.channel, touch.touch_type)


def milestones(deal: DealFacts, counted: Sequence[Touch]) -> Milestones:
    """Where each milestone falls among ``counted`` (touches in touch order, all at or before
    the conversion)."""
    last = len(counted) - 1 if counted else None
    return Milestones(
        first=0 if counted else None,
        lead_creation=_last_at_or_before(counted, deal.lead_stage_at),
        opportunity_creation=_last_at_or_before(counted, deal.created_at),
        closing=last,
        closing_label=CLOSING[deal.status],
    )


def _last_at_or_before(counted: Sequence[Touch], when: datetime | None) -> int | None:
    if when is None:
        return None
    found = None
    for index, touch in enumerate(counted):
        if touch.at > when:
            break
        found = index
    return found
