"""A lead's audit trail from its read-model rows: event-time order, what each event changed,
rejected records and SLA facts (pure; no PostgreSQL)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson

from events.codec import encode
from events.envelope import Event
from projections.lead import fold
from services.api.audit_models import KafkaPosition, LeadTimeline
from services.store.audit_timeline import Archived, CurrentRow, build_timeline

from .factories import (
    FUNNEL,
    assigned,
    at,
    contacted,
    created,
    deal_created,
    deal_won,
    moved,
    touched,
)

LEAD = "L-audit"
NOW = at(days=30)


def history() -> list[Event]:
    return [
        created(LEAD, at(0)),
        touched(LEAD, at(0), "webinar", "events"),  # same instant: created sorts first
        moved(LEAD, at(10), "lead", "mql", reason="score 80"),
        assigned(LEAD, at(12), "rep-1", "sdr-emea"),
        contacted(LEAD, at(40), "rep-1"),
        assigned(LEAD, at(45), "rep-2", "sdr-emea"),
        moved(LEAD, at(50), "mql", "sal"),
        deal_created(LEAD, at(days=2), "D1", "12000.00"),
        deal_won(LEAD, at(days=6), "D1", "12500.00"),
    ]


def archived(events: list[Event]) -> list[Archived]:
    return [
        Archived(e.id, e.type, e.source, e.time, KafkaPosition(topic="t", partition=1, offset=i), e)
        for i, e in enumerate(events)
    ]


def rejected_row(raw: bytes, *, rejected_at: datetime, offset: int = 99) -> dict[str, Any]:
    return {
        "kafka_topic": "t", "kafka_partition": 1, "kafka_offset": offset, "event_id": None,
        "reason": "disallowed_transition", "detail": "mql -> customer is not allowed",
        "raw": raw, "rejected_at": rejected_at,
    }  # fmt: skip


def timeline(
    events: list[Event] | None = None,
    *,
    rejected: list[dict[str, Any]] | None = None,
    sla_rows: list[dict[str, Any]] | None = None,
    shuffle: bool = False,
) -> LeadTimeline:
    events = history() if events is None else events
    rows = archived(events)
    if shuffle:
        random.Random(4).shuffle(rows)
    result = build_timeline(
        LEAD,
        archived=rows,
        spans=fold(LEAD, events, FUNNEL).view.stages,
        current=CurrentRow("sal", "sal", "rep-2", "sdr-emea"),
        rejected=rejected or [],
        sla_rows=sla_rows,
        now=NOW,
    )
    assert result is not None
    return result


def test_events_come_in_event_time_order_whatever_order_the_archive_returns_them() -> None:
    result = timeline(shuffle=True)
    assert [e.type for e in result.entries] == [
        "lead.created", "touchpoint.recorded", "lead.stage_changed", "lead.assigned",
        "lead.contacted", "lead.assigned", "lead.stage_changed", "deal.created", "deal.won",
    ]  # fmt: skip
    assert [e.kafka.offset for e in result.entries if e.kafka] == list(range(9))
    assert result.entries[0].source == "urn:leadledger:test"
    assert (result.events, result.rejected, result.current_stage) == (9, 0, "sal")


def test_stage_changes_carry_the_time_spent_in_the_stage_left_and_in_the_stage_entered() -> None:
    entries = timeline().entries
    first, to_mql, to_sal = (e.stage for e in entries if e.stage is not None)
    assert first is not None
    assert to_mql is not None
    assert to_sal is not None
    assert (first.from_stage, first.to_stage, first.stage_seconds) == (None, "lead", 600.0)
    assert (to_mql.from_stage, to_mql.to_stage, to_mql.reason) == ("lead", "mql", "score 80")
    assert (to_mql.left_stage_seconds, to_mql.stage_seconds) == (600.0, 2400.0)
    # Still in sal: no length yet, but the time so far (to the reader's clock).
    assert to_sal.stage_seconds is None
    assert to_sal.in_stage_so_far_seconds == (NOW - at(50)).total_seconds()
    assert to_mql.team == "marketing"


def test_owner_changes_name_the_owner_they_replaced() -> None:
    first, second = (e for e in timeline().entries if e.owner is not None)
    assert first.owner is not None
    assert second.owner is not None
    assert (first.owner.owner_id, first.owner.previous_owner_id) == ("rep-1", None)
    assert (second.owner.owner_id, second.owner.previous_owner_id) == ("rep-2", "rep-1")
    assert second.summary == "assigned to rep-2 (sdr-emea), was rep-1 (sdr-emea)"


def test_touches_and_deals_are_spelled_out_with_exact_amounts() -> None:
    entries = {e.type: e for e in timeline().entries}
    touch = entries["touchpoint.recorded"].touch
    assert touch is not None
    assert (touch.campaign_id, touch.channel) == ("webinar", "events")
    won = entries["deal.won"]
    assert won.deal is not None
    assert (won.deal.action, str(won.deal.amount), won.deal.currency) == ("won", "12500.00", "EUR")
    assert won.summary == "deal D1 won, EUR 12,500.00"
    assert won.data == {"deal_id": "D1", "amount": "12500.00", "currency": "EUR"}


def test_a_rejected_record_is_placed_by_its_own_time_after_accepted_events_at_that_instant() -> (
    None
):
    bad = moved(LEAD, at(10), "mql", "customer", id="bad-1")
    result = timeline(rejected=[rejected_row(encode(bad), rejected_at=NOW)])
    entries = result.entries
    index = next(i for i, e in enumerate(entries) if e.kind == "rejected")
    assert entries[index - 1].type == "lead.stage_changed"  # the accepted move at minute 10
    rejected = entries[index]
    assert rejected.rejection is not None
    assert (rejected.at, rejected.rejection.time_basis) == (at(10), "event")
    assert (rejected.type, rejected.event_id, rejected.source) == (
        "lead.stage_changed", "bad-1", "urn:leadledger:test",
    )  # fmt: skip
    assert rejected.summary == "rejected (disallowed_transition): mql -> customer is not allowed"
    assert result.rejected == 1


def test_a_rejected_record_without_a_usable_time_is_placed_when_it_was_rejected() -> None:
    raws = [b"{not json", orjson.dumps({"type": "lead.created", "time": "yesterday"})]
    rows = [rejected_row(raw, rejected_at=at(20), offset=i) for i, raw in enumerate(raws)]
    rejected = [e for e in timeline(rejected=rows).entries if e.kind == "rejected"]
    assert [(e.type, e.at) for e in rejected] == [
        ("(unreadable)", at(20)),
        ("lead.created", at(20)),
    ]
    assert {e.rejection.time_basis for e in rejected if e.rejection} == {"rejected_at"}


def sla_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "lead_id": LEAD, "policy": "mql_first_touch", "cycle_id": "mql-event",
        "started_at": at(10), "warn_at": at(40), "deadline": at(70),
        "escalate_at": [at(130)], "stopped_at": None, "outcome": None, "stop_reason": None,
        "owner_id": "rep-1", "team": "sdr-emea", "limit_seconds": 3600.0,
        "elapsed_seconds": None, "status": "ok", "emitted": ["started"],
    }  # fmt: skip
    return row | overrides


def test_sla_facts_appear_at_their_times_and_only_those_the_processor_declared() -> None:
    met = sla_row(
        stopped_at=at(40), outcome="met", stop_reason="first contact", elapsed_seconds=1800.0,
        status="met", emitted=["started", "met"],
    )  # fmt: skip
    late = sla_row(policy="mql_accept", status="breached",
                   emitted=["started", "warning", "breached", "escalated-1"])  # fmt: skip
    result = timeline(sla_rows=[met, late])
    facts = [(e.type, e.at, e.sla.policy) for e in result.entries if e.sla is not None]
    assert facts == [
        ("sla.started", at(10), "mql_first_touch"),
        ("sla.started", at(10), "mql_accept"),
        ("sla.met", at(40), "mql_first_touch"),
        ("sla.warning", at(40), "mql_accept"),
        ("sla.breached", at(70), "mql_accept"),
        ("sla.escalated", at(130), "mql_accept"),
    ]
    # At minute 10 the move into mql comes first, then the timers it started.
    types = [e.type for e in result.entries]
    assert types.index("lead.stage_changed") < types.index("sla.started")
    summaries = [e.summary for e in result.entries if e.sla is not None]
    assert "SLA mql_first_touch met: first contact" in summaries
    assert result.sla_available


def test_without_the_sla_table_the_timeline_says_so_and_has_no_sla_facts() -> None:
    result = timeline(sla_rows=None)
    assert not result.sla_available
    assert not [e for e in result.entries if e.kind == "sla"]


def test_an_archived_event_that_no_longer_decodes_is_shown_not_dropped() -> None:
    events = history()[:1]
    rows = [
        *archived(events),
        Archived("old-1", "lead.scored", "crm", at(5), KafkaPosition(topic="t", partition=1,
                 offset=7), None, "unknown_type: unknown event type 'lead.scored'"),
    ]  # fmt: skip
    result = build_timeline(
        LEAD, archived=rows, spans=fold(LEAD, events, FUNNEL).view.stages, current=None,
        rejected=[], sla_rows=[], now=NOW,
    )  # fmt: skip
    assert result is not None
    assert [e.type for e in result.entries] == ["lead.created", "lead.scored"]
    assert "no longer decodes" in result.entries[1].summary


def test_an_unknown_lead_has_no_timeline_but_one_known_only_from_rejections_has() -> None:
    def known(rejected: list[dict[str, Any]]) -> LeadTimeline | None:
        return build_timeline(
            LEAD, archived=[], spans=[], current=None, rejected=rejected, sla_rows=None, now=NOW
        )

    assert known([]) is None
    only = known([rejected_row(b"{}", rejected_at=NOW)])
    assert only is not None
    assert [e.kind for e in only.entries] == ["rejected"]
    assert only.current_stage is None


def test_times_in_stage_come_from_the_stored_history_not_a_refold() -> None:
    # The processor's rows are the truth: a stay that ended later than the events say (a
    # refold would disagree) is reported as stored.
    events = history()
    spans = list(fold(LEAD, events, FUNNEL).view.stages)
    spans[0] = replace(spans[0], exited_at=at(11))
    result = build_timeline(
        LEAD, archived=archived(events), spans=spans, current=None, rejected=[], sla_rows=[],
        now=NOW,
    )  # fmt: skip
    assert result is not None
    first = next(e.stage for e in result.entries if e.stage is not None)
    assert first is not None
    assert first.stage_seconds == 660.0
