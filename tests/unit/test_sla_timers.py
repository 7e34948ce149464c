"""The timer fold (which timers a history has) and the emission rule (what they fire when)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given

from events.codec import decode, encode
from events.envelope import Event
from events.sla_events import DERIVED_REGISTRY
from projections.lead import fold, order_key
from projections.sla import Timer, timers
from projections.sla_emit import TERMINAL, derived_event, derived_id, due, next_fire_at

from .factories import (
    LEAD,
    assigned,
    at,
    contacted,
    created,
    disqualified,
    merged,
    moved,
    recycled,
)
from .sla_support import RULES, run, tags
from .test_fold_properties import FAST, deliveries, journeys

BERLIN = ZoneInfo("Europe/Berlin")
FAR = at(days=90)
# T0 (factories) is Monday 2025-01-06 09:00 UTC = 10:00 in Berlin, inside business hours.
MQL = [created(LEAD, at(0)), moved(LEAD, at(1), "lead", "mql")]


def by_policy(events: list[Event], policy: str) -> list[Timer]:
    return [t for t in timers(fold(LEAD, events, RULES.funnel), RULES) if t.policy == policy]


# --- which timers a history has ---------------------------------------------------------------


def test_entering_mql_starts_the_handoff_and_stagnation_timers_named_after_the_event() -> None:
    found = timers(fold(LEAD, MQL, RULES.funnel), RULES)
    assert [t.policy for t in found] == ["mql_first_touch", "sal_decision", "mql_stagnation"]
    assert {t.cycle for t in found} == {MQL[1].id}
    assert all(t.outcome is None for t in found)


def test_first_touch_deadlines_follow_the_business_clock() -> None:
    friday_evening = datetime(2025, 1, 10, 18, 30, tzinfo=BERLIN)
    history = [created(LEAD, friday_evening, "mql")]
    (first,) = by_policy(history, "mql_first_touch")
    assert first.deadline == datetime(2025, 1, 13, 10, 0, tzinfo=BERLIN)
    assert first.warn_at == datetime(2025, 1, 13, 9, 15, tzinfo=BERLIN)
    assert first.escalate_at == (
        datetime(2025, 1, 13, 11, 0, tzinfo=BERLIN),
        datetime(2025, 1, 13, 14, 0, tzinfo=BERLIN),
    )
    (decision,) = by_policy(history, "sal_decision")
    assert decision.deadline == friday_evening + timedelta(hours=24), "24x7 clock"


def test_a_contact_stops_first_touch_but_not_the_sales_decision() -> None:
    history = [*MQL, assigned(LEAD, at(5)), contacted(LEAD, at(20))]
    (first,) = by_policy(history, "mql_first_touch")
    assert (first.outcome, first.stop_reason, first.stopped_at) == ("met", "contacted", at(20))
    assert first.owner_id == "rep-1"
    assert first.assigned_at == at(5)
    assert by_policy(history, "sal_decision")[0].outcome is None


def test_accepting_meets_both_handoff_timers_and_the_mql_stagnation_timer() -> None:
    history = [*MQL, moved(LEAD, at(30), "mql", "sal")]
    outcomes = {
        p: (t.outcome, t.stop_reason)
        for p in ("mql_first_touch", "sal_decision", "mql_stagnation")
        for t in by_policy(history, p)
    }
    assert outcomes == {
        "mql_first_touch": ("met", "accepted"),
        "sal_decision": ("met", "accepted"),
        "mql_stagnation": ("met", "progressed"),
    }


def test_rejecting_an_mql_is_a_sales_decision_so_it_meets_the_handoff_timers() -> None:
    history = [*MQL, disqualified(LEAD, at(30), "mql", "poor_fit")]
    assert [(t.outcome, t.stop_reason) for t in by_policy(history, "sal_decision")] == [
        ("met", "rejected")
    ]
    assert [(t.outcome, t.stop_reason) for t in by_policy(history, "mql_stagnation")] == [
        ("cancelled", "disqualified")
    ]


def test_marketing_taking_the_mql_back_cancels_the_handoff_timers() -> None:
    history = [*MQL, moved(LEAD, at(30), "mql", "nurture")]
    (first,) = by_policy(history, "mql_first_touch")
    assert (first.outcome, first.stop_reason) == ("cancelled", "withdrawn")


def test_a_merged_lead_has_every_running_timer_cancelled() -> None:
    history = [*MQL, merged(LEAD, at(30), "lead-2")]
    found = timers(fold(LEAD, history, RULES.funnel), RULES)
    assert {(t.outcome, t.stop_reason) for t in found} == {("cancelled", "merged")}


def test_a_second_mql_is_a_new_cycle() -> None:
    history = [
        *MQL,
        recycled(LEAD, at(30), "mql"),
        moved(LEAD, at(days=3), "recycled", "mql", id="again"),
    ]
    cycles = [(t.cycle, t.outcome) for t in by_policy(history, "mql_first_touch")]
    assert cycles == [(MQL[1].id, "met"), ("again", None)]


def sal(extra: list[Event]) -> list[Event]:
    return [*MQL, assigned(LEAD, at(2)), moved(LEAD, at(10), "mql", "sal"), *extra]


def test_contact_attempts_are_met_by_the_kth_contact_after_acceptance() -> None:
    history = sal([contacted(LEAD, at(days=1)), contacted(LEAD, at(days=2), id="c2")])
    (attempts,) = by_policy(history, "contact_attempts")
    assert (attempts.outcome, attempts.stopped_at) == ("met", at(days=2))
    assert attempts.assigned_at == at(10), "the lead was already owned when sales accepted it"


def test_contact_attempts_keep_running_when_the_lead_moves_on_and_cancel_on_a_side_stage() -> None:
    history = sal([moved(LEAD, at(hours=5), "sal", "sql")])
    assert by_policy(history, "contact_attempts")[0].outcome is None
    history.append(disqualified(LEAD, at(days=2), "sql", "no_budget"))
    (attempts,) = by_policy(history, "contact_attempts")
    assert (attempts.outcome, attempts.stop_reason) == ("cancelled", "disqualified")


def test_timers_depend_on_the_set_of_events_not_their_arrival_order() -> None:
    history = sal([contacted(LEAD, at(days=1)), moved(LEAD, at(days=2), "sal", "sql")])
    assert timers(fold(LEAD, history, RULES.funnel), RULES) == timers(
        fold(LEAD, reversed(history), RULES.funnel), RULES
    )


# --- what they fire, and when ---------------------------------------------------------------


def test_a_lead_touched_in_time_gets_started_and_met_only() -> None:
    _, fired = run([*MQL, contacted(LEAD, at(10))], until=FAR)
    assert tags(fired, "mql_first_touch") == ["started", "met"]


def test_a_lead_touched_after_the_warning_gets_warned_first() -> None:
    _, fired = run([*MQL, contacted(LEAD, at(40))], until=FAR)
    assert tags(fired, "mql_first_touch") == ["started", "warning", "met"]


def test_a_lead_touched_after_its_deadline_is_breached_first_then_met_with_its_lateness() -> None:
    _, fired = run([*MQL, contacted(LEAD, at(hours=2, minutes=31))], until=FAR)
    assert tags(fired, "mql_first_touch") == [
        "started",
        "warning",
        "breached",
        "escalated-1",
        "met",
    ]
    met = next(derived_event(t, f, RULES) for t, f in fired if f.tag == "met")
    assert met.data.lateness_seconds == 90 * 60  # type: ignore[attr-defined]
    assert met.data.elapsed_seconds == 150 * 60  # type: ignore[attr-defined]


def test_a_breach_fires_when_stream_time_passes_the_deadline_even_without_a_stop() -> None:
    rows, fired = run(MQL, until=at(62))
    assert tags(fired, "mql_first_touch") == ["started", "warning", "breached"]
    row = rows[("mql_first_touch", MQL[1].id)]
    assert row.status == "breached"
    assert row.next_fire_at == at(61) + timedelta(hours=1), "the first escalation is next"


def test_an_sql_disqualified_while_its_timer_runs_is_cancelled_not_breached() -> None:
    history = sal(
        [moved(LEAD, at(hours=1), "sal", "sql"), disqualified(LEAD, at(days=3), "sql", "no_budget")]
    )
    _, fired = run(history, until=FAR)
    assert tags(fired, "sql_stagnation") == ["started", "cancelled"]


def test_a_breached_timer_that_is_cancelled_later_keeps_its_breach() -> None:
    history = sal(
        [moved(LEAD, at(hours=1), "sal", "sql"), disqualified(LEAD, at(days=9), "sql", "no_budget")]
    )
    _, fired = run(history, until=FAR)
    assert tags(fired, "sql_stagnation") == ["started", "warning", "breached", "cancelled"]


def test_a_late_contact_after_the_breach_fired_is_met_with_negative_lateness() -> None:
    late = contacted(LEAD, at(30))
    _, fired = run([*MQL, assigned(LEAD, at(hours=3)), late])
    assert tags(fired, "mql_first_touch") == [
        "started", "warning", "breached", "escalated-1", "met",
    ]  # fmt: skip
    met = derived_event(*next((t, f) for t, f in fired if f.tag == "met"), RULES)
    assert met.data.lateness_seconds == -31 * 60  # type: ignore[attr-defined]


def test_the_delay_is_the_systems_until_the_lead_is_assigned() -> None:
    _, fired = run([*MQL, assigned(LEAD, at(70)), contacted(LEAD, at(80))], until=FAR)
    sides = {
        f.tag: derived_event(t, f, RULES).data.delay_side  # type: ignore[attr-defined]
        for t, f in fired
        if t.policy == "mql_first_touch"
    }
    assert sides == {"started": "system", "warning": "system", "breached": "system",
                     "met": "human"}  # fmt: skip


def test_stream_time_exactly_at_the_deadline_does_not_breach_yet() -> None:
    (timer,) = by_policy(MQL, "mql_first_touch")
    assert [f.tag for f in due(timer, frozenset({"started", "warning"}), timer.deadline)] == []
    assert next_fire_at(timer, frozenset({"started", "warning"})) == timer.deadline


def test_a_stop_exactly_at_the_deadline_meets_the_sla() -> None:
    (open_timer,) = by_policy(MQL, "mql_first_touch")
    _, fired = run([*MQL, contacted(LEAD, open_timer.deadline)], until=FAR)
    assert tags(fired, "mql_first_touch") == ["started", "warning", "met"]


def test_derived_events_have_deterministic_ids_and_their_threshold_as_time() -> None:
    _, fired = run(MQL, until=FAR)
    breach = next(derived_event(t, f, RULES) for t, f in fired if f.tag == "breached")
    assert breach.id == f"sla/{LEAD}/mql_first_touch/{MQL[1].id}/breached"
    assert (breach.type, breach.source, breach.subject) == (
        "sla.breached",
        "leadledger/processor",
        LEAD,
    )
    assert breach.time == breach.data.deadline == at(61)  # type: ignore[attr-defined]
    assert breach.data.elapsed_seconds == 3600  # type: ignore[attr-defined]


def test_an_id_that_would_be_too_long_is_a_digest() -> None:
    (timer,) = by_policy(MQL, "mql_first_touch")
    long = replace(timer, cycle="c" * 120)
    text = derived_id(long, "breached")
    assert len(text) <= 128
    assert text == derived_id(long, "breached") != derived_id(timer, "breached")


def test_nothing_is_due_twice() -> None:
    rows, _ = run([*MQL, contacted(LEAD, at(hours=3))], until=FAR)
    for row in rows.values():
        assert due(row.timer, row.emitted, FAR + timedelta(days=400)) == ()


def test_times_are_utc_instants() -> None:
    (timer,) = by_policy(MQL, "mql_first_touch")
    assert timer.deadline.utcoffset() == timedelta(0)
    assert timer.deadline.tzinfo is not None
    assert timer.deadline == datetime(2025, 1, 6, 10, 1, tzinfo=UTC)


# --- properties over random journeys ------------------------------------------------------


def oracle(timer: Timer) -> set[str]:
    """What a timer must have emitted once stream time is past everything: read off its facts."""

    def running_at(t: datetime) -> bool:
        return timer.stopped_at is None or timer.stopped_at > t

    out = {"started"}
    out |= {"warning"} if running_at(timer.warn_at) else set()
    out |= {"breached"} if running_at(timer.deadline) else set()
    out |= {f"escalated-{i}" for i, t in enumerate(timer.escalate_at, 1) if running_at(t)}
    return out | ({timer.outcome} if timer.outcome else set())


def emitted_by_timer(events: list[Event]) -> dict[tuple[str, str], frozenset[str]]:
    rows, _ = run(events, until=FAR + timedelta(days=400))
    return {key: row.emitted for key, row in rows.items()}


@FAST
@given(journeys())
def test_in_event_time_order_a_timer_emits_exactly_what_its_facts_say(journey: list[Event]) -> None:
    # order_key order: at one instant a move sorts before contacts, whatever the list says.
    rows, _ = run(sorted(journey, key=order_key), until=FAR + timedelta(days=400))
    for row in rows.values():
        assert row.emitted == oracle(row.timer), row.timer
        t = row.timer
        assert t.started_at <= t.warn_at <= t.deadline <= min(t.escalate_at, default=t.deadline)
        assert t.stopped_at is None or t.stopped_at >= t.started_at


@FAST
@given(deliveries())
def test_late_arrivals_can_add_warnings_and_breaches_but_never_lose_one(
    delivery: tuple[list[Event], list[Event]],
) -> None:
    # A late event can also end a timer differently than first reported (met, then a late
    # withdrawal that sorts before it): facts are emitted once and never retracted, so the
    # first terminal fact stands. Exactly one is emitted either way.
    journey, arrival = delivery
    accepted = [e for e in arrival if e.id in {j.id for j in journey}]
    in_order = emitted_by_timer(sorted(journey, key=order_key))
    shuffled = emitted_by_timer(accepted)
    assert in_order.keys() == shuffled.keys()
    for key, tags_ in in_order.items():
        assert tags_ - TERMINAL <= shuffled[key] - TERMINAL, key
        assert len(tags_ & TERMINAL) == len(shuffled[key] & TERMINAL) <= 1, key


def test_every_kind_of_derived_event_decodes_with_full_validation() -> None:
    # derived_event skips validation for speed; the consumers' decoder must accept them all.
    history = [*MQL, contacted(LEAD, at(hours=3)), moved(LEAD, at(hours=4), "mql", "nurture")]
    _, fired = run(history, until=FAR)
    events = [derived_event(t, f, RULES) for t, f in fired]
    assert {e.type for e in events} == {
        "sla.started", "sla.warning", "sla.breached", "sla.escalated", "sla.met", "sla.cancelled",
    }  # fmt: skip
    for event in events:
        assert decode(encode(event), DERIVED_REGISTRY) == event


def test_derived_events_are_built_exactly_as_model_construct_builds_them() -> None:
    # derived_event fills the models' __dict__ itself (model_construct's lookups cost too
    # much per event); a model built either way must be the same, field order included.
    history = [*MQL, contacted(LEAD, at(hours=3)), moved(LEAD, at(hours=4), "mql", "nurture")]
    _, fired = run(history, until=FAR)
    for timer, firing in fired:
        event = derived_event(timer, firing, RULES)
        data = event.data
        fields = {k: v for k, v in data.__dict__.items() if k in data.model_fields_set}
        reference_data = type(data).model_construct(**fields)
        given = {k: v for k, v in event.__dict__.items() if k in event.model_fields_set}
        reference = Event.model_construct(**{**given, "data": reference_data})
        for built, expected in ((data, reference_data), (event, reference)):
            assert type(built) is type(expected)
            assert list(built.__dict__.items()) == list(expected.__dict__.items())
            assert built.model_fields_set == expected.model_fields_set
            assert built.__pydantic_extra__ == expected.__pydantic_extra__
            assert built.__pydantic_private__ == expected.__pydantic_private__
        assert encode(event) == encode(reference)
        assert "specversion" not in event.model_fields_set, "defaults stay unset, as before"
