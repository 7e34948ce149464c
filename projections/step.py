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
    time = event.time
    stages = view.stages
    left: str | None = None
    entered: str | None = None
    current_stage, entered_current_at = view.current_stage, view.entered_current_at
    move = stage_move(data, funnel, has_stage=bool(stages))
    if move is not None:
        entered, reason = move
        left = current_stage
        stages = _open(stages, entered, reason, event, funnel)
        # The stay just opened is the current one.
        current_stage, entered_current_at = entered, time

    owner_id, team = view.owner_id, view.team
    if isinstance(data, LeadAssigned):
        owner_id, team = data.owner_id, data.team
    created_at = view.created_at
    if created_at is None and isinstance(data, LeadCreated):
        created_at = time

    return LeadView(
        lead_id=view.lead_id,
        created_at=created_at,
        current_stage=current_stage,
        entered_current_at=entered_current_at,
        highest_stage=_highest(view.highest_stage, entered, funnel),
        owner_id=owner_id,
        team=team,
        stages=stages,
        handoffs=advance(view.handoffs, event, left, entered, funnel),
        merged_into=data.survivor_id if isinstance(data, LeadMerged) else view.merged_into,
        first_event_at=view.first_event_at or time,
        last_event_at=time,
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
    last = stages[-1]
    # Built directly: ``dataclasses.replace`` costs several times more, once per move.
    closed = StageSpan(
        stage=last.stage,
        team=last.team,
        entered_at=last.entered_at,
        exited_at=event.time,
        entered_via=last.entered_via,
        from_stage=last.from_stage,
        reason=last.reason,
    )
    return (*stages[:-1], closed, opened)


def _highest(highest: str | None, entered: str | None, funnel: Funnel) -> str | None:
    # Side stages rank -1, so they never replace a main-path stage nor become the first value.
    if entered is None:
        return highest
    rank = funnel.rank(entered)
    if rank < 0:
        return highest
    if highest is None or rank > funnel.rank(highest):
        return entered
    return highest
