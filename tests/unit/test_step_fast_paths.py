"""The in-order fast paths of the fold (``apply``'s tail facts from ``appended``, ``step``'s
inlined stage move and skipped handoff call) give exactly what the plain definitions give.

Exactly: the same classes and the same field values, since the processor's counters and the
stage benchmark's digest read them (``repr`` included).
"""

from __future__ import annotations

from hypothesis import given, settings

from events.envelope import Event
from projections.changes import diff
from projections.lead import Applied, apply, empty, fold, order_key
from projections.step import stage_move
from projections.views import empty_view

from .factories import FUNNEL, LEAD
from .test_fold_properties import journeys

FAST = settings(max_examples=80, deadline=None)


@FAST
@given(journeys())
def test_each_in_order_event_reports_exactly_the_facts_of_diffing_the_views(
    journey: list[Event],
) -> None:
    state = empty(LEAD)
    # Sorted: events at one instant may sort by type rank before the journey's order.
    for event in sorted(journey, key=order_key):
        result = apply(state, event, FUNNEL)
        assert isinstance(result, Applied)
        assert not result.out_of_order
        expected = diff(state.view, result.state.view)
        assert repr(result.changes) == repr(expected)
        assert [type(t) for t in result.changes.transitions] == [
            type(t) for t in expected.transitions
        ]
        state = result.state
    assert state == fold(LEAD, journey, FUNNEL)


@FAST
@given(journeys())
def test_each_stay_opens_where_stage_move_says(journey: list[Event]) -> None:
    # ``step`` reads a ``lead.stage_changed`` move inline; ``stage_move`` is the shared rule.
    view = empty_view(LEAD)
    state = empty(LEAD)
    for event in sorted(journey, key=order_key):
        move = stage_move(event.data, FUNNEL, has_stage=bool(view.stages))
        result = apply(state, event, FUNNEL)
        assert isinstance(result, Applied)
        new_view = result.state.view
        if move is None:
            assert new_view.stages is view.stages
        else:
            assert (new_view.stages[-1].stage, new_view.stages[-1].reason) == move
            assert new_view.stages[-1].entered_via == event.id
        view, state = new_view, result.state
