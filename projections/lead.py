"""One lead's state: its accepted events in event-time order and the view derived from them.

``apply`` is the only way in. It never raises for bad input; it returns ``Rejected`` with a
reason instead, and every check it makes looks at the event alone (plus, for duplicates, the
ids already accepted), so whether an event is accepted never depends on arrival order. The
same set of events in any arrival order, delivered any number of times, gives an equal
``LeadState``.

Duplicates are recognised by event id alone: the first delivery of an id wins. Upstream must
keep ids unique per lead (the CloudEvents id is unique per source, so a source that reuses a
neighbour's id would have its event rejected as a duplicate).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

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
from events.errors import FieldError, Rejection, RejectReason
from events.funnel import Funnel, FunnelLookups
from events.kinds import CREATED, DISQUALIFIED, KINDS, RECYCLED, STAGE_CHANGED
from events.validation import check_against_funnel
from projections.changes import NO_CHANGES, Changes, appended, diff
from projections.fast_init import fast_init, fast_new, slot_builder
from projections.step import step, step_fields
from projections.views import LeadView, empty_view

#: Tie-break for events at the same instant: the lead exists before it moves, it moves before
#: it is worked in its new stage (so an assignment at the moment of entering MQL counts for
#: the handoff), and it is worked before deals and merges wrap it up.
_TYPE_RANK: Final[dict[str, int]] = {
    LeadCreated.TYPE: 0,
    LeadStageChanged.TYPE: 1,
    LeadDisqualified.TYPE: 1,
    LeadRecycled.TYPE: 1,
    LeadAssigned.TYPE: 2,
    LeadContacted.TYPE: 3,
    LeadMerged.TYPE: 5,
}
#: The payloads ``check_against_funnel`` looks at (``events.validation``); it accepts the rest.
_CHECKED: Final = CREATED | STAGE_CHANGED | RECYCLED | DISQUALIFIED
#: Touchpoints, deals and any type added later.
_DEFAULT_RANK: Final = 4
#: Up to this many accepted events a duplicate is found by comparing ids one by one; a
#: longer history keeps a set of them.
SCAN_IDS: Final = 12


def order_key(event: Event) -> tuple[datetime, int, str]:
    """Event time, then type rank (``lead.created`` first), then id: a total, deterministic
    order, because ids are unique within a lead."""
    return (event.time, _TYPE_RANK.get(event.type, _DEFAULT_RANK), event.id)


@dataclass(frozen=True, slots=True)
class LeadState:
    """The accepted history of one lead (sorted by ``order_key``) and its derived view."""

    lead_id: str
    events: tuple[Event, ...]
    view: LeadView
    # The ids of ``events``, derived from them (so they can never disagree and need no
    # comparing): a tuple up to ``SCAN_IDS`` events (in the order they were accepted, not
    # necessarily ``events``' order; it is only searched), a frozenset beyond.
    # Either way ``event_id in id_index`` is the duplicate test: a C-level scan of a few
    # strings, or one hash lookup. Reading ``.id`` off each pydantic event instead costs
    # about 0.1 µs per accepted event (pydantic's ``__getattr__`` hook). A short history
    # keeps a tuple rather than a set: a set is about half a kilobyte per cached lead.
    id_index: tuple[str, ...] | frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id_index", _id_index(self.events))

    @property
    def ids(self) -> frozenset[str]:
        """The ids of the accepted events."""
        index = self.id_index
        return index if isinstance(index, frozenset) else frozenset(index)

    @property
    def id_set(self) -> frozenset[str] | None:
        """The ids as a set once there are more than ``SCAN_IDS`` events, else None."""
        index = self.id_index
        return index if isinstance(index, frozenset) else None

    def has(self, event_id: str) -> bool:
        """Whether an event with this id was accepted for this lead (a scan of at most
        ``SCAN_IDS`` ids, else one set lookup)."""
        return event_id in self.id_index


def _id_index(events: tuple[Event, ...]) -> tuple[str, ...] | frozenset[str]:
    ids = tuple([e.id for e in events])
    return frozenset(ids) if len(ids) > SCAN_IDS else ids


def _grown(
    index: tuple[str, ...] | frozenset[str], event_id: str
) -> tuple[str, ...] | frozenset[str]:
    # ``_id_index`` of a history one event longer (any position: a set has no order, and a
    # tuple is only searched): grown by one instead of rebuilt from the events.
    if isinstance(index, frozenset):
        return index.union((event_id,))
    if len(index) < SCAN_IDS:
        return (*index, event_id)
    return frozenset((*index, event_id))


@fast_init
@dataclass(frozen=True, slots=True)
class Applied:
    """The event was accepted. ``out_of_order``: it sorts before an already accepted event
    of this lead, so the view was refolded from the whole history. ``changes``: what it
    newly made true, for the metrics (``NO_CHANGES`` when ``apply`` was told nobody reads
    them)."""

    state: LeadState
    out_of_order: bool
    changes: Changes


@dataclass(frozen=True, slots=True)
class Rejected:
    """The event was not accepted; the state is unchanged."""

    rejection: Rejection


#: ``Applied(...)``, built faster (see ``projections.fast_init``).
_new_applied = fast_new(Applied)
_StateBuilder = Callable[
    [str, tuple[Event, ...], LeadView, tuple[str, ...] | frozenset[str]], LeadState
]
#: A ``LeadState`` from all four fields, ``id_index`` included, without ``__post_init__``.
_new_state: _StateBuilder = slot_builder(LeadState)


def _extended(
    old: LeadState, event_id: str, events: tuple[Event, ...], view: LeadView
) -> LeadState:
    # ``old`` plus one accepted event: the ids grow by one instead of being rebuilt from
    # the whole history, and ``__post_init__`` is skipped (hot path).
    return _new_state(old.lead_id, events, view, _grown(old.id_index, event_id))


def empty(lead_id: str) -> LeadState:
    """The state of a lead before any event."""
    # Built directly (no ids for no events): once per lead new to the cache.
    return _new_state(lead_id, (), empty_view(lead_id), ())


def check(state: LeadState, event: Event, funnel: Funnel) -> Rejection | None:
    """None when ``apply`` would accept the event; otherwise the reason it would not."""
    if event.subject != state.lead_id:
        return Rejection(
            RejectReason.KEY_MISMATCH,
            f"event {event.id} is about lead {event.subject!r}, not {state.lead_id!r}",
            (FieldError("subject", f"must be {state.lead_id!r}"),),
        )
    if state.has(event.id):
        return Rejection(
            RejectReason.DUPLICATE,
            f"event {event.id} was already applied to lead {state.lead_id!r}",
            (FieldError("id", "already applied"),),
        )
    return check_against_funnel(event, funnel)


def apply(
    state: LeadState, event: Event, funnel: Funnel, changes: bool = True
) -> Applied | Rejected:
    """Accept ``event`` into the lead's history, or say why not. Never raises for bad input.

    An event that sorts after every accepted one steps the view; a late one refolds the whole
    sorted history. Both use ``step``, so they give the same view. ``changes=False``: skip
    working out ``Applied.changes`` (a replay, which has no metrics to feed).
    """
    # A pydantic model's attribute reads go through its ``__getattr__`` hook (about 0.1 µs
    # each); the event's fields are read from the instance dict, where pydantic keeps them,
    # once (hot path).
    fields = event.__dict__
    event_id = fields["id"]
    data = fields["data"]
    kind = KINDS[type(data)]
    # ``check`` inlined (hot path): the two cheap tests first, and the reason is only worked
    # out when one of them fails. ``state.has`` inlined too.
    old_events = state.events
    index = state.id_index
    if event_id in index or fields["subject"] != state.lead_id:
        rejection = check(state, event, funnel)
    elif not kind & _CHECKED:
        rejection = None  # what ``check_against_funnel`` says of every such payload
    elif kind & STAGE_CHANGED and _allowed_move(data, funnel.lookups):
        rejection = None
    else:
        rejection = check_against_funnel(event, funnel)
    if rejection is not None:
        return Rejected(rejection)
    old_view = state.view
    time = fields["time"]
    # Keys are unique (ids are), so "after the last" is the whole in-order test. It is
    # ``order_key(last) < order_key(event)``, with the whole keys only built on a tie of times.
    if old_events:
        last = old_events[-1]
        last_time = last.time
        in_order = last_time < time or (last_time == time and order_key(last) < order_key(event))
    else:
        in_order = True
    if in_order:
        view = step_fields(old_view, data, kind, time, event_id, funnel)
        # ``_extended`` and ``_grown`` inlined (hot path).
        if isinstance(index, frozenset):
            index = index.union((event_id,))
        elif len(index) < SCAN_IDS:
            index = (*index, event_id)
        else:
            index = frozenset((*index, event_id))
        new = _new_state(state.lead_id, (*old_events, event), view, index)
        # step only appended: what it did is the change, no need to compare whole views.
        return _new_applied(new, False, appended(old_view, view) if changes else NO_CHANGES)
    key = order_key(event)
    position = bisect_right(old_events, key, key=order_key)
    events = (*old_events[:position], event, *old_events[position:])
    view = _fold_view(state.lead_id, events, funnel)
    new = _extended(state, event_id, events, view)
    return _new_applied(new, True, diff(old_view, view) if changes else NO_CHANGES)


def _allowed_move(data: EventData, lookups: FunnelLookups) -> bool:
    # True only when ``check_against_funnel`` accepts this ``lead.stage_changed`` (``data``
    # has the flag): not into the regression stages, and a move the funnel lists. Anything
    # else goes through it for the reason. Read from the payload's dict, as the event's.
    if not isinstance(data, LeadStageChanged):
        return False
    fields = data.__dict__
    to_stage = fields["to_stage"]
    if to_stage == lookups.disqualified_stage or to_stage == lookups.recycled_stage:
        return False
    allowed = lookups.next_stages.get(fields["from_stage"])
    return allowed is not None and to_stage in allowed


def fold(lead_id: str, events: Iterable[Event], funnel: Funnel) -> LeadState:
    """The state from scratch, from events in any order. Duplicates (first delivery wins)
    and events ``apply`` would reject are skipped, so this equals applying them one by one."""
    accepted: dict[str, Event] = {}
    for event in events:
        if event.id in accepted or event.subject != lead_id:
            continue
        if check_against_funnel(event, funnel) is None:
            accepted[event.id] = event
    ordered = tuple(sorted(accepted.values(), key=order_key))
    return LeadState(lead_id=lead_id, events=ordered, view=_fold_view(lead_id, ordered, funnel))


def _fold_view(lead_id: str, ordered: Iterable[Event], funnel: Funnel) -> LeadView:
    view = empty_view(lead_id)
    for event in ordered:
        view = step(view, event, funnel)
    return view
