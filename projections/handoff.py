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

from datetime import datetime

from events.funnel import FunnelLookups
from events.kinds import ASSIGNED, CONTACTED, DISQUALIFIED, RECYCLED
from projections.fast_init import fast_new
from projections.views import WITHDRAWN, Handoff

_REJECTING = DISQUALIFIED | RECYCLED
#: ``Handoff(...)``, built faster (see ``projections.fast_init``).
_new_handoff = fast_new(Handoff)


def advance(
    handoffs: tuple[Handoff, ...],
    time: datetime,
    event_id: str,
    kind: int,
    left: str | None,
    entered: str | None,
    lookups: FunnelLookups,
) -> tuple[Handoff, ...]:
    """The handoffs after the event ``event_id`` at ``time``, the latest event of the history
    so far (given by its time and id: the fold has read them off the event already).

    ``kind`` is ``events.kinds.KINDS[type(event.data)]`` and ``lookups`` the funnel's
    ``lookups``: the fold already holds both. ``left`` and ``entered`` describe the stage
    move the event made: both None when it moved nothing, ``left`` None when it opened the
    lead's first stay.
    """
    if handoffs and handoffs[-1].action is None:
        current = handoffs[-1]
        progressed = _progress(current, time, event_id, kind, left, entered, lookups)
        if progressed is not current:
            handoffs = (*handoffs[:-1], progressed)
    if entered == lookups.handoff_stage:
        # Positional, in field order (started_at, start_event_id, assigned_at, action_at,
        # action, action_event_id): a hot path of the fold.
        handoffs = (*handoffs, _new_handoff(time, event_id, None, None, None, None))
    return handoffs


def _progress(
    handoff: Handoff,
    time: datetime,
    event_id: str,
    kind: int,
    left: str | None,
    entered: str | None,
    lookups: FunnelLookups,
) -> Handoff:
    # An open handoff means the lead is in the handoff stage, so any move leaves it.
    if left is not None and entered is not None:
        return _end(handoff, time, event_id, _leave_action(kind, entered, lookups))
    if kind & CONTACTED:
        return _end(handoff, time, event_id, "contacted")
    if kind & ASSIGNED and handoff.assigned_at is None:
        started_at, start_event_id = handoff.started_at, handoff.start_event_id
        return _new_handoff(started_at, start_event_id, time, None, None, None)
    return handoff


def _leave_action(kind: int, entered: str, lookups: FunnelLookups) -> str:
    rejected_by_event = kind & _REJECTING
    if rejected_by_event or entered in (lookups.disqualified_stage, lookups.recycled_stage):
        return "rejected"
    if entered in lookups.sales_stages:
        return "accepted"
    return WITHDRAWN


def _end(handoff: Handoff, time: datetime, event_id: str, action: str) -> Handoff:
    # Built directly rather than with ``dataclasses.replace``: a hot path of the fold.
    started_at, start_event_id = handoff.started_at, handoff.start_event_id
    return _new_handoff(started_at, start_event_id, handoff.assigned_at, time, action, event_id)
