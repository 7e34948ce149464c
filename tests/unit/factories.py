"""Tiny event builders for unit tests, with deterministic ids.

An id is derived from the lead, the kind, the time and the stages, so building the same
event twice gives the same id (a duplicate delivery) and tests read like the history they
describe: ``created(L, at(0))``, ``moved(L, at(5), "lead", "mql")``, ``contacted(L, at(30))``.
Pass ``id=`` to force a specific id.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from events.catalog import (
    DealCreated,
    DealLost,
    DealWon,
    EventData,
    LeadAssigned,
    LeadContacted,
    LeadCreated,
    LeadDisqualified,
    LeadMerged,
    LeadRecycled,
    LeadStageChanged,
    TouchpointRecorded,
)
from events.envelope import Event, make_event
from events.funnel import Funnel, load_funnel
from projections.lead import Applied, LeadState, Rejected, apply, empty

LEAD = "lead-1"
#: The packaged default funnel (DESIGN.md section 1).
FUNNEL = load_funnel()
SOURCE = "urn:leadledger:test"
#: A Monday morning, so business-hours arithmetic in later tests stays readable.
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

Activity = Literal["call", "email", "meeting"]


def at(minutes: float = 0, *, hours: float = 0, days: float = 0) -> datetime:
    """A time relative to ``T0``."""
    return T0 + timedelta(minutes=minutes, hours=hours, days=days)


def _event(lead: str, when: datetime, data: EventData, tag: str, id: str | None) -> Event:
    event_id = id or f"{lead}/{tag}@{when:%Y%m%dT%H%M%S}"
    return make_event(data, id=event_id, subject=lead, source=SOURCE, time=when)


def created(lead: str, when: datetime, stage: str = "lead", *, id: str | None = None) -> Event:
    return _event(
        lead, when, LeadCreated(stage=stage, email="a@example.com"), f"created:{stage}", id
    )


def moved(
    lead: str,
    when: datetime,
    frm: str,
    to: str,
    *,
    reason: str | None = None,
    id: str | None = None,
) -> Event:
    data = LeadStageChanged(from_stage=frm, to_stage=to, reason=reason)
    return _event(lead, when, data, f"moved:{frm}>{to}", id)


def assigned(
    lead: str,
    when: datetime,
    owner: str = "rep-1",
    team: str = "sales",
    *,
    id: str | None = None,
) -> Event:
    return _event(lead, when, LeadAssigned(owner_id=owner, team=team), f"assigned:{owner}", id)


def contacted(
    lead: str,
    when: datetime,
    rep: str = "rep-1",
    activity: Activity = "call",
    *,
    id: str | None = None,
) -> Event:
    data = LeadContacted(activity=activity, rep_id=rep)
    return _event(lead, when, data, f"contacted:{activity}", id)


def disqualified(
    lead: str,
    when: datetime,
    frm: str,
    reason_code: str = "poor_fit",
    *,
    id: str | None = None,
) -> Event:
    data = LeadDisqualified(from_stage=frm, reason_code=reason_code)
    return _event(lead, when, data, f"disqualified:{frm}", id)


def recycled(
    lead: str,
    when: datetime,
    frm: str,
    reason: str = "not ready",
    *,
    id: str | None = None,
) -> Event:
    return _event(lead, when, LeadRecycled(from_stage=frm, reason=reason), f"recycled:{frm}", id)


def merged(lead: str, when: datetime, into: str, *, id: str | None = None) -> Event:
    return _event(lead, when, LeadMerged(survivor_id=into), f"merged:{into}", id)


def touched(
    lead: str,
    when: datetime,
    campaign: str = "cmp-1",
    channel: str = "email",
    *,
    id: str | None = None,
) -> Event:
    data = TouchpointRecorded(campaign_id=campaign, channel=channel, touch_type="form_fill")
    return _event(lead, when, data, f"touched:{campaign}", id)


def _deal(
    kind: type[DealCreated] | type[DealWon] | type[DealLost],
    lead: str,
    when: datetime,
    deal: str,
    amount: str,
    id: str | None,
) -> Event:
    extra = {"reason": "budget"} if kind is DealLost else {}
    data = kind(deal_id=deal, amount=Decimal(amount), currency="EUR", **extra)
    return _event(lead, when, data, f"{data.TYPE}:{deal}", id)


def deal_created(
    lead: str,
    when: datetime,
    deal: str = "deal-1",
    amount: str = "1000.00",
    *,
    id: str | None = None,
) -> Event:
    return _deal(DealCreated, lead, when, deal, amount, id)


def deal_won(
    lead: str,
    when: datetime,
    deal: str = "deal-1",
    amount: str = "1000.00",
    *,
    id: str | None = None,
) -> Event:
    return _deal(DealWon, lead, when, deal, amount, id)


def deal_lost(
    lead: str,
    when: datetime,
    deal: str = "deal-1",
    amount: str = "1000.00",
    *,
    id: str | None = None,
) -> Event:
    return _deal(DealLost, lead, when, deal, amount, id)


def one_of_each(lead: str = LEAD) -> tuple[Event, ...]:
    """One event of every catalog type, in a plausible order."""
    return (
        touched(lead, at(0)),
        created(lead, at(1)),
        moved(lead, at(2), "lead", "mql", reason="score >= 80"),
        assigned(lead, at(3)),
        contacted(lead, at(4)),
        disqualified(lead, at(5), "mql", "no_budget"),
        recycled(lead, at(6), "disqualified"),
        deal_created(lead, at(7)),
        deal_won(lead, at(8), amount="1234.50"),
        deal_lost(lead, at(9), deal="deal-2"),
        merged(lead, at(10), "lead-2"),
    )


def apply_all(
    events: Iterable[Event], state: LeadState | None = None, funnel: Funnel = FUNNEL
) -> LeadState:
    """Apply events in the given order, asserting each one is accepted."""
    events = list(events)
    state = state or empty(events[0].subject)
    for event in events:
        result = apply(state, event, funnel)
        assert isinstance(result, Applied), f"{event.id} rejected: {result}"
        state = result.state
    return state


def applied(state: LeadState, event: Event) -> Applied:
    """Apply one event, asserting it is accepted."""
    result = apply(state, event, FUNNEL)
    assert isinstance(result, Applied), result
    return result


def rejected(state: LeadState, event: Event) -> Rejected:
    """Apply one event, asserting it is rejected."""
    result = apply(state, event, FUNNEL)
    assert isinstance(result, Rejected), result
    return result
