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

from datetime import datetime

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
from events.funnel import Funnel, FunnelLookups
from events.kinds import (
    ASSIGNED,
    CREATED,
    DISQUALIFIED,
    KINDS,
    MERGED,
    MOVES,
    RECYCLED,
    STAGE_CHANGED,
)
from projections.fast_init import fast_new
from projections.handoff import advance
from projections.views import LeadView, StageSpan

#: The payloads ``_move`` has to look at; everything else moves nothing.
_MAY_MOVE = MOVES | CREATED
#: ``LeadView(...)`` and ``StageSpan(...)``, built faster (see ``projections.fast_init``).
_new_view = fast_new(LeadView)
_new_span = fast_new(StageSpan)


def step(view: LeadView, event: Event, funnel: Funnel) -> LeadView:
    """The view after ``event``, which must sort after every event already in ``view``.

    The event must already have passed ``check_against_funnel``: stage names are trusted.
    """
    # A pydantic model's attribute reads go through its ``__getattr__`` hook (about 0.1 µs
    # each, and the interpreter cannot specialise them), so the fields are read from the
    # instance dict, where pydantic keeps them, once.
    fields = event.__dict__
    data = fields["data"]
    return step_fields(view, data, KINDS[type(data)], fields["time"], fields["id"], funnel)


def step_fields(
    view: LeadView, data: EventData, kind: int, time: datetime, event_id: str, funnel: Funnel
) -> LeadView:
    """``step`` for an event given by its payload, the payload's ``KINDS`` flags, its time and
    its id: what ``apply`` has already read off the event (hot path). The one implementation
    of ``step``, so the incremental path and the refold cannot disagree."""
    # Hot path (once per accepted event): the payload's class is looked up once
    # (``events.kinds``) instead of asked about by several ``isinstance`` calls, and the
    # funnel's facts come from its precomputed lookups.
    lookups = funnel.lookups
    stages = view.stages
    handoffs = view.handoffs
    current_stage, entered_current_at = view.current_stage, view.entered_current_at
    highest_stage = view.highest_stage
    # ``_move`` inlined for ``lead.stage_changed``, the commonest move (hot path): no call
    # and no (stage, reason) pair per event. The flag says the isinstance is true.
    entered: str | None
    if kind & STAGE_CHANGED and isinstance(data, LeadStageChanged):
        entered, reason = data.to_stage, data.reason
    elif kind & _MAY_MOVE and (move := _move(data, kind, lookups, bool(stages))) is not None:
        entered, reason = move
    else:
        entered = None
    if entered is not None:
        left = current_stage
        stages = _open(stages, entered, reason, time, event_id, lookups)
        # The stay just opened is the current one.
        current_stage, entered_current_at = entered, time
        highest_stage = _highest(highest_stage, entered, lookups)
        # ``advance`` changes nothing unless a handoff is open or one starts here; most
        # moves neither end nor start one, so they skip the call.
        if (handoffs and handoffs[-1].action is None) or entered == lookups.handoff_stage:
            handoffs = advance(handoffs, time, event_id, kind, left, entered, lookups)
    elif handoffs and handoffs[-1].action is None:
        # Without a move only an open handoff can change (see ``handoff.advance``).
        handoffs = advance(handoffs, time, event_id, kind, None, None, lookups)

    owner_id, team = view.owner_id, view.team
    # The flag says the isinstance is true, so it is the cheap exact-class check; it is
    # there for the type checker (and stays right for subclasses).
    if kind & ASSIGNED and isinstance(data, LeadAssigned):
        owner_id, team = data.owner_id, data.team
    created_at = view.created_at
    if created_at is None and kind & CREATED:
        created_at = time
    merged_into = view.merged_into
    if kind & MERGED and isinstance(data, LeadMerged):
        merged_into = data.survivor_id

    # Positional, in field order: a 13-field keyword call costs noticeably more per event.
    return _new_view(
        view.lead_id,
        created_at,
        current_stage,
        entered_current_at,
        highest_stage,
        owner_id,
        team,
        stages,
        handoffs,
        merged_into,
        view.first_event_at or time,
        time,
        view.event_count + 1,
    )


def stage_move(
    data: EventData, funnel: Funnel, *, has_stage: bool
) -> tuple[str, str | None] | None:
    """(target stage, reason) when the event moves the lead, else None. ``has_stage``: the
    lead already has a stage (then ``lead.created`` moves nothing). The SLA timers use it too,
    so they can never disagree with the stage history."""
    return _move(data, KINDS[type(data)], funnel.lookups, has_stage)


def _move(
    data: EventData, kind: int, lookups: FunnelLookups, has_stage: bool
) -> tuple[str, str | None] | None:
    # ``kind`` is ``KINDS[type(data)]``; each isinstance below runs only when it is true.
    if kind & STAGE_CHANGED and isinstance(data, LeadStageChanged):
        return data.to_stage, data.reason
    if kind & DISQUALIFIED and isinstance(data, LeadDisqualified):
        return lookups.disqualified_stage, data.reason_code
    if kind & RECYCLED and isinstance(data, LeadRecycled):
        return lookups.recycled_stage, data.reason
    if kind & CREATED and not has_stage and isinstance(data, LeadCreated):
        return data.stage, None
    return None


def _open(
    stages: tuple[StageSpan, ...],
    stage: str,
    reason: str | None,
    time: datetime,
    event_id: str,
    lookups: FunnelLookups,
) -> tuple[StageSpan, ...]:
    # Spans are built positionally, in field order (stage, team, entered_at, exited_at,
    # entered_via, from_stage, reason): ``dataclasses.replace`` or keywords cost more, and
    # this runs once per move.
    team = lookups.team_values[stage]
    if not stages:
        return (_new_span(stage, team, time, None, event_id, None, reason),)
    last = stages[-1]
    closed = _new_span(
        last.stage, last.team, last.entered_at, time, last.entered_via, last.from_stage, last.reason
    )
    opened = _new_span(stage, team, time, None, event_id, last.stage, reason)
    if len(stages) == 1:
        return (closed, opened)
    return (*stages[:-1], closed, opened)


def _highest(highest: str | None, entered: str, lookups: FunnelLookups) -> str | None:
    # Side stages rank -1, so they never replace a main-path stage nor become the first value.
    ranks = lookups.ranks
    rank = ranks.get(entered, -1)
    if rank < 0:
        return highest
    if highest is None or rank > ranks.get(highest, -1):
        return entered
    return highest
