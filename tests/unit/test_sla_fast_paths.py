"""The SLA path's fast paths give exactly what the plain code gave: the clock walked once for
all of a timer's thresholds, the emission rule, rows with their next threshold computed once,
derived events built straight into their fields, and months formatted once."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.codec import encode
from events.envelope import Event
from events.sla_config import StopRule
from projections import sla_emit
from projections.sla import Policy, Timer, _thresholds
from projections.sla_clock import AlwaysOn, BusinessHours
from projections.sla_emit import TimerRow, derived_event, due, fire, next_fire_at, timer_row
from projections.sla_volume import month_of
from services.processor.derived import encoded
from services.store.sla_rows import row_values

from . import sla_emit_reference as plain
from .sla_support import RULES, run
from .test_fold_properties import journeys
from .test_sla_clock import CLOCKS, instants

PROPS = settings(max_examples=150, deadline=None)
some_limits = st.lists(
    st.timedeltas(min_value=timedelta(hours=-2), max_value=timedelta(days=30)), max_size=5
)


@PROPS
@given(clock=st.sampled_from(CLOCKS), start=instants, limits=some_limits)
def test_all_deadlines_of_one_start_are_each_limit_s_deadline(
    clock: BusinessHours | AlwaysOn, start: datetime, limits: list[timedelta]
) -> None:
    expected = tuple(plain.deadline(clock, start, limit) for limit in limits)
    assert clock.deadlines(start, limits) == expected
    assert tuple(clock.deadline(start, limit) for limit in limits) == expected


@PROPS
@given(clock=st.sampled_from(CLOCKS), points=st.lists(instants, min_size=2, max_size=2))
def test_elapsed_time_is_what_the_plain_walk_counts(
    clock: BusinessHours | AlwaysOn, points: list[datetime]
) -> None:
    start, end = points
    assert clock.elapsed(start, end) == plain.elapsed(clock, start, end)


def test_a_clock_s_caches_take_no_part_in_its_equality_hash_or_repr() -> None:
    weekly = (((time(9), time(17)),),) * 5 + ((), ())
    used, fresh = (BusinessHours("b", "Europe/Berlin", weekly, frozenset()) for _ in range(2))
    used.deadline(datetime(2026, 3, 6, 16, tzinfo=UTC), timedelta(hours=3))
    assert used == fresh
    assert hash(used) == hash(fresh)
    assert repr(used) == repr(fresh)


ALWAYS_ON_WITH_ESCALATIONS = Policy(
    name="p", start_stage="mql", stop=StopRule.LEAVE_STAGE, contacts=1,
    limit=timedelta(hours=2), warning=timedelta(0),
    escalations=((timedelta(hours=1), "lead"), (timedelta(hours=3), "boss")), clock=AlwaysOn(),
)  # fmt: skip


@PROPS
@given(policy=st.sampled_from([*RULES.policies, ALWAYS_ON_WITH_ESCALATIONS]), start=instants)
def test_a_timer_s_thresholds_are_each_offset_s_deadline_on_its_clock(
    policy: Policy, start: datetime
) -> None:
    assert _thresholds(policy, start) == plain.thresholds(policy, start)


# Instants in two zones, so that equal thresholds can differ in their tzinfo: the earliest
# one must be the same object the plain rule picks (``min`` keeps the first).
PLUS_ONE = timezone(timedelta(hours=1))
moments = st.builds(
    lambda at, zone: at.astimezone(zone), instants, st.sampled_from([UTC, PLUS_ONE])
)
TAGS = ["started", "warning", "breached", "escalated-1", "escalated-2", "met", "cancelled"]


@st.composite
def timers(draw: st.DrawFn) -> Timer:
    """Any timer, thresholds in any order (rows loaded from the store are not re-checked)."""
    start = draw(moments)
    stopped = draw(st.none() | moments)
    return Timer(
        lead_id="lead-1", policy=draw(st.sampled_from([p.name for p in RULES.policies])),
        cycle="e01", started_at=start, warn_at=draw(moments), deadline=draw(moments),
        escalate_at=tuple(draw(st.lists(moments, max_size=3))), stopped_at=stopped,
        outcome=draw(st.sampled_from(["met", "cancelled"])) if stopped else None,
        stop_reason="contacted" if stopped else None, stop_event_id="e02" if stopped else None,
        owner_id=draw(st.none() | st.just("rep-1")), team=None,
        assigned_at=draw(st.none() | moments),
    )  # fmt: skip


@PROPS
@given(
    timer=timers(),
    emitted=st.frozensets(st.sampled_from(TAGS)),
    stream_time=st.none() | moments,
)
def test_the_emission_rule_owes_and_waits_for_what_the_plain_rule_does(
    timer: Timer, emitted: frozenset[str], stream_time: datetime | None
) -> None:
    assert due(timer, emitted, stream_time) == plain.due(timer, emitted, stream_time)
    expected = plain.next_fire_at(timer, emitted)
    assert repr(next_fire_at(timer, emitted)) == repr(expected)
    row = TimerRow(timer, 3, emitted)
    assert repr(row.next_fire_at) == repr(expected)
    built = timer_row(timer, 3, emitted)
    assert type(built) is TimerRow
    assert built == row
    assert hash(built) == hash(row)
    # The built row holds the shared set equal to ``emitted``, whose order may differ.
    assert repr(built) == repr(TimerRow(timer, 3, built.emitted))
    assert repr(built.next_fire_at) == repr(expected)
    assert row_values(row, 60.0, None)[17] == row.status
    fired, firings = fire(row, stream_time)
    assert firings == plain.due(timer, emitted, stream_time)
    assert fired == TimerRow(timer, 3, emitted | {f.tag for f in firings})
    assert repr(fired.next_fire_at) == repr(plain.next_fire_at(timer, fired.emitted))


@settings(max_examples=30, deadline=None)
@given(timer=timers(), emitted=st.frozensets(st.sampled_from(TAGS)), stream_time=moments)
def test_rows_with_equal_tags_share_one_set_of_them(
    timer: Timer, emitted: frozenset[str], stream_time: datetime
) -> None:
    a = timer_row(timer, 3, frozenset(emitted))
    b = timer_row(timer, 0, frozenset(sorted(emitted)))
    assert a.emitted is b.emitted
    assert a.emitted == emitted
    fired, firings = fire(a, stream_time)
    again, _ = fire(b, stream_time)
    assert fired.emitted is again.emitted
    assert fired.emitted == emitted | {f.tag for f in firings}
    assert a.emitted == emitted, "firing one row leaves the shared tags of the other alone"


def test_past_the_bound_a_row_keeps_its_own_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sla_emit, "_TAG_SETS", {})
    for n in range(sla_emit._MAX_TAG_SETS):
        sla_emit.shared_tags(frozenset({f"escalated-{n + 100}"}))
    tags = frozenset({"started", "never-seen"})
    assert sla_emit.shared_tags(tags) is tags
    assert sla_emit.shared_tags(frozenset({"started", "never-seen"})) is not tags
    assert len(sla_emit._TAG_SETS) == sla_emit._MAX_TAG_SETS


@settings(max_examples=60, deadline=None)
@given(journeys())
def test_derived_events_are_the_ones_model_construct_builds_byte_for_byte(
    journey: list[Event],
) -> None:
    _, fired = run(journey, until=journey[-1].time + timedelta(days=60))
    for timer, firing in fired:
        event, expected = (
            derived_event(timer, firing, RULES),
            plain.derived_event(timer, firing, RULES),
        )
        for built, reference in ((event.data, expected.data), (event, expected)):
            assert type(built) is type(reference)
            assert list(built.__dict__.items()) == list(reference.__dict__.items())
            assert built.model_fields_set == reference.model_fields_set
            assert type(built.model_fields_set) is set
            assert built.__pydantic_extra__ == reference.__pydantic_extra__
            assert built.__pydantic_private__ == reference.__pydantic_private__
        assert event == expected
        assert encode(event) == encode(expected) == encoded(event)


@PROPS
@given(at=instants, zone=st.sampled_from(["Europe/Berlin", "Pacific/Kiritimati", "UTC"]))
def test_a_month_is_formatted_as_strftime_formats_it(at: datetime, zone: str) -> None:
    assert month_of(at, zone) == at.astimezone(ZoneInfo(zone)).strftime("%Y-%m")
    assert month_of(at, zone) == month_of(at, zone)


def test_a_year_before_1000_is_formatted_as_strftime_formats_it() -> None:
    at = datetime(999, 12, 31, 23, tzinfo=UTC)
    assert month_of(at, "UTC") == at.strftime("%Y-%m")
