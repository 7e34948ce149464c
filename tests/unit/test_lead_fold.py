"""LeadState, apply and fold: acceptance, ordering, the stage rules and the reported changes."""

from __future__ import annotations

from typing import ClassVar

from events.catalog import EventData
from events.envelope import make_event
from events.errors import RejectReason
from projections.changes import StageExit, Transition, diff
from projections.lead import empty, fold, order_key

from .factories import (
    FUNNEL,
    LEAD,
    applied,
    apply_all,
    assigned,
    at,
    contacted,
    created,
    deal_created,
    deal_won,
    disqualified,
    merged,
    moved,
    recycled,
    rejected,
    touched,
)

# --- acceptance -------------------------------------------------------------------------


def test_a_duplicate_event_id_changes_nothing() -> None:
    events = [created(LEAD, at(0)), moved(LEAD, at(5), "lead", "mql")]
    state = apply_all(events)

    result = rejected(state, moved(LEAD, at(5), "lead", "mql"))

    assert result.rejection.reason is RejectReason.DUPLICATE
    assert fold(LEAD, [*events, *events], FUNNEL) == state
    assert state.view.event_count == 2


def test_a_redelivered_id_is_a_duplicate_even_with_different_content() -> None:
    state = apply_all([created(LEAD, at(0), id="e-1")])

    result = rejected(state, touched(LEAD, at(9), id="e-1"))

    assert result.rejection.reason is RejectReason.DUPLICATE


def test_an_event_about_another_lead_is_rejected_as_a_key_mismatch() -> None:
    result = rejected(empty(LEAD), created("lead-2", at(0)))

    assert result.rejection.reason is RejectReason.KEY_MISMATCH
    assert result.rejection.errors[0].loc == "subject"


def test_a_transition_the_funnel_does_not_allow_is_rejected() -> None:
    state = apply_all([created(LEAD, at(0))])

    result = rejected(state, moved(LEAD, at(1), "lead", "customer"))

    assert result.rejection.reason is RejectReason.DISALLOWED_TRANSITION


def test_an_unknown_stage_is_rejected() -> None:
    result = rejected(empty(LEAD), moved(LEAD, at(1), "lead", "mqll"))

    assert result.rejection.reason is RejectReason.UNKNOWN_STAGE


def test_an_unknown_disqualification_reason_is_rejected() -> None:
    state = apply_all([created(LEAD, at(0))])

    result = rejected(state, disqualified(LEAD, at(1), "lead", "too_pushy"))

    assert result.rejection.reason is RejectReason.UNKNOWN_REASON_CODE


def test_a_transition_is_judged_by_the_event_alone_not_by_the_current_stage() -> None:
    # sal -> sql is allowed; the lead is in "lead" because the events between are still late.
    state = apply_all([created(LEAD, at(0)), moved(LEAD, at(9), "sal", "sql")])

    assert state.view.current_stage == "sql"
    assert state.view.stages[-1].from_stage == "lead"


def test_has_knows_every_accepted_id_and_no_other() -> None:
    events = [created(LEAD, at(0)), moved(LEAD, at(1), "lead", "mql")]
    state = apply_all(events)

    assert all(state.has(e.id) for e in events)
    assert not state.has("nope")


# --- ordering ---------------------------------------------------------------------------


def test_lead_created_sorts_first_among_events_at_the_same_instant() -> None:
    events = [touched(LEAD, at(0), id="a"), moved(LEAD, at(0), "lead", "mql", id="b")]
    first = created(LEAD, at(0), id="z")

    assert sorted([*events, first], key=order_key)[0] is first


def test_events_of_the_same_type_and_instant_sort_by_id() -> None:
    b, a = touched(LEAD, at(0), id="b"), touched(LEAD, at(0), id="a")

    assert sorted([b, a], key=order_key) == [a, b]


def test_an_event_after_every_accepted_event_is_in_order() -> None:
    state = apply_all([created(LEAD, at(0))])

    assert not applied(state, moved(LEAD, at(1), "lead", "mql")).out_of_order


def test_a_late_event_is_placed_by_event_time_and_flagged_out_of_order() -> None:
    state = apply_all([created(LEAD, at(0)), moved(LEAD, at(10), "mql", "sal")])

    result = applied(state, moved(LEAD, at(5), "lead", "mql"))

    assert result.out_of_order
    assert [s.stage for s in result.state.view.stages] == ["lead", "mql", "sal"]
    assert [e.time for e in result.state.events] == [at(0), at(5), at(10)]


def test_an_assignment_at_the_moment_of_a_move_sorts_after_the_move() -> None:
    state = apply_all([created(LEAD, at(0)), assigned(LEAD, at(5))])

    assert applied(state, moved(LEAD, at(5), "lead", "mql")).out_of_order


# --- stages -----------------------------------------------------------------------------


def test_lead_created_opens_the_first_stay_in_its_stage() -> None:
    view = apply_all([created(LEAD, at(0), "subscriber")]).view

    (span,) = view.stages
    assert (span.stage, span.team, span.entered_at, span.exited_at) == (
        "subscriber",
        "marketing",
        at(0),
        None,
    )
    assert (span.from_stage, span.reason, span.entered_via) == (
        None,
        None,
        view.stages[0].entered_via,
    )
    assert (view.created_at, view.current_stage, view.entered_current_at) == (
        at(0),
        "subscriber",
        at(0),
    )


def test_a_stage_change_closes_the_open_stay_and_opens_the_next() -> None:
    move = moved(LEAD, at(30), "lead", "mql", reason="score 80")
    view = apply_all([created(LEAD, at(0)), move]).view

    lead, mql = view.stages
    assert (lead.exited_at, lead.seconds) == (at(30), 1800.0)
    assert (mql.stage, mql.from_stage, mql.entered_via, mql.reason) == (
        "mql",
        "lead",
        move.id,
        "score 80",
    )
    assert mql.seconds is None
    assert (view.current_stage, view.entered_current_at) == ("mql", at(30))


def test_disqualification_moves_to_the_disqualified_stage_with_the_reason_code() -> None:
    view = apply_all([created(LEAD, at(0)), disqualified(LEAD, at(1), "lead", "spam")]).view

    assert (view.current_stage, view.stages[-1].reason, view.stages[-1].team) == (
        "disqualified",
        "spam",
        "sales",
    )


def test_recycling_moves_to_the_recycled_stage_with_its_reason() -> None:
    events = [
        created(LEAD, at(0), "mql"),
        moved(LEAD, at(1), "mql", "sal"),
        recycled(LEAD, at(2), "sal", "no project this year"),
    ]
    view = apply_all(events).view

    assert (view.current_stage, view.stages[-1].reason) == ("recycled", "no project this year")


def test_lead_created_after_an_earlier_stage_change_only_sets_created_at() -> None:
    view = apply_all([moved(LEAD, at(0), "lead", "mql"), created(LEAD, at(1))]).view

    assert [s.stage for s in view.stages] == ["mql"]
    assert view.created_at == at(1)


def test_a_stage_change_with_no_stay_before_it_opens_the_first_stay() -> None:
    view = apply_all([moved(LEAD, at(0), "lead", "mql")]).view

    assert [(s.from_stage, s.stage) for s in view.stages] == [(None, "mql")]
    assert view.created_at is None


def test_moving_into_the_stage_the_lead_is_in_is_a_new_visit() -> None:
    events = [
        created(LEAD, at(0)),
        moved(LEAD, at(1), "lead", "mql"),
        moved(LEAD, at(3), "nurture", "mql"),  # the mql -> nurture in between is still late
    ]
    view = apply_all(events).view

    assert [(s.from_stage, s.stage) for s in view.stages] == [
        (None, "lead"),
        ("lead", "mql"),
        ("mql", "mql"),
    ]


def test_the_latest_assignment_sets_owner_and_team() -> None:
    events = [
        created(LEAD, at(0)),
        assigned(LEAD, at(1), "rep-1", "sdr"),
        assigned(LEAD, at(2), "rep-2", "ae"),
    ]

    view = apply_all(events).view

    assert (view.owner_id, view.team) == ("rep-2", "ae")


def test_a_merge_records_the_surviving_lead() -> None:
    view = apply_all([created(LEAD, at(0)), merged(LEAD, at(1), "lead-9")]).view

    assert view.merged_into == "lead-9"


def test_touchpoints_contacts_and_deals_count_but_move_nothing() -> None:
    events = [
        created(LEAD, at(0)),
        touched(LEAD, at(1)),
        contacted(LEAD, at(2)),
        deal_created(LEAD, at(3)),
        deal_won(LEAD, at(4)),
    ]
    view = apply_all(events).view

    assert [s.stage for s in view.stages] == ["lead"]
    assert (view.event_count, view.first_event_at, view.last_event_at) == (5, at(0), at(4))


def test_highest_stage_keeps_the_highest_main_path_stage_after_a_regression() -> None:
    events = [
        created(LEAD, at(0), "mql"),
        moved(LEAD, at(1), "mql", "sal"),
        recycled(LEAD, at(2), "sal"),
        moved(LEAD, at(3), "recycled", "lead"),
    ]
    view = apply_all(events).view

    assert (view.current_stage, view.highest_stage) == ("lead", "sal")


def test_side_stages_never_count_as_the_highest_stage() -> None:
    view = apply_all([moved(LEAD, at(0), "lead", "nurture")]).view

    assert view.highest_stage is None


def test_first_and_last_event_times_follow_event_time_not_arrival() -> None:
    view = apply_all([touched(LEAD, at(5)), created(LEAD, at(0)), touched(LEAD, at(2), "c2")]).view

    assert (view.first_event_at, view.last_event_at, view.event_count) == (at(0), at(5), 3)


# --- fold -------------------------------------------------------------------------------


def test_fold_of_no_events_is_the_empty_state() -> None:
    assert fold(LEAD, [], FUNNEL) == empty(LEAD)


def test_fold_skips_duplicates_and_rejected_events_in_any_input_order() -> None:
    good = [created(LEAD, at(0)), moved(LEAD, at(1), "lead", "mql"), contacted(LEAD, at(2))]
    bad = [moved(LEAD, at(3), "mql", "customer"), created("lead-2", at(0))]

    folded = fold(LEAD, [good[2], *bad, good[1], good[0], good[1]], FUNNEL)

    assert folded == apply_all(good)
    assert folded.events == tuple(good)


def test_a_late_event_gives_the_same_state_as_the_history_in_order() -> None:
    events = [
        created(LEAD, at(0)),
        moved(LEAD, at(1), "lead", "mql"),
        moved(LEAD, at(2), "mql", "sal"),
    ]

    assert apply_all([events[2], events[0], events[1]]) == apply_all(events)


# --- changes ----------------------------------------------------------------------------


def test_a_move_reports_one_transition_and_the_exit_of_the_stay_it_ends() -> None:
    state = apply_all([created(LEAD, at(0))])
    move = moved(LEAD, at(10), "lead", "mql")

    changes = applied(state, move).changes

    assert changes.transitions == (Transition("lead", "mql", at(10), move.id),)
    assert changes.exits == (StageExit("lead", 600.0, move.id),)


def test_the_first_stay_is_reported_as_a_transition_from_nowhere() -> None:
    event = created(LEAD, at(0))

    changes = applied(empty(LEAD), event).changes

    assert changes.transitions == (Transition(None, "lead", at(0), event.id),)
    assert changes.exits == ()


def test_an_event_that_moves_nothing_reports_no_changes() -> None:
    state = apply_all([created(LEAD, at(0))])

    assert not applied(state, touched(LEAD, at(1))).changes


def test_a_late_event_that_splits_a_stay_reports_only_the_new_stay() -> None:
    # lead [0, 20) then mql; the late lead -> nurture at 5 splits the lead stay. The lead
    # exit was already counted with 20 minutes and is not counted again; the new nurture
    # stay is a new transition, and its exit (ended by the mql move) is a new exit.
    mql = moved(LEAD, at(20), "lead", "mql")
    state = apply_all([created(LEAD, at(0)), mql])
    late = moved(LEAD, at(5), "lead", "nurture")

    result = applied(state, late)

    assert result.changes.transitions == (Transition("lead", "nurture", at(5), late.id),)
    assert result.changes.exits == (StageExit("nurture", 900.0, mql.id),)
    assert result.state.view.stages[0].seconds == 300.0


def test_a_late_lead_created_reports_only_its_own_first_stay_and_its_exit() -> None:
    mql = moved(LEAD, at(2), "lead", "mql")
    state = apply_all([touched(LEAD, at(1)), mql])
    event = created(LEAD, at(0))

    changes = applied(state, event).changes

    assert changes.transitions == (Transition(None, "lead", at(0), event.id),)
    assert changes.exits == (StageExit("lead", 120.0, mql.id),)


def test_diff_of_a_view_with_itself_is_empty() -> None:
    view = apply_all([created(LEAD, at(0)), moved(LEAD, at(1), "lead", "mql")]).view

    assert not diff(view, view)


class _Pinged(EventData):
    """A payload type the projections have never heard of."""

    TYPE: ClassVar[str] = "lead.pinged"
    VERSION: ClassVar[int] = 1


def test_an_event_type_the_fold_does_not_know_is_counted_and_moves_nothing() -> None:
    ping = make_event(_Pinged(), id="p-1", subject=LEAD, source="test", time=at(1))

    view = apply_all([created(LEAD, at(0)), ping]).view

    assert (view.current_stage, view.event_count, view.last_event_at) == ("lead", 2, at(1))


def test_without_changes_apply_gives_the_same_state_in_order_and_late() -> None:
    from projections.changes import NO_CHANGES
    from projections.lead import Applied, apply

    state = apply_all([created(LEAD, at(0)), moved(LEAD, at(10), "mql", "sal")])
    for event in (moved(LEAD, at(20), "sal", "sql"), moved(LEAD, at(5), "lead", "mql")):
        full, bare = applied(state, event), apply(state, event, FUNNEL, changes=False)
        assert isinstance(bare, Applied)
        assert full.changes != NO_CHANGES, "both events change the stage: metrics see it"
        assert (bare.state, bare.out_of_order, bare.changes) == (
            full.state, full.out_of_order, NO_CHANGES,
        )  # fmt: skip
