"""The marketing -> sales handoff: start, assignment, first action, and how it is reported."""

from __future__ import annotations

from events.envelope import Event
from events.errors import RejectReason
from projections.lead import LeadState, Rejected, apply
from projections.views import Handoff

from .factories import (
    FUNNEL,
    LEAD,
    applied,
    apply_all,
    assigned,
    at,
    contacted,
    created,
    disqualified,
    moved,
    recycled,
    touched,
)


def to_mql(minute: float = 0) -> list[Event]:
    """A lead created at minute 0 that enters MQL at ``minute``."""
    return [created(LEAD, at(0)), moved(LEAD, at(minute), "lead", "mql")]


def only_handoff(state: LeadState) -> Handoff:
    (handoff,) = state.view.handoffs
    return handoff


def test_entering_the_handoff_stage_starts_an_open_handoff_with_no_figures() -> None:
    events = to_mql(10)

    handoff = only_handoff(apply_all(events))

    assert (handoff.started_at, handoff.start_event_id) == (at(10), events[1].id)
    assert handoff.action is None
    assert handoff.is_open
    assert handoff.latency_seconds is None
    assert handoff.system_delay_seconds is None
    assert handoff.human_delay_seconds is None


def test_a_lead_created_in_the_handoff_stage_starts_a_handoff() -> None:
    handoff = only_handoff(apply_all([created(LEAD, at(0), "mql")]))

    assert handoff.started_at == at(0)


def test_a_contact_ends_it_as_contacted_with_system_and_human_delay() -> None:
    call = contacted(LEAD, at(50))
    handoff = only_handoff(apply_all([*to_mql(10), assigned(LEAD, at(15)), call]))

    assert (handoff.action, handoff.action_at, handoff.action_event_id) == (
        "contacted",
        at(50),
        call.id,
    )
    assert handoff.latency_seconds == 40 * 60
    assert handoff.system_delay_seconds == 5 * 60
    assert handoff.human_delay_seconds == 35 * 60


def test_only_the_first_assignment_during_the_handoff_counts() -> None:
    events = [*to_mql(10), assigned(LEAD, at(15), "rep-1"), assigned(LEAD, at(20), "rep-2")]

    assert only_handoff(apply_all(events)).assigned_at == at(15)


def test_an_assignment_before_entering_the_handoff_stage_does_not_count() -> None:
    events = [created(LEAD, at(0)), assigned(LEAD, at(5)), moved(LEAD, at(10), "lead", "mql")]

    assert only_handoff(apply_all(events)).assigned_at is None


def test_an_assignment_at_the_moment_of_entering_counts_whatever_the_arrival_order() -> None:
    events = [created(LEAD, at(0)), assigned(LEAD, at(10)), moved(LEAD, at(10), "lead", "mql")]

    assert only_handoff(apply_all(events)).assigned_at == at(10)


def test_an_assignment_after_the_action_does_not_count() -> None:
    events = [*to_mql(10), contacted(LEAD, at(20)), assigned(LEAD, at(30))]

    handoff = only_handoff(apply_all(events))

    assert handoff.assigned_at is None
    assert (handoff.system_delay_seconds, handoff.human_delay_seconds) == (None, None)
    assert handoff.latency_seconds == 10 * 60


def test_moving_on_to_a_sales_stage_ends_it_as_accepted() -> None:
    handoff = only_handoff(apply_all([*to_mql(10), moved(LEAD, at(70), "mql", "sal")]))

    assert (handoff.action, handoff.latency_seconds) == ("accepted", 3600.0)


def test_disqualification_ends_it_as_rejected() -> None:
    handoff = only_handoff(apply_all([*to_mql(10), disqualified(LEAD, at(20), "mql")]))

    assert (handoff.action, handoff.latency_seconds) == ("rejected", 600.0)


def test_recycling_ends_it_as_rejected() -> None:
    handoff = only_handoff(apply_all([*to_mql(10), recycled(LEAD, at(20), "mql")]))

    assert handoff.action == "rejected"


def test_a_plain_stage_change_to_the_disqualified_stage_is_refused_for_lacking_a_reason() -> None:
    state = apply_all(to_mql(10))
    result = apply(state, moved(LEAD, at(20), "mql", "disqualified"), FUNNEL)

    assert isinstance(result, Rejected)
    assert result.rejection.reason is RejectReason.DISALLOWED_TRANSITION
    assert "lead.disqualified" in result.rejection.detail


def test_going_back_to_nurture_withdraws_it_without_latency() -> None:
    handoff = only_handoff(apply_all([*to_mql(10), moved(LEAD, at(20), "mql", "nurture")]))

    assert (handoff.action, handoff.action_at) == ("withdrawn", at(20))
    assert handoff.latency_seconds is None
    assert handoff.human_delay_seconds is None


def test_only_the_first_action_counts() -> None:
    events = [*to_mql(10), contacted(LEAD, at(20)), moved(LEAD, at(30), "mql", "sal")]

    handoff = only_handoff(apply_all(events))

    assert (handoff.action, handoff.action_at) == ("contacted", at(20))


def test_re_entering_the_handoff_stage_starts_a_new_handoff() -> None:
    events = [
        *to_mql(10),
        moved(LEAD, at(20), "mql", "nurture"),
        moved(LEAD, at(30), "nurture", "mql"),
        contacted(LEAD, at(45)),
    ]

    first, second = apply_all(events).view.handoffs

    assert (first.action, second.action) == ("withdrawn", "contacted")
    assert (second.started_at, second.latency_seconds) == (at(30), 15 * 60)


def test_a_contact_outside_a_handoff_changes_no_handoff() -> None:
    events = [created(LEAD, at(0)), contacted(LEAD, at(1))]

    assert apply_all(events).view.handoffs == ()


def test_a_completed_handoff_is_reported_once() -> None:
    state = apply_all(to_mql(10))

    first = applied(state, contacted(LEAD, at(20)))
    second = applied(first.state, moved(LEAD, at(30), "mql", "sal"))

    assert [h.action for h in first.changes.handoffs_completed] == ["contacted"]
    assert second.changes.handoffs_completed == ()


def test_a_withdrawn_handoff_is_not_reported_as_completed() -> None:
    state = apply_all(to_mql(10))

    result = applied(state, moved(LEAD, at(20), "mql", "nurture"))

    assert result.changes.handoffs_completed == ()


def test_a_late_contact_moves_the_action_earlier_without_reporting_it_again() -> None:
    state = apply_all([*to_mql(10), moved(LEAD, at(70), "mql", "sal")])

    result = applied(state, contacted(LEAD, at(20)))

    assert result.out_of_order
    assert only_handoff(result.state).action == "contacted"
    assert result.changes.handoffs_completed == ()


def test_a_late_contact_before_a_withdrawal_corrects_the_view_but_reports_nothing() -> None:
    # The handoff's first action was already known (withdrawn); counters keep the first
    # known outcome, so reporting it now could later report it twice.
    state = apply_all([*to_mql(10), moved(LEAD, at(70), "mql", "nurture")])

    result = applied(state, contacted(LEAD, at(20)))

    assert only_handoff(result.state).action == "contacted"
    assert result.changes.handoffs_completed == ()


def test_a_late_contact_on_an_open_handoff_reports_it_completed() -> None:
    state = apply_all([*to_mql(10), touched(LEAD, at(30))])

    result = applied(state, contacted(LEAD, at(20)))

    assert result.out_of_order
    assert [h.action for h in result.changes.handoffs_completed] == ["contacted"]
