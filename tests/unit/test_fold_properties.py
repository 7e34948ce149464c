"""Properties of the lead fold over random valid journeys through the default funnel.

A journey is a random walk along the funnel's allowed transitions with non-decreasing times
(equal times included, to exercise the tie-break), mixed with assignments, contacts and
touchpoints, plus a few events that must be rejected whatever their arrival position.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from events.envelope import Event
from events.errors import RejectReason
from projections.changes import Changes, appended, diff
from projections.lead import Applied, LeadState, apply, empty, fold, order_key
from projections.step import step
from projections.views import SALES_ACTIONS, empty_view

from .factories import (
    FUNNEL,
    LEAD,
    T0,
    assigned,
    contacted,
    created,
    disqualified,
    moved,
    recycled,
    touched,
)

FAST = settings(max_examples=60, deadline=None)


@st.composite
def journeys(draw: st.DrawFn) -> list[Event]:
    """A valid history of one lead in event-time order (ids sort in the same order)."""
    stage = draw(st.sampled_from(FUNNEL.initial_stages))
    when = T0
    events = [created(LEAD, when, stage, id="e00")]
    for i in range(1, draw(st.integers(1, 24))):
        when += timedelta(minutes=draw(st.sampled_from([0, 1, 7, 45, 180, 1440])))
        eid = f"e{i:02d}"
        kind = draw(st.sampled_from(["move", "move", "move", "assign", "contact", "touch"]))
        if kind == "move" and FUNNEL.stages[stage].next:
            to = draw(st.sampled_from(FUNNEL.stages[stage].next))
            if to == FUNNEL.disqualified_stage:
                code = draw(st.sampled_from(FUNNEL.disqualification_reasons))
                events.append(disqualified(LEAD, when, stage, code, id=eid))
            elif to == FUNNEL.recycled_stage:
                events.append(recycled(LEAD, when, stage, id=eid))
            else:
                events.append(moved(LEAD, when, stage, to, id=eid))
            stage = to
        elif kind == "assign":
            owner = draw(st.sampled_from(["rep-1", "rep-2"]))
            events.append(assigned(LEAD, when, owner, id=eid))
        elif kind == "contact":
            events.append(contacted(LEAD, when, id=eid))
        else:
            events.append(touched(LEAD, when, id=eid))
    return events


#: Events apply() must reject wherever they land: wrong lead, disallowed move, unknown code.
INVALID = (
    created("lead-2", T0, id="x-other-lead"),
    moved(LEAD, T0 + timedelta(hours=3), "lead", "customer", id="x-disallowed"),
    disqualified(LEAD, T0 + timedelta(hours=5), "mql", "too_pushy", id="x-reason"),
)


@st.composite
def deliveries(draw: st.DrawFn, copies: int = 1) -> tuple[list[Event], list[Event]]:
    """(journey in order, the journey plus some invalid events, each ``copies`` times, in a
    random arrival order)."""
    journey = draw(journeys())
    noise = draw(st.lists(st.sampled_from(INVALID), unique=True, max_size=len(INVALID)))
    arrival = draw(st.permutations((journey + noise) * copies))
    return journey, arrival


def run(events: Iterable[Event]) -> tuple[LeadState, set[str], list[Changes]]:
    """Apply one by one: the final state, the ids rejected, and every reported change."""
    state, rejected, changes = empty(LEAD), set(), []
    for event in events:
        result = apply(state, event, FUNNEL)
        if isinstance(result, Applied):
            state = result.state
            changes.append(result.changes)
        else:
            rejected.add(event.id)
    return state, rejected, changes


@FAST
@given(deliveries())
def test_any_arrival_order_gives_the_state_of_event_time_order(
    delivery: tuple[list[Event], list[Event]],
) -> None:
    journey, arrival = delivery

    in_order, _, _ = run(journey)
    shuffled, rejected, _ = run(arrival)

    assert shuffled == in_order
    assert shuffled.view == in_order.view
    assert rejected == {e.id for e in arrival} & {e.id for e in INVALID}


@FAST
@given(deliveries(copies=2))
def test_delivering_every_event_twice_gives_the_same_state(
    delivery: tuple[list[Event], list[Event]],
) -> None:
    journey, arrival = delivery
    seen: set[str] = set()
    state = empty(LEAD)

    for event in arrival:
        result = apply(state, event, FUNNEL)
        if isinstance(result, Applied):
            state = result.state
        elif event.id in seen and event.id.startswith("e"):
            assert result.rejection.reason is RejectReason.DUPLICATE
        seen.add(event.id)

    assert state == run(journey)[0]


@FAST
@given(deliveries(copies=2))
def test_fold_equals_applying_the_same_events_one_by_one(
    delivery: tuple[list[Event], list[Event]],
) -> None:
    _, arrival = delivery

    assert fold(LEAD, arrival, FUNNEL) == run(arrival)[0]


@FAST
@given(deliveries(copies=2))
def test_changes_report_each_transition_exit_and_completed_handoff_exactly_once(
    delivery: tuple[list[Event], list[Event]],
) -> None:
    _, arrival = delivery

    state, _, changes = run(arrival)
    view = state.view

    transitions = Counter(t.event_id for c in changes for t in c.transitions)
    assert transitions == Counter(span.entered_via for span in view.stages)
    exits = Counter(x.stage for c in changes for x in c.exits)
    assert exits == Counter(span.stage for span in view.stages if span.exited_at is not None)
    # A handoff is reported at most once: when its first action becomes known, if that action
    # is a sales action. A late event may still change the action (see projections.changes).
    completed = Counter(h.start_event_id for c in changes for h in c.handoffs_completed)
    actioned = {h.start_event_id for h in view.handoffs if h.action is not None}
    assert set(completed.values()) <= {1}
    assert set(completed) <= actioned


@FAST
@given(journeys())
def test_in_event_time_order_every_fact_is_reported_exactly_once_with_final_figures(
    journey: list[Event],
) -> None:
    state, _, changes = run(sorted(journey, key=order_key))
    view = state.view

    reported = [h for c in changes for h in c.handoffs_completed]
    assert reported == [h for h in view.handoffs if h.action in SALES_ACTIONS]
    exits = [x.seconds for c in changes for x in c.exits]
    assert exits == [s.seconds for s in view.stages if s.seconds is not None]


@FAST
@given(journeys())
def test_the_view_holds_together(journey: list[Event]) -> None:
    view = run(journey)[0].view

    for before, after in zip(view.stages, view.stages[1:], strict=False):
        assert before.exited_at == after.entered_at
        assert before.stage == after.from_stage
    assert all(span.exited_at is None for span in view.stages[-1:])
    assert view.current_stage == view.stages[-1].stage
    assert view.event_count == len(journey)
    assert sum(t.visits for t in view.time_in_stage(now=view.last_event_at)) == len(view.stages)
    open_handoffs = [h for h in view.handoffs if h.action is None]
    assert len(open_handoffs) <= 1
    if open_handoffs:
        assert view.current_stage == FUNNEL.handoff_stage


@FAST
@given(deliveries(copies=2))
def test_the_in_order_shortcut_reports_what_diffing_the_whole_views_would(
    delivered: tuple[list[Event], list[Event]],
) -> None:
    _, arrival = delivered
    state = empty(LEAD)
    for event in arrival:
        result = apply(state, event, FUNNEL)
        if isinstance(result, Applied):
            # Both paths: refolds use diff itself, in-order events the tail shortcut.
            expected = diff(state.view, result.state.view)
            # repr too: the counters and the stage benchmark's digest read the exact classes.
            assert result.changes == expected
            assert repr(result.changes) == repr(expected)
            assert result.state.ids == frozenset(e.id for e in result.state.events)
            assert result.state == fold(LEAD, result.state.events, FUNNEL)
            state = result.state


@FAST
@given(deliveries())
def test_the_tail_shortcut_equals_diff_after_every_in_order_step(
    delivered: tuple[list[Event], list[Event]],
) -> None:
    _, arrival = delivered
    # Each prefix of the sorted accepted history, extended by the next event in order.
    ordered = fold(LEAD, arrival, FUNNEL).events
    view = empty_view(LEAD)
    for event in ordered:
        after = step(view, event, FUNNEL)
        assert appended(view, after) == diff(view, after)
        view = after
