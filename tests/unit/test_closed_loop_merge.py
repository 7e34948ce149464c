"""Duplicate pairs by email key and the merged survivor's history, both order-independent."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalog import LeadCreated
from events.envelope import Event, make_event
from projections.closed_loop.duplicates import all_pairs, holdings, pair, pairs_with
from projections.closed_loop.merge import merged_into, merged_state
from projections.lead import fold
from tests.unit.factories import (
    FUNNEL,
    SOURCE,
    assigned,
    at,
    contacted,
    merged,
    moved,
    touched,
)

KEY_A = "ek1:" + "a" * 64
KEY_B = "ek1:" + "b" * 64


def keyed(lead: str, when: datetime, key: str | None, stage: str = "lead") -> Event:
    return make_event(
        LeadCreated(stage=stage, email_key=key), id=f"{lead}/created", subject=lead,
        source=SOURCE, time=when,
    )  # fmt: skip


def test_a_lead_holds_the_key_of_its_earliest_created_event() -> None:
    found = holdings("L1", [keyed("L1", at(5), KEY_A)])
    assert found[KEY_A].first_seen == at(5)
    assert holdings("L1", [keyed("L1", at(5), None)]) == {}


def test_the_earlier_lead_is_the_original_whatever_order_they_come_in() -> None:
    a = holdings("L-new", [keyed("L-new", at(9), KEY_A)])[KEY_A]
    b = holdings("L-old", [keyed("L-old", at(1), KEY_A)])[KEY_A]
    assert pair(a, b) == pair(b, a)
    assert (pair(a, b).original.lead_id, pair(a, b).duplicate.lead_id) == ("L-old", "L-new")
    assert pair(a, b).id == "closedloop/duplicate/L-old/L-new"


def test_a_new_holder_pairs_with_every_other_holder_but_itself() -> None:
    holders = {
        lid: holdings(lid, [keyed(lid, at(i), KEY_A)])[KEY_A] for i, lid in enumerate(["L1", "L2"])
    }
    new = holdings("L3", [keyed("L3", at(7), KEY_A)])[KEY_A]
    assert [(p.original.lead_id, p.duplicate.lead_id) for p in pairs_with(new, holders)] == [
        ("L1", "L3"), ("L2", "L3"),
    ]  # fmt: skip
    assert pairs_with(holders["L1"], holders) == (pairs_with(holders["L1"], {"L2": holders["L2"]}))


def test_all_pairs_are_the_ground_truth_of_a_set_of_histories() -> None:
    histories = {
        "L1": [keyed("L1", at(0), KEY_A)],
        "L2": [keyed("L2", at(3), KEY_A)],
        "L3": [keyed("L3", at(1), KEY_B)],
        "L4": [keyed("L4", at(2), None)],
    }
    assert all_pairs(histories) == {("L1", "L2")}


SURVIVOR, DUP = "S", "D"
SURVIVOR_HISTORY = [
    keyed(SURVIVOR, at(0), KEY_A),
    touched(SURVIVOR, at(0), "cmp-a"),
    moved(SURVIVOR, at(10), "lead", "mql"),
    assigned(SURVIVOR, at(12)),
]
DUP_HISTORY = [
    touched(DUP, at(5), "cmp-b"),
    keyed(DUP, at(6), KEY_A),
    moved(DUP, at(20), "lead", "mql"),
    contacted(DUP, at(25)),
    merged(DUP, at(30), SURVIVOR),
]


def test_the_survivor_folds_both_histories_in_event_time_order() -> None:
    result = merged_state(SURVIVOR, {SURVIVOR: SURVIVOR_HISTORY, DUP: DUP_HISTORY}, FUNNEL)
    state = result.state
    times = [e.time for e in state.events]
    assert times == sorted(times)
    assert {result.origin[e.id] for e in state.events} == {SURVIVOR, DUP}
    assert len(state.events) == len(SURVIVOR_HISTORY) + len(DUP_HISTORY) - 1, "merge left out"
    # The duplicate's creation moves nothing: the survivor already had a stage.
    assert [s.stage for s in state.view.stages] == ["lead", "mql", "mql"]
    assert state.view.merged_into is None, "the survivor is not itself merged"
    assert state.view.handoffs[-1].action == "contacted"
    assert state.view.created_at == at(0)


def test_a_survivor_without_merged_leads_is_its_own_fold() -> None:
    result = merged_state(SURVIVOR, {SURVIVOR: SURVIVOR_HISTORY}, FUNNEL)
    assert result.state == fold(SURVIVOR, SURVIVOR_HISTORY, FUNNEL)


def test_chains_of_merges_are_followed_and_cycles_cut() -> None:
    merges = {"B": "A", "C": "B", "A": "C", "X": "Y"}
    assert merged_into("A", merges) == ("B", "C")
    assert merged_into("Y", merges) == ("X",)
    assert merged_into("Z", merges) == ()


@settings(max_examples=60, deadline=None)
@given(st.permutations(SURVIVOR_HISTORY + DUP_HISTORY), st.booleans())
def test_the_merged_survivor_does_not_depend_on_arrival_order(
    arrival: list[Event], duplicated: bool
) -> None:
    """However the events arrived (and were split between the two leads' archives, each lead
    keeping its own), and even with redeliveries, the merged state is the same."""
    histories: dict[str, list[Event]] = {SURVIVOR: [], DUP: []}
    for event in arrival + (arrival[:3] if duplicated else []):
        histories[event.subject].append(event)
    expected = merged_state(SURVIVOR, {SURVIVOR: SURVIVOR_HISTORY, DUP: DUP_HISTORY}, FUNNEL)
    assert merged_state(SURVIVOR, histories, FUNNEL) == expected
