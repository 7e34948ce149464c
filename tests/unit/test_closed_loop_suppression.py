"""Suppression of re-handoffs after a suppressing disqualification: a function of history."""

from __future__ import annotations

import itertools

from events.closed_loop import ClosedLoopConfig, OnSuppressed
from events.envelope import Event
from events.errors import RejectReason
from events.funnel import Funnel
from projections.closed_loop.suppression import (
    check_rehandoff,
    may_be_suppressed,
    new_rehandoffs,
    rehandoffs,
    suppression_of,
)
from projections.lead import fold
from tests.unit.factories import FUNNEL, LEAD, at, created, disqualified, moved, recycled

REJECTING = FUNNEL.model_copy(
    update={"closed_loop": ClosedLoopConfig(on_suppressed_handoff=OnSuppressed.REJECT)}
)


def _sorted(*events: Event) -> tuple[Event, ...]:
    return fold(LEAD, events, FUNNEL).events


DQ_POOR_FIT = disqualified(LEAD, at(10), "mql", "poor_fit")
BACK = recycled(LEAD, at(20), "disqualified")
TO_MQL = moved(LEAD, at(30), "recycled", "mql")
HISTORY = (created(LEAD, at(0), "mql"), DQ_POOR_FIT, BACK, TO_MQL)


def test_a_poor_fit_lead_recycled_and_made_mql_again_is_two_rehandoffs() -> None:
    found = rehandoffs(_sorted(*HISTORY), FUNNEL)
    assert [(r.event.id, r.to_stage) for r in found] == [(BACK.id, "recycled"), (TO_MQL.id, "mql")]
    assert {r.suppression.event_id for r in found} == {DQ_POOR_FIT.id}
    assert found[0].suppression.reason_code == "poor_fit"


def test_a_non_suppressing_reason_never_suppresses() -> None:
    history = (created(LEAD, at(0), "mql"), disqualified(LEAD, at(10), "mql", "bad_timing"))
    assert suppression_of(_sorted(*history), FUNNEL) is None
    assert rehandoffs(_sorted(*history, BACK, TO_MQL), FUNNEL) == ()


def test_moves_before_the_disqualification_are_not_rehandoffs() -> None:
    early = (created(LEAD, at(0), "lead"), moved(LEAD, at(1), "lead", "mql"))
    assert rehandoffs(_sorted(*early, DQ_POOR_FIT), FUNNEL) == ()


def test_the_rehandoffs_do_not_depend_on_arrival_order() -> None:
    expected = rehandoffs(_sorted(*HISTORY), FUNNEL)
    for order in itertools.permutations(HISTORY):
        assert rehandoffs(_sorted(*order), FUNNEL) == expected


def test_a_late_disqualification_turns_an_accepted_move_into_a_rehandoff() -> None:
    before = _sorted(created(LEAD, at(0), "mql"), BACK, TO_MQL)
    after = _sorted(*before, DQ_POOR_FIT)
    assert [r.event.id for r in new_rehandoffs(before, after, FUNNEL)] == [BACK.id, TO_MQL.id]
    assert new_rehandoffs(after, after, FUNNEL) == (), "nothing is announced twice"


def _by_definition(before: tuple[Event, ...], after: tuple[Event, ...]) -> tuple[str, ...]:
    known = {r.event.id for r in rehandoffs(before, FUNNEL)}
    return tuple(r.event.id for r in rehandoffs(after, FUNNEL) if r.event.id not in known)


def test_new_rehandoffs_take_shortcuts_that_agree_with_the_definition_in_every_arrival_order() -> (
    None
):
    # Arrival one event at a time, as the processor sees it: appended events take the
    # shortcut, late ones the full comparison; both must give what the definition gives.
    history = (*HISTORY, moved(LEAD, at(40), "mql", "nurture"))
    for order in itertools.permutations(history):
        state = fold(LEAD, (), FUNNEL)
        for event in order:
            after = fold(LEAD, (*state.events, event), FUNNEL)
            found = new_rehandoffs(state.events, after.events, FUNNEL)
            assert tuple(r.event.id for r in found) == _by_definition(state.events, after.events)
            assert all(r.suppression.event_id == DQ_POOR_FIT.id for r in found)
            state = after


def test_a_lead_ruled_out_as_suppressed_by_its_stays_has_no_suppression_in_any_arrival_order() -> (
    None
):
    # The engine skips the history walk when the stays rule a suppression out, so that must
    # never hide one, whatever else moved the lead through the disqualified stage.
    not_suppressing = disqualified(LEAD, at(7), "mql", "bad_timing")
    history = (created(LEAD, at(0), "mql"), not_suppressing, *HISTORY[1:])
    seen = set()
    for order in itertools.permutations(history):
        state = fold(LEAD, (), FUNNEL)
        for event in order:
            state = fold(LEAD, (*state.events, event), FUNNEL)
            maybe = may_be_suppressed(state.view, FUNNEL)
            found = suppression_of(state.events, FUNNEL)
            assert found is None or maybe
            seen.add((maybe, found is not None))
    assert seen >= {(False, False), (True, True)}


def test_configured_stages_narrow_what_counts_as_a_rehandoff() -> None:
    config = ClosedLoopConfig(rehandoff_stages=("mql",))
    only_mql = Funnel.model_validate({**FUNNEL.model_dump(), "closed_loop": config.model_dump()})
    assert [r.to_stage for r in rehandoffs(_sorted(*HISTORY), only_mql)] == ["mql"]


def test_flag_mode_never_rejects() -> None:
    history = _sorted(created(LEAD, at(0), "mql"), DQ_POOR_FIT)
    assert check_rehandoff(history, BACK, FUNNEL) is None


def test_reject_mode_refuses_a_rehandoff_with_its_own_reason() -> None:
    history = _sorted(created(LEAD, at(0), "mql"), DQ_POOR_FIT)
    rejection = check_rehandoff(history, BACK, REJECTING)
    assert rejection is not None
    assert rejection.reason is RejectReason.SUPPRESSED_HANDOFF
    assert "poor_fit" in rejection.detail


def test_reject_mode_judges_by_event_time_not_arrival() -> None:
    # The move is dated before the disqualification: it is no re-handoff even if it arrives later.
    history = _sorted(created(LEAD, at(0), "lead"), DQ_POOR_FIT)
    assert check_rehandoff(history, moved(LEAD, at(5), "lead", "mql"), REJECTING) is None


def test_a_funnel_rejects_suppressing_reasons_it_does_not_know() -> None:
    import pytest

    data = {**FUNNEL.model_dump(), "closed_loop": {"suppressing_reasons": ["nope"]}}
    with pytest.raises(ValueError, match="nope"):
        Funnel.model_validate(data)
