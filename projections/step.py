"""The step function: one event applied to a lead's view, in event-time order.

Both the incremental path (an event that sorts after everything seen) and the refold (a late
event) go through ``step``, so they cannot disagree.

Stage rules:

- ``lead.created`` opens the first stay at ``data.stage``. If a stage-moving event already
  sorts before it, the lead is already somewhere, and it only sets ``created_at``.
- ``lead.stage_changed``, ``lead.disqualified`` and ``lead.recycled`` close the open stay and
  open one at ``to_stage``, the disqualified stage or the recycled stage. A stay's
  ``from_stage`` is the stage of the stay before it, which may differ from the event's own
  ``from_stage``: upstream is the source of truth, and the event that explains the gap may
  still be on its way.
- Every stage-moving event opens a stay, even into the stage the lead is already in (that
  is a re-entry: a new visit, and a new handoff if it is the handoff stage). This keeps stays
  one-to-one with events, so more events only ever add stays, never merge them away, and
  ``changes.diff`` can key everything by event id.
- ``lead.assigned`` sets owner and team, ``lead.merged`` sets ``merged_into``; touchpoints,
  contacts and deals are counted but move nothing (contacts can end a handoff).
"""

from __future__ import annotations

from dataclasses import replace

from events.catalog import (
    EventData,
    LeadAssigned,
    LeadCreated,
    LeadDisqualified,
    LeadMerged,
    LeadRecycled,
    LeadStageChanged,
)
from events.envelope import Event
from events.funnel import Funnel
from projections.handoff import advance
from projections.views import LeadView, StageSpan


def step(view: LeadView, event: Event, funnel: Funnel) -> LeadView:
    """The view after ``event``, which must sort after every event already in ``view``.

    The event must already have passed ``check_against_funnel``: stage names are trusted.
    """
    data = event.data
    stages = view.stages
    left: str | None = None
    entered: str | None = None
    move = stage_move(data, funnel, has_stage=bool(stages))
    if move is not None:
        entered, reason = move
        left = view.current_stage
        stages = _open(stages, entered, reason, event, funnel)

    owner_id, team = view.owner_id, view.team
    if isinstance(data, LeadAssigned):
        owner_id, team = data.owner_id, data.team
    created_at = view.created_at
    if isinstance(data, LeadCreated) and created_at is None:
        created_at = event.time

    current = stages[-1] if stages else None
    return LeadView(
        lead_id=view.lead_id,
        created_at=created_at,
        current_stage=current.stage if current else None,
        entered_current_at=current.entered_at if current else None,
        highest_stage=_highest(view.highest_stage, entered, funnel),
        owner_id=owner_id,
        team=team,
        stages=stages,
        handoffs=advance(view.handoffs, event, left, entered, funnel),
        merged_into=data.survivor_id if isinstance(data, LeadMerged) else view.merged_into,
        first_event_at=view.first_event_at or event.time,
        last_event_at=event.time,
        event_count=view.event_count + 1,
    )


def stage_move(
    data: EventData, funnel: Funnel, *, has_stage: bool
) -> tuple[str, str | None] | None:
    """(target stage, reason) when the event moves the lead, else None. ``has_stage``: the
    lead already has a stage (then ``lead.created`` moves nothing). The SLA timers use it too,
    so they can never disagree with the stage history."""
    if isinstance(data, LeadStageChanged):
        return data.to_stage, data.reason
    if isinstance(data, LeadDisqualified):
        return funnel.disqualified_stage, data.reason_code
    if isinstance(data, LeadRecycled):
        return funnel.recycled_stage, data.reason
    if isinstance(data, LeadCreated) and not has_stage:
        return data.stage, None
    return None


def _open(
    stages: tuple[StageSpan, ...], stage: str, reason: str | None, event: Event, funnel: Funnel
) -> tuple[StageSpan, ...]:
    opened = StageSpan(
        stage=stage,
        team=funnel.team_of(stage).value,
        entered_at=event.time,
        exited_at=None,
        entered_via=event.id,
        from_stage=stages[-1].stage if stages else None,
        reason=reason,
    )
    if not stages:
        return (opened,)
    return (*stages[:-1], replace(stages[-1], exited_at=event.time), opened)


def _highest(highest: str | None, entered: str | None, funnel: Funnel) -> str | None:
    # Side stages rank -1, so they never replace a main-path stage nor become the first value.
    if entered is None or funnel.rank(entered) < 0:
        return highest
    if highest is None or funnel.rank(entered) > funnel.rank(highest):
        return entered
    return highest
