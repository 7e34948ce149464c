"""check_against_funnel: judging one event against the funnel, without looking at others."""

from __future__ import annotations

import pytest

from events.envelope import Event
from events.errors import RejectReason
from events.validation import check_against_funnel

from .factories import (
    FUNNEL,
    LEAD,
    assigned,
    at,
    contacted,
    created,
    deal_won,
    disqualified,
    merged,
    moved,
    recycled,
    touched,
)


@pytest.mark.parametrize(
    "event",
    [
        created(LEAD, at(0), "subscriber"),
        created(LEAD, at(0), "mql"),
        moved(LEAD, at(0), "lead", "mql"),
        moved(LEAD, at(0), "mql", "sal"),
        moved(LEAD, at(0), "opportunity", "customer"),
        disqualified(LEAD, at(0), "sal", "no_budget"),
        recycled(LEAD, at(0), "disqualified"),
        assigned(LEAD, at(0)),
        contacted(LEAD, at(0)),
        touched(LEAD, at(0)),
        deal_won(LEAD, at(0)),
        merged(LEAD, at(0), "lead-2"),
    ],
    ids=lambda e: e.id,
)
def test_an_event_that_fits_the_funnel_passes(event: Event) -> None:
    assert check_against_funnel(event, FUNNEL) is None


@pytest.mark.parametrize(
    ("event", "loc"),
    [
        (moved(LEAD, at(0), "lead", "customer"), "data.to_stage"),
        (moved(LEAD, at(0), "sal", "mql"), "data.to_stage"),
        (moved(LEAD, at(0), "mql", "mql"), "data.to_stage"),
        (recycled(LEAD, at(0), "customer"), "data.to_stage"),
        (disqualified(LEAD, at(0), "customer"), "data.to_stage"),
        (created(LEAD, at(0), "sal"), "data.stage"),
    ],
    ids=lambda v: v.id if isinstance(v, Event) else v,
)
def test_a_transition_the_funnel_does_not_allow_is_rejected(event: Event, loc: str) -> None:
    rejection = check_against_funnel(event, FUNNEL)

    assert rejection is not None
    assert rejection.reason is RejectReason.DISALLOWED_TRANSITION
    assert [e.loc for e in rejection.errors] == [loc]


def test_a_disallowed_transition_lists_what_is_allowed() -> None:
    rejection = check_against_funnel(moved(LEAD, at(0), "lead", "customer"), FUNNEL)

    assert rejection is not None
    assert "mql, nurture, disqualified" in rejection.errors[0].msg
    assert "lead -> customer" in rejection.detail


@pytest.mark.parametrize(
    ("event", "loc"),
    [
        (moved(LEAD, at(0), "lead", "mqll"), "data.to_stage"),
        (moved(LEAD, at(0), "leed", "mql"), "data.from_stage"),
        (recycled(LEAD, at(0), "gone"), "data.from_stage"),
        (disqualified(LEAD, at(0), "gone"), "data.from_stage"),
        (created(LEAD, at(0), "prospect"), "data.stage"),
    ],
    ids=lambda v: v.id if isinstance(v, Event) else v,
)
def test_an_unknown_stage_is_rejected_with_the_field(event: Event, loc: str) -> None:
    rejection = check_against_funnel(event, FUNNEL)

    assert rejection is not None
    assert rejection.reason is RejectReason.UNKNOWN_STAGE
    assert [e.loc for e in rejection.errors] == [loc]


def test_an_unknown_disqualification_reason_code_is_rejected() -> None:
    rejection = check_against_funnel(disqualified(LEAD, at(0), "sal", "too_pushy"), FUNNEL)

    assert rejection is not None
    assert rejection.reason is RejectReason.UNKNOWN_REASON_CODE
    assert [e.loc for e in rejection.errors] == ["data.reason_code"]
    assert "poor_fit" in rejection.errors[0].msg


def test_the_reason_code_is_checked_before_the_transition() -> None:
    rejection = check_against_funnel(disqualified(LEAD, at(0), "customer", "too_pushy"), FUNNEL)

    assert rejection is not None
    assert rejection.reason is RejectReason.UNKNOWN_REASON_CODE


@pytest.mark.parametrize(
    ("to", "kind"), [("disqualified", "lead.disqualified"), ("recycled", "lead.recycled")]
)
def test_a_plain_stage_change_into_a_regression_stage_must_use_its_reasoned_event(
    to: str, kind: str
) -> None:
    rejection = check_against_funnel(moved(LEAD, at(0), "mql", to), FUNNEL)

    assert rejection is not None
    assert rejection.reason is RejectReason.DISALLOWED_TRANSITION
    assert kind in rejection.detail
