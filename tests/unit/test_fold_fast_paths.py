"""The fold's fast paths agree with the plain definitions they replace.

``events.kinds.KINDS`` (exact-class dispatch) must say what ``isinstance`` says, for every
payload class and for subclasses; ``Funnel.lookups`` must say what the ``Funnel`` methods say;
and ``step``, ``stage_move`` and ``check_against_funnel`` must equal their plain references
(tests/unit/fold_reference.py) on random histories of every kind of event, valid or not;
the constructors ``fast_new`` makes must build what the classes build.
"""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError, dataclass
from datetime import timedelta
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalog import (
    CATALOG,
    EventData,
    LeadAssigned,
    LeadContacted,
    LeadCreated,
    LeadDisqualified,
    LeadRecycled,
    LeadStageChanged,
)
from events.closed_loop_events import CLOSED_LOOP_EVENTS
from events.envelope import Event, make_event
from events.funnel import Team
from events.kinds import FLAGS, KINDS, kind_of
from events.registry import DEFAULT_REGISTRY
from events.sla_events import SLA_EVENTS
from events.validation import check_against_funnel
from projections.changes import Changes, StageExit, Transition
from projections.fast_init import fast_init, fast_new, slot_builder
from projections.lead import LeadState
from projections.step import stage_move, step
from projections.views import Handoff, LeadView, StageSpan, empty_view

from .factories import (
    FUNNEL,
    LEAD,
    SOURCE,
    T0,
    assigned,
    contacted,
    created,
    deal_created,
    deal_won,
    disqualified,
    merged,
    moved,
    one_of_each,
    recycled,
    touched,
)
from .fold_reference import reference_check, reference_stage_move, reference_step


class _Pinged(EventData):
    """A payload type the projections have never heard of."""

    TYPE: ClassVar[str] = "lead.pinged"
    VERSION: ClassVar[int] = 1


class _ReassignedByRouter(LeadAssigned):
    """A subclass of a catalog type: exact-class dispatch must still treat it as its base."""

    router: str = "round-robin"


class _StageChangedV3(LeadStageChanged):
    """A subclass of a stage-moving type (as a later schema version could be)."""


class _ContactedAndAssigned(LeadContacted, LeadAssigned):
    """Derives from two catalog types: it has the flags of both."""


PAYLOAD_CLASSES: tuple[type[EventData], ...] = (
    *CATALOG,
    *(DEFAULT_REGISTRY.model(t) for t in DEFAULT_REGISTRY.types),
    *SLA_EVENTS,
    *CLOSED_LOOP_EVENTS,
    EventData,
    _Pinged,
    _ReassignedByRouter,
    _StageChangedV3,
    _ContactedAndAssigned,
)


def _instances() -> list[EventData]:
    return [
        *(e.data for e in one_of_each()),
        _Pinged(),
        _ReassignedByRouter(owner_id="rep-9", team="sales"),
        _StageChangedV3(from_stage="lead", to_stage="mql"),
        _ContactedAndAssigned(activity="call", rep_id="rep-1", owner_id="rep-1", team="sales"),
    ]


def test_the_kind_of_every_payload_class_has_exactly_the_flags_of_its_catalog_bases() -> None:
    for cls in PAYLOAD_CLASSES:
        for base, flag in FLAGS:
            assert bool(KINDS[cls] & flag) == issubclass(cls, base), (cls, base)
        assert KINDS[cls] == kind_of(cls)


def test_the_kind_of_a_payload_says_what_isinstance_says_for_every_catalog_class() -> None:
    for data in _instances():
        for base, flag in FLAGS:
            assert bool(KINDS[type(data)] & flag) == isinstance(data, base), (data, base)


def test_every_registered_payload_class_is_known_before_the_first_event() -> None:
    # Then the hot path never takes the slow first-sight computation for a catalog type.
    for t in DEFAULT_REGISTRY.types:
        assert DEFAULT_REGISTRY.model(t) in dict(KINDS)


def test_the_funnel_lookups_say_what_the_funnel_methods_say() -> None:
    lookups = FUNNEL.lookups
    names = [*FUNNEL.stages, "no-such-stage"]
    for stage in names:
        assert lookups.ranks.get(stage, -1) == FUNNEL.rank(stage)
    for stage in FUNNEL.stages:
        assert lookups.team_values[stage] == FUNNEL.team_of(stage).value
        assert (stage in lookups.sales_stages) == (FUNNEL.team_of(stage) is Team.SALES)
        assert lookups.next_stages[stage] == {
            to for to in FUNNEL.stages if FUNNEL.allows(stage, to)
        }
    assert set(lookups.next_stages) == set(FUNNEL.stages)
    assert lookups.initial_stages == set(FUNNEL.initial_stages)
    assert (lookups.handoff_stage, lookups.disqualified_stage, lookups.recycled_stage) == (
        FUNNEL.handoff_stage,
        FUNNEL.disqualified_stage,
        FUNNEL.recycled_stage,
    )


def test_the_funnel_lookups_are_computed_once_per_funnel() -> None:
    assert FUNNEL.lookups is FUNNEL.lookups


STAGES = [*FUNNEL.stages]
#: Stage names step trusts, plus names only check_against_funnel sees (and must reject).
ANY_STAGE = st.sampled_from([*STAGES, "nowhere"])


def _event(data: EventData, when_minutes: int, i: int) -> Event:
    when = T0 + timedelta(minutes=when_minutes)
    return make_event(data, id=f"f{i:03d}", subject=LEAD, source=SOURCE, time=when)


@st.composite
def payloads(draw: st.DrawFn, current: str) -> EventData:
    """A payload of any kind; moves mostly walk on from ``current``, so handoffs start and
    end in every way, and sometimes jump between any two names."""
    kind = draw(st.integers(0, 12))
    stage, other = draw(ANY_STAGE), draw(ANY_STAGE)
    if kind == 0:
        return LeadCreated(stage=stage)
    if kind in (1, 2) and FUNNEL.stages[current].next:
        to = draw(st.sampled_from(FUNNEL.stages[current].next))
        if to == FUNNEL.disqualified_stage:
            return LeadDisqualified(from_stage=current, reason_code="no_budget")
        if to == FUNNEL.recycled_stage:
            return LeadRecycled(from_stage=current, reason="not ready")
        return LeadStageChanged(from_stage=current, to_stage=to)
    if kind in (1, 2, 3):
        reason = draw(st.none() | st.just("r"))
        return LeadStageChanged(from_stage=stage, to_stage=other, reason=reason)
    if kind == 4:
        code = draw(st.sampled_from([*FUNNEL.disqualification_reasons, "too_pushy"]))
        return LeadDisqualified(from_stage=stage, reason_code=code)
    if kind == 5:
        return LeadRecycled(from_stage=stage, reason="not ready")
    if kind == 6:
        return assigned(LEAD, T0, draw(st.sampled_from(["rep-1", "rep-2"]))).data
    if kind == 7:
        return contacted(LEAD, T0).data
    if kind == 8:
        return draw(
            st.sampled_from(
                [
                    touched(LEAD, T0).data,
                    deal_created(LEAD, T0).data,
                    deal_won(LEAD, T0).data,
                    merged(LEAD, T0, "lead-2").data,
                ]
            )
        )
    if kind == 9:
        return _ReassignedByRouter(owner_id="rep-3", team="sales")
    if kind == 10:
        return _StageChangedV3(from_stage=stage, to_stage=other)
    if kind == 11:
        return _ContactedAndAssigned(activity="email", rep_id="rep-2", owner_id="rep-2", team="x")
    return _Pinged()


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """Events in event-time order (equal times included) of every kind, valid or not."""
    minutes = 0
    events = []
    current = draw(st.sampled_from(FUNNEL.initial_stages))
    for i in range(draw(st.integers(1, 30))):
        minutes += draw(st.sampled_from([0, 1, 30, 600]))
        event = _event(draw(payloads(current)), minutes, i)
        move = reference_stage_move(event.data, FUNNEL, has_stage=True)
        if move is not None and reference_check(event, FUNNEL) is None:
            current = move[0]
        events.append(event)
    return events


FAST = settings(max_examples=150, deadline=None)


@FAST
@given(histories())
def test_the_funnel_check_gives_the_reason_of_the_plain_check(history: list[Event]) -> None:
    for event in history:
        rejection = check_against_funnel(event, FUNNEL)
        assert (rejection.reason if rejection else None) == reference_check(event, FUNNEL)


@FAST
@given(histories())
def test_step_equals_the_plain_step_after_every_event_it_is_given(history: list[Event]) -> None:
    fast: LeadView = empty_view(LEAD)
    plain: LeadView = empty_view(LEAD)
    for event in history:
        # step trusts stage names, as it may: apply only steps events the check accepted.
        if check_against_funnel(event, FUNNEL) is not None:
            continue
        for has_stage in (False, True):
            assert stage_move(event.data, FUNNEL, has_stage=has_stage) == reference_stage_move(
                event.data, FUNNEL, has_stage=has_stage
            )
        fast, plain = step(fast, event, FUNNEL), reference_step(plain, event, FUNNEL)
        assert fast == plain


def test_step_equals_the_plain_step_on_a_handoff_that_sales_takes_over() -> None:
    # A fixed example of the paths a random history may miss: handoff, assignment, contact.
    history = [
        created(LEAD, T0),
        moved(LEAD, T0 + timedelta(minutes=1), "lead", "mql"),
        assigned(LEAD, T0 + timedelta(minutes=2)),
        assigned(LEAD, T0 + timedelta(minutes=3), "rep-2"),
        contacted(LEAD, T0 + timedelta(minutes=4)),
        moved(LEAD, T0 + timedelta(minutes=5), "mql", "sal"),
        disqualified(LEAD, T0 + timedelta(minutes=6), "sal", "no_budget"),
        recycled(LEAD, T0 + timedelta(minutes=7), "disqualified"),
    ]
    fast = plain = empty_view(LEAD)
    for event in history:
        assert check_against_funnel(event, FUNNEL) is None
        fast, plain = step(fast, event, FUNNEL), reference_step(plain, event, FUNNEL)
        assert fast == plain
    assert [h.action for h in fast.handoffs] == ["contacted"]


@fast_init
@dataclass(frozen=True, slots=True)
class _Pair:
    left: str
    right: int | None


def test_a_fast_constructor_builds_the_same_frozen_instance_as_the_class() -> None:
    new_pair = fast_new(_Pair)

    built, plain = new_pair("a", 1), _Pair("a", 1)

    assert type(built) is _Pair
    assert built == plain
    assert hash(built) == hash(plain)
    assert repr(built) == repr(plain)
    assert copy.copy(built) == plain
    assert pickle.loads(pickle.dumps(built)) == plain
    with pytest.raises(FrozenInstanceError):
        built.left = "b"  # type: ignore[misc]


def test_the_fold_s_fast_constructors_build_what_the_classes_build() -> None:
    t = T0
    span = ("mql", "marketing", t, None, "e1", "lead", None)
    handoff = (t, "e1", t, t, "accepted", "e2")
    view = (LEAD, t, "mql", t, "mql", "rep-1", "sales", (), (), None, t, t, 3)
    for cls, values in (
        (StageSpan, span),
        (Handoff, handoff),
        (LeadView, view),
        (Transition, ("lead", "mql", t, "e1")),
        (StageExit, ("lead", 60.0, "e1")),
        (Changes, ((), (), ())),
    ):
        built = fast_new(cls)(*values)
        assert type(built) is cls
        assert built == cls(*values)


def test_a_state_built_from_its_slots_equals_the_state_built_by_its_constructor() -> None:
    events = (created(LEAD, T0),)
    view = step(empty_view(LEAD), events[0], FUNNEL)

    built = slot_builder(LeadState)(LEAD, events, view, (events[0].id,))

    assert type(built) is LeadState
    assert built == LeadState(lead_id=LEAD, events=events, view=view)
    assert built.ids == LeadState(lead_id=LEAD, events=events, view=view).ids


def test_a_class_without_one_slot_per_field_gets_no_fast_constructor() -> None:
    @dataclass(frozen=True)
    class Unslotted:
        name: str

    with pytest.raises(TypeError, match="slot per field"):
        slot_builder(Unslotted)
