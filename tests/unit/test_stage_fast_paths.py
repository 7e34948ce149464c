"""The processor stage's fast paths agree with the plain definitions they stand in for.

``LeadState`` keeps a set of ids only for long histories and ``apply`` scans short ones;
``pseudonymize`` copies the event without pydantic's ``model_copy``; the pipeline tests
``check_intake``'s conditions inline and calls it only for a record that fails one. Each must
decide exactly what the plain version decides.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalog import LeadCreated
from events.codec import encode
from events.envelope import Event, make_event
from events.errors import RejectReason
from events.validation import check_against_funnel
from projections.closed_loop.duplicates import DuplicatePair, Holder, holdings, pairs_with
from projections.closed_loop.email import email_key
from projections.closed_loop.privacy import pseudonymize
from projections.intake import check_intake
from projections.lead import SCAN_IDS, Applied, LeadState, Rejected, apply, empty, fold
from services.processor.closed_loop import ClosedLoopEngine
from services.processor.pipeline import BatchPipeline, Limits
from services.processor.records import Record

from .factories import (
    FUNNEL,
    LEAD,
    SOURCE,
    assigned,
    at,
    contacted,
    created,
    disqualified,
    merged,
    moved,
    recycled,
    touched,
)
from .test_pipeline import TOPIC, InMemoryStore, RecordingDeadLetters

FAST = settings(max_examples=40, deadline=None)


def _history(n: int) -> list[Event]:
    return [created(LEAD, at(0), id="e000")] + [
        touched(LEAD, at(i), id=f"e{i:03d}") for i in range(1, n)
    ]


def test_a_history_keeps_a_set_of_its_ids_only_beyond_the_scan_length() -> None:
    for n in range(SCAN_IDS - 1, SCAN_IDS + 3):
        events = _history(n)
        folded = fold(LEAD, events, FUNNEL)
        state = empty(LEAD)
        for event in events:
            result = apply(state, event, FUNNEL)
            assert isinstance(result, Applied)
            state = result.state
        for s in (folded, state):
            assert (s.id_set is None) == (n <= SCAN_IDS)
            assert s.ids == frozenset(e.id for e in events)
            assert all(s.has(e.id) for e in events)
            assert not s.has("e999")
        assert state == folded


def test_a_repeated_id_is_a_duplicate_at_every_history_length() -> None:
    # The repeat differs in time and payload: duplicates are recognised by id alone.
    for n in range(1, SCAN_IDS + 3):
        events = _history(n)
        state = fold(LEAD, events, FUNNEL)
        for repeated in (events[0].id, events[-1].id):
            again = touched(LEAD, at(500), id=repeated)
            result = apply(state, again, FUNNEL)
            assert isinstance(result, Rejected)
            assert result.rejection.reason is RejectReason.DUPLICATE


@FAST
@given(st.integers(1, 2 * SCAN_IDS), st.randoms(use_true_random=False))
def test_any_arrival_order_with_repeats_gives_the_fold_across_the_scan_length(
    n: int, rng: random.Random
) -> None:
    events = _history(n)
    arrival = events * 2
    rng.shuffle(arrival)
    state = empty(LEAD)
    for event in arrival:
        result = apply(state, event, FUNNEL)
        if isinstance(result, Applied):
            state = result.state
            assert state.ids == frozenset(e.id for e in state.events)
    assert state == fold(LEAD, events, FUNNEL)
    assert state.ids == frozenset(e.id for e in events)


#: Every stage of the funnel plus one it does not know, for random moves.
_STAGES = [*FUNNEL.stages, "nowhere"]


def _any_event(rng: random.Random, minute: int) -> Event:
    frm, to = rng.choice(_STAGES), rng.choice(_STAGES)
    when = at(minute)
    choice = rng.randrange(8)
    if choice == 0:
        return moved(LEAD, when, frm, to)
    if choice == 1:
        return created(LEAD, when, to)
    if choice == 2:
        return disqualified(LEAD, when, frm, rng.choice(["poor_fit", "no_such_code"]))
    if choice == 3:
        return recycled(LEAD, when, frm)
    if choice == 4:
        return assigned(LEAD, when)
    if choice == 5:
        return contacted(LEAD, when)
    if choice == 6:
        return touched(LEAD, when)
    return merged(LEAD, when, "lead-2")


@FAST
@given(st.randoms(use_true_random=False))
def test_apply_accepts_exactly_what_check_against_funnel_accepts(rng: random.Random) -> None:
    # ``apply`` tests the common cases of ``check_against_funnel`` inline; a fresh lead has
    # no duplicate to find, so the funnel alone decides.
    for minute in range(60):
        event = _any_event(rng, minute)
        result = apply(empty(LEAD), event, FUNNEL)
        expected = check_against_funnel(event, FUNNEL)
        if expected is None:
            assert isinstance(result, Applied)
        else:
            assert isinstance(result, Rejected)
            assert result.rejection == expected


@FAST
@given(st.randoms(use_true_random=False))
def test_applying_random_events_one_by_one_gives_the_fold_of_them(rng: random.Random) -> None:
    # In and out of order, accepted and rejected, duplicates included: the incremental path
    # (``step_fields`` and ``appended``) must end where the plain fold from scratch ends.
    events = [_any_event(rng, rng.randrange(30)) for _ in range(40)]
    arrival = [*events, *rng.sample(events, 5)]
    state = empty(LEAD)
    for event in arrival:
        result = apply(state, event, FUNNEL)
        if isinstance(result, Applied):
            state = result.state
    assert state == fold(LEAD, arrival, FUNNEL)


def test_pseudonymize_builds_what_pydantic_s_model_copy_builds() -> None:
    rules, key = FUNNEL.closed_loop.email, b"k"
    event = make_event(
        LeadCreated(stage="lead", email="John.Doe+x@Gmail.com", company="Acme"),
        id="e1", subject=LEAD, source=SOURCE, time=at(0),
    )  # fmt: skip
    update = {"email": None, "email_key": email_key("John.Doe+x@Gmail.com", rules, key)}
    plain = event.model_copy(update={"data": event.data.model_copy(update=update)})

    keyed = pseudonymize(event, rules, key)

    for built, expected in ((keyed, plain), (keyed.data, plain.data)):
        assert type(built) is type(expected)
        assert built.__dict__ == expected.__dict__
        assert built.__pydantic_fields_set__ == expected.__pydantic_fields_set__
        assert built.__pydantic_extra__ is expected.__pydantic_extra__ is None
        assert built.__pydantic_private__ is expected.__pydantic_private__ is None
    assert keyed == plain
    assert encode(keyed) == encode(plain)
    assert keyed.model_dump(exclude_unset=True) == plain.model_dump(exclude_unset=True)
    assert isinstance(event.data, LeadCreated)
    assert event.data.email == "John.Doe+x@Gmail.com", "the decoded event is left as it was"


SKEW = timedelta(minutes=5)
LATENESS = timedelta(days=7)
BROKER = at(days=30)


@FAST
@given(
    st.lists(
        st.tuples(
            # event time relative to its broker time, in seconds: around the skew limit
            st.sampled_from([-LATENESS.total_seconds() - 1, -60, 0, 299, 300, 300.000001, 301]),
            # broker timestamps of one batch: shared, or a few milliseconds apart
            st.integers(0, 3),
            st.sampled_from([LEAD.encode(), b"", None, b"lead-2"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_pipeline_rejects_a_record_for_the_reason_check_intake_gives(
    cases: list[tuple[float, int, bytes | None]],
) -> None:
    store = InMemoryStore()
    dead = RecordingDeadLetters(store)
    pipe = BatchPipeline(TOPIC, FUNNEL, store, dead, Limits(SKEW, LATENESS), retry_delay=0)
    records: list[Record] = []
    expected: list[RejectReason | None] = []
    stream = None
    for offset, (seconds, ms, key) in enumerate(cases):
        broker = BROKER + timedelta(milliseconds=ms)
        event = touched(LEAD, broker + timedelta(seconds=seconds), id=f"t{offset}")
        broker_ms = int(BROKER.timestamp() * 1000) + ms
        records.append(Record(TOPIC, 0, offset, key, encode(event), broker_ms))
        # The reference: check_intake with the stream time of the events before it.
        rejection = check_intake(
            event, key, records[-1].broker_time, stream,
            max_future_skew=SKEW, allowed_lateness=LATENESS,
        )  # fmt: skip
        expected.append(None if rejection is None else rejection.reason)
        if rejection is None:
            stream = event.time if stream is None else max(stream, event.time)

    outcome = asyncio.run(pipe.process(records))

    got: list[RejectReason | None] = [None] * len(records)
    for rejected in outcome.rejected:
        got[rejected.record.offset] = rejected.rejection.reason
    assert got == expected
    # Only touchpoints without a creation: every one that passes intake is accepted.
    assert len(outcome.accepted) == expected.count(None)


def test_a_state_has_no_id_set_until_it_outgrows_the_scan_length() -> None:
    state = LeadState(lead_id=LEAD, events=tuple(_history(SCAN_IDS + 1)), view=empty(LEAD).view)
    assert state.id_set == frozenset(state.ids)
    assert empty(LEAD).id_set is None


def test_a_short_history_indexes_its_ids_in_event_order_and_a_long_one_in_a_set() -> None:
    for n in range(SCAN_IDS + 3):
        events = _history(n)
        state = empty(LEAD)
        for event in events:
            result = apply(state, event, FUNNEL)
            assert isinstance(result, Applied)
            state = result.state
        expected = tuple(e.id for e in events)
        for s in (state, fold(LEAD, events, FUNNEL)):
            assert s.id_index == (expected if n <= SCAN_IDS else frozenset(expected))


def _register_by_holdings(
    holders: dict[str, dict[str, Holder]], before: LeadState, after: LeadState
) -> list[tuple[Holder, tuple[DuplicatePair, ...]]]:
    # What ``ClosedLoopEngine._register`` did before it walked only ``before``: compare the
    # holdings of both histories and register every key new to the lead.
    out = []
    old = holdings(before.lead_id, before.events)
    for key, holder in holdings(after.lead_id, after.events).items():
        if key in old:
            continue
        others = holders.setdefault(key, {})
        out.append((holder, pairs_with(holder, others)))
        others[after.lead_id] = holder
    return out


@FAST
@given(st.randoms(use_true_random=False))
def test_the_closed_loop_registers_the_holders_that_comparing_holdings_registers(
    rng: random.Random,
) -> None:
    # Several leads, each with a few ``lead.created`` (keyed, unkeyed, repeated keys) among
    # other events, in a random arrival order: the engine's registrations and pairs are
    # those of the plain comparison of holdings before and after each accepted event.
    keys = ["ek1:" + c * 64 for c in "abc"]
    leads = ["L1", "L2", "L3"]
    events = []
    for i in range(30):
        lead, when = rng.choice(leads), at(rng.randrange(20))
        if rng.random() < 0.6:
            key = rng.choice([*keys, None])
            data = LeadCreated(stage="lead", email_key=key)
            events.append(make_event(data, id=f"{lead}/c{i}", subject=lead, source=SOURCE,
                                     time=when))  # fmt: skip
        else:
            events.append(touched(lead, when, id=f"{lead}/t{i}"))
    engine = ClosedLoopEngine(FUNNEL, b"k")
    states = {lead: empty(lead) for lead in leads}
    reference: dict[str, dict[str, Holder]] = {}
    expected_holders: list[Holder] = []
    expected_pairs: list[DuplicatePair] = []
    for event in events:
        before = states[event.subject]
        result = apply(before, event, FUNNEL)
        if not isinstance(result, Applied):
            continue
        engine.applied(before, result.state, event)
        for holder, pairs in _register_by_holdings(reference, before, result.state):
            expected_holders.append(holder)
            expected_pairs.extend(pairs)
        states[event.subject] = result.state
    out = engine.drain()
    assert out.holders == expected_holders
    assert out.pairs == expected_pairs
