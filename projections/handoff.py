"""Handoff derivation: when the marketing -> sales handoff starts, who acted, and how.

A handoff starts each time a stay opens at ``funnel.handoff_stage``. While it is open, the
first ``lead.assigned`` marks the end of the system delay, and the first of these ends it:

- ``lead.contacted`` -> ``contacted``;
- leaving the handoff stage through ``lead.disqualified`` or ``lead.recycled``, or for the
  disqualified or recycled stage -> ``rejected``;
- leaving it for any other sales-owned stage -> ``accepted``;
- leaving it for a marketing-owned stage (nurture, or a re-entry of the handoff stage itself)
  -> ``withdrawn``: sales never acted, so there is no latency.

Only the first action counts: a handoff that is over never changes again in the same history.
"""

from __future__ import annotations

from events.catalog import LeadAssigned, LeadContacted, LeadDisqualified, LeadRecycled
from events.envelope import Event
from events.funnel import Funnel, Team
from projections.views import WITHDRAWN, Handoff


def advance(
    handoffs: tuple[Handoff, ...],
    event: Event,
    left: str | None,
    entered: str | None,
    funnel: Funnel,
) -> tuple[Handoff, ...]:
    """The handoffs after ``event``, which is the latest event of the history so far.

    ``left`` and ``entered`` describe the stage move the event made: both None when it moved
    nothing, ``left`` None when it opened the lead's first stay.
    """
    if handoffs and handoffs[-1].is_open:
        current = handoffs[-1]
        progressed = _progress(current, event, left, entered, funnel)
        if progressed is not current:
            handoffs = (*handoffs[:-1], progressed)
    if entered == funnel.handoff_stage:
        started = Handoff(
            started_at=event.time,
            start_event_id=event.id,
            assigned_at=None,
            action_at=None,
            action=None,
            action_event_id=None,
        )
        handoffs = (*handoffs, started)
    return handoffs


def _progress(
    handoff: Handoff, event: Event, left: str | None, entered: str | None, funnel: Funnel
) -> Handoff:
    # An open handoff means the lead is in the handoff stage, so any move leaves it.
    if left is not None and entered is not None:
        return _end(handoff, event, _leave_action(event, entered, funnel))
    if isinstance(event.data, LeadContacted):
        return _end(handoff, event, "contacted")
    if isinstance(event.data, LeadAssigned) and handoff.assigned_at is None:
        return Handoff(
            started_at=handoff.started_at,
            start_event_id=handoff.start_event_id,
            assigned_at=event.time,
            action_at=None,
            action=None,
            action_event_id=None,
        )
    return handoff


def _leave_action(event: Event, entered: str, funnel: Funnel) -> str:
    rejected_by_event = isinstance(event.data, LeadDisqualified | LeadRecycled)
    if rejected_by_event or entered in (funnel.disqualified_stage, funnel.recycled_stage):
        return "rejected"
    if funnel.team_of(entered) is Team.SALES:
        return "accepted"
    return WITHDRAWN


def _end(handoff: Handoff, event: Event, action: str) -> Handoff:
    # Built directly rather than with ``dataclasses.replace``: a hot path of the fold.
    return Handoff(
        started_at=handoff.started_at,
        start_event_id=handoff.start_event_id,
        assigned_at=handoff.assigned_at,
        action_at=event.time,
        action=action,
        action_event_id=event.id,
    )
