"""What funnel flow analytics needs from one lead: its stays, its keys and its won deals.

``lead_flow`` folds the lead's accepted events with the lead fold (``projections.lead``), cut
at ``as_of``: the report knows only events with a time at or before it. Rules:

- **Stays** are the fold's ``StageSpan`` values: a stay runs from the event that moved the
  lead in to the event that moved it out, ``[entered_at, exited_at)``; a stay still open at
  ``as_of`` has ``exited_at`` None.
- **A merge ends the lead.** After ``lead.merged`` the duplicate is no longer in the funnel:
  the stay open at the merge is closed at the merge time (an outflow), later stays are
  dropped, and its current stage is ``MERGED``.
- **Keys for breakdowns**, each fixed by the lead's origin so a lead never moves between
  rows as it ages: ``campaign`` and ``channel`` of its *first touch* (the earliest
  ``touchpoint.recorded`` in event order), ``source`` its ``lead.created`` ``lead_source``,
  ``team`` the team of its *first assignment* (the routing). ``NONE`` when missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

from events.catalog import LeadAssigned, LeadCreated, LeadMerged, TouchpointRecorded
from events.envelope import Event
from events.funnel import Funnel
from projections.attribution.facts import touches_and_deals
from projections.lead import fold
from projections.views import StageSpan

Dimension = Literal["campaign", "channel", "source", "team"]
DIMENSIONS: Final[tuple[Dimension, ...]] = ("campaign", "channel", "source", "team")
#: The key of a lead that has no touch, no source or no assignment.
NONE: Final = "(none)"
#: The current stage of a lead merged into another one.
MERGED: Final = "(merged)"


@dataclass(frozen=True, slots=True)
class Stay:
    """One stay of a lead in a stage: ``[entered_at, exited_at)``; open when exited is None."""

    stage: str
    entered_at: datetime
    exited_at: datetime | None

    @property
    def seconds(self) -> float | None:
        """Length of a closed stay; None while open."""
        if self.exited_at is None:
            return None
        return (self.exited_at - self.entered_at).total_seconds()


@dataclass(frozen=True, slots=True)
class WonDeal:
    """A deal the lead won, as known at ``as_of``."""

    deal_id: str
    amount: Decimal
    currency: str
    won_at: datetime


@dataclass(frozen=True, slots=True)
class LeadFlow:
    """One lead as the funnel report sees it at ``as_of``."""

    lead_id: str
    created_at: datetime | None
    current_stage: str | None
    stays: tuple[Stay, ...]
    keys: Mapping[Dimension, str]
    won: tuple[WonDeal, ...] = ()
    #: (time, owner) of every ``lead.assigned``: who the active sales reps were.
    assignments: tuple[tuple[datetime, str], ...] = ()


def lead_flow(lead_id: str, events: Iterable[Event], funnel: Funnel, as_of: datetime) -> LeadFlow:
    """The lead's stays, keys and won deals from its accepted events (any order), as known
    at ``as_of`` (see the module docstring)."""
    known = [e for e in events if e.time <= as_of]
    state = fold(lead_id, known, funnel)
    merged_at = next((e.time for e in state.events if isinstance(e.data, LeadMerged)), None)
    stays = tuple(_stay(s) for s in state.view.stages)
    current = state.view.current_stage
    if merged_at is not None:
        stays = tuple(_clip(s, merged_at) for s in stays if s.entered_at < merged_at)
        current = MERGED
    _, deals = touches_and_deals(state.events, funnel, as_of=as_of)
    won = tuple(
        WonDeal(d.deal_id, d.amount, d.currency, d.won_at) for d in deals if d.won_at is not None
    )
    created_at = state.view.created_at or (stays[0].entered_at if stays else None)
    assignments = tuple(
        (e.time, e.data.owner_id) for e in state.events if isinstance(e.data, LeadAssigned)
    )
    return LeadFlow(lead_id, created_at, current, stays, _keys(state.events), won, assignments)


def _stay(span: StageSpan) -> Stay:
    return Stay(span.stage, span.entered_at, span.exited_at)


def _clip(stay: Stay, merged_at: datetime) -> Stay:
    if stay.exited_at is None or stay.exited_at > merged_at:
        return replace(stay, exited_at=merged_at)
    return stay


def _keys(ordered: Iterable[Event]) -> dict[Dimension, str]:
    keys: dict[Dimension, str] = {}
    for event in ordered:
        data = event.data
        if isinstance(data, TouchpointRecorded) and "campaign" not in keys:
            keys["campaign"], keys["channel"] = data.campaign_id, data.channel
        elif isinstance(data, LeadCreated) and "source" not in keys:
            keys["source"] = data.lead_source or NONE
        elif isinstance(data, LeadAssigned) and "team" not in keys:
            keys["team"] = data.team
    return {d: keys.get(d, NONE) for d in DIMENSIONS}
