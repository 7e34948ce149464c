"""What a parallel replay puts together across its workers (``services.replay.parallel``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from projections.closed_loop.duplicates import Holder, pair
from services.replay.parallel_merge import Folded, cross_pairs, first_lead_credits, overlap

T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)


def holder(lead: str, key: str, minutes: int) -> Holder:
    return Holder(T0 + timedelta(minutes=minutes), lead, key, f"e-{lead}")


def folded(leads: set[str], event_ids: set[str]) -> Folded:
    return Folded(0, 0, 0, 0.0, None, leads, event_ids, {}, {})


def test_cross_pairs_are_the_pairs_whose_holders_sit_in_different_workers() -> None:
    a1, a2 = holder("A1", "k", 5), holder("A2", "k", 1)
    b1, c1 = holder("B1", "k", 3), holder("C1", "other", 0)
    one = {"k": {"A1": a1, "A2": a2}, "other": {"C1": c1}}
    two = {"k": {"B1": b1}}
    pairs = cross_pairs([one, two])
    # A1-A2 is the first worker's own pair: it found it itself.
    assert {(p.original.lead_id, p.duplicate.lead_id) for p in pairs} == {
        ("B1", "A1"),
        ("A2", "B1"),
    }
    assert pair(a1, b1) in pairs


@given(
    st.lists(
        st.tuples(
            st.sampled_from("ABCDEFGH"),
            st.sampled_from("xyz"),
            st.integers(0, 9),
            st.integers(0, 2),
        ),
        max_size=20,
    )
)
def test_own_pairs_plus_cross_pairs_are_every_pair_of_one_process(
    held: list[tuple[str, str, int, int]],
) -> None:
    by_worker: list[dict[str, dict[str, Holder]]] = [{}, {}, {}]
    everyone: dict[str, dict[str, Holder]] = {}
    for lead, key, minutes, worker in held:
        lead_id = f"{lead}{worker}"  # a lead sits in one worker only
        h = holder(lead_id, key, minutes)
        by_worker[worker].setdefault(key, {}).setdefault(lead_id, h)
        everyone.setdefault(key, {}).setdefault(lead_id, by_worker[worker][key][lead_id])
    own = {pair(a, b) for ids in by_worker for hs in ids.values()
           for a in hs.values() for b in hs.values() if a.lead_id < b.lead_id}  # fmt: skip
    alone = {pair(a, b) for hs in everyone.values()
             for a in hs.values() for b in hs.values() if a.lead_id < b.lead_id}  # fmt: skip
    assert own | set(cross_pairs(by_worker)) == alone


def test_a_deal_credited_on_two_leads_keeps_the_first_lead_in_lead_id_order() -> None:
    rows = [
        ("W", 1, "D-1", "L-9", "t1", "c", "web", "first", "won", "EUR", 1, 100),
        ("W", 1, "D-1", "L-2", "t2", "c", "web", "first", "won", "EUR", 1, 100),
        ("W", 1, "D-1", "L-2", "t3", "c", "web", "last", "won", "EUR", 1, 100),
        ("linear", 1, "D-1", "L-9", "t1", "c", "web", "first", "won", "EUR", 1, 100),
        ("W", 1, "D-2", "L-9", "t4", "c", "web", "first", "won", "EUR", 1, 50),
    ]
    kept = first_lead_credits(rows)
    assert [(r[0], r[2], r[3], r[4]) for r in kept] == [
        ("W", "D-1", "L-2", "t2"), ("W", "D-1", "L-2", "t3"), ("linear", "D-1", "L-9", "t1"),
        ("W", "D-2", "L-9", "t4"),
    ]  # fmt: skip


def test_a_lead_or_an_event_id_in_two_workers_sends_the_replay_back_to_one_process() -> None:
    assert overlap([folded({"L-1"}, {"e1"}), folded({"L-2"}, {"e2"})]) is None
    lead = overlap([folded({"L-1", "L-3"}, {"e1"}), folded({"L-3"}, {"e2"})])
    assert lead == "lead 'L-3' has records on partitions of two workers"
    event = overlap([folded({"L-1"}, {"e1"}), folded({"L-2"}, {"e1"})])
    assert event == "event id 'e1' was accepted on partitions of two workers"
