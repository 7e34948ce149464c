"""The lead fold's step and funnel check written plainly, with ``isinstance`` and the
``Funnel`` methods: the reference that the production code (``projections.step``,
``projections.handoff``, ``events.validation``), which dispatches on the exact payload class
and reads the funnel's precomputed lookups for speed, is checked against in
test_fold_fast_paths.py. Kept apart so that the two are written independently; they share
only the value classes."""

from __future__ import annotations

from events.catalog import (
    EventData,
    LeadAssigned,
    LeadContacted,
    LeadCreated,
    LeadDisqualified,
    LeadMerged,
    LeadRecycled,
    LeadStageChanged,
)
from events.envelope import Event
from events.errors import RejectReason
from events.funnel import Funnel, Team
from projections.views import WITHDRAWN, Handoff, LeadView, StageSpan


def reference_step(view: LeadView, event: Event, funnel: Funnel) -> LeadView:
    """``projections.step.step``, plainly."""
    data = event.data
    stages = view.stages
    left = entered = None
    current, entered_at = view.current_stage, view.entered_current_at
    move = reference_stage_move(data, funnel, has_stage=bool(stages))
    if move is not None:
        entered, reason = move
        left = current
        opened = StageSpan(
            stage=entered,
            team=funnel.team_of(entered).value,
            entered_at=event.time,
            exited_at=None,
            entered_via=event.id,
            from_stage=stages[-1].stage if stages else None,
            reason=reason,
        )
        if stages:
            last = stages[-1]
            closed = StageSpan(
                stage=last.stage,
                team=last.team,
                entered_at=last.entered_at,
                exited_at=event.time,
                entered_via=last.entered_via,
                from_stage=last.from_stage,
                reason=last.reason,
            )
            stages = (*stages[:-1], closed, opened)
        else:
            stages = (opened,)
        current, entered_at = entered, event.time
    highest = view.highest_stage
    if (
        entered is not None
        and funnel.rank(entered) >= 0
        and (highest is None or funnel.rank(entered) > funnel.rank(highest))
    ):
        highest = entered
    owner, team = view.owner_id, view.team
    if isinstance(data, LeadAssigned):
        owner, team = data.owner_id, data.team
    created_at = view.created_at
    if created_at is None and isinstance(data, LeadCreated):
        created_at = event.time
    return LeadView(
        lead_id=view.lead_id,
        created_at=created_at,
        current_stage=current,
        entered_current_at=entered_at,
        highest_stage=highest,
        owner_id=owner,
        team=team,
        stages=stages,
        handoffs=_handoffs(view.handoffs, event, left, entered, funnel),
        merged_into=data.survivor_id if isinstance(data, LeadMerged) else view.merged_into,
        first_event_at=view.first_event_at or event.time,
        last_event_at=event.time,
        event_count=view.event_count + 1,
    )


def reference_stage_move(
    data: EventData, funnel: Funnel, *, has_stage: bool
) -> tuple[str, str | None] | None:
    """``projections.step.stage_move``, plainly."""
    if isinstance(data, LeadStageChanged):
        return data.to_stage, data.reason
    if isinstance(data, LeadDisqualified):
        return funnel.disqualified_stage, data.reason_code
    if isinstance(data, LeadRecycled):
        return funnel.recycled_stage, data.reason
    if isinstance(data, LeadCreated) and not has_stage:
        return data.stage, None
    return None


def _handoffs(
    handoffs: tuple[Handoff, ...],
    event: Event,
    left: str | None,
    entered: str | None,
    funnel: Funnel,
) -> tuple[Handoff, ...]:
    if handoffs and handoffs[-1].is_open:
        current = handoffs[-1]
        action: str | None = None
        assigned_at = current.assigned_at
        if left is not None and entered is not None:
            if isinstance(event.data, LeadDisqualified | LeadRecycled) or entered in (
                funnel.disqualified_stage,
                funnel.recycled_stage,
            ):
                action = "rejected"
            elif funnel.team_of(entered) is Team.SALES:
                action = "accepted"
            else:
                action = WITHDRAWN
        elif isinstance(event.data, LeadContacted):
            action = "contacted"
        elif isinstance(event.data, LeadAssigned) and assigned_at is None:
            assigned_at = event.time
        if action is not None:
            current = Handoff(
                started_at=current.started_at,
                start_event_id=current.start_event_id,
                assigned_at=assigned_at,
                action_at=event.time,
                action=action,
                action_event_id=event.id,
            )
        elif assigned_at is not current.assigned_at:
            current = Handoff(
                started_at=current.started_at,
                start_event_id=current.start_event_id,
                assigned_at=assigned_at,
                action_at=None,
                action=None,
                action_event_id=None,
            )
        handoffs = (*handoffs[:-1], current)
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


def reference_check(event: Event, funnel: Funnel) -> RejectReason | None:
    """The reason ``events.validation.check_against_funnel`` gives, plainly (the reason only:
    the texts are the production code's business)."""
    data = event.data
    if isinstance(data, LeadCreated):
        if data.stage not in funnel.stages:
            return RejectReason.UNKNOWN_STAGE
        if data.stage not in funnel.initial_stages:
            return RejectReason.DISALLOWED_TRANSITION
        return None
    if isinstance(data, LeadStageChanged):
        if data.to_stage in (funnel.disqualified_stage, funnel.recycled_stage):
            return RejectReason.DISALLOWED_TRANSITION
        return _reference_transition(data.from_stage, data.to_stage, funnel)
    if isinstance(data, LeadRecycled):
        return _reference_transition(data.from_stage, funnel.recycled_stage, funnel)
    if isinstance(data, LeadDisqualified):
        if data.reason_code not in funnel.disqualification_reasons:
            return RejectReason.UNKNOWN_REASON_CODE
        return _reference_transition(data.from_stage, funnel.disqualified_stage, funnel)
    return None


def _reference_transition(frm: str, to: str, funnel: Funnel) -> RejectReason | None:
    if frm not in funnel.stages or to not in funnel.stages:
        return RejectReason.UNKNOWN_STAGE
    return None if funnel.allows(frm, to) else RejectReason.DISALLOWED_TRANSITION
