"""A lead's audit trail assembled from its read-model rows: pure, so tested without Postgres.

Order: entries sort by time; at one instant accepted events come first (in the fold's own
``order_key`` order), then SLA facts (a timer starts on the event that moved the lead), then
rejected records. A rejected record is placed by the ``time`` in its own bytes when it has a
readable one, else by when it was rejected, and ``time_basis`` says which.

Stage changes are matched to ``lead_stage_history`` rows by the event that opened each stay
(``entered_via``), so the times in stage are exactly what the processor stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from events.catalog import (
    DealCreated,
    DealLost,
    DealWon,
    LeadAssigned,
    LeadContacted,
    LeadCreated,
    LeadDisqualified,
    LeadMerged,
    LeadRecycled,
    LeadStageChanged,
    TouchpointRecorded,
)
from events.codec import to_obj
from events.envelope import Event
from projections.lead import order_key
from projections.views import StageSpan
from services.api.audit_models import (
    DealOut,
    EntryKind,
    KafkaPosition,
    LeadTimeline,
    OwnerChangeOut,
    RejectionOut,
    StageChangeOut,
    TimelineEntry,
    TouchOut,
)
from services.store.audit_sla import sla_entries

_RANK: Final[dict[EntryKind, int]] = {"event": 0, "sla": 1, "closed_loop": 2, "rejected": 3}


@dataclass(frozen=True, slots=True)
class Archived:
    """One ``event_archive`` row; ``event`` is None when its payload no longer decodes."""

    event_id: str
    type: str
    source: str
    time: datetime
    position: KafkaPosition
    event: Event | None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class CurrentRow:
    """The ``lead_current`` columns the timeline header shows."""

    current_stage: str | None
    highest_stage: str | None
    owner_id: str | None
    team: str | None


def build_timeline(
    lead_id: str,
    *,
    archived: Sequence[Archived],
    spans: Sequence[StageSpan],
    current: CurrentRow | None,
    rejected: Sequence[Mapping[str, Any]],
    sla_rows: Sequence[Mapping[str, Any]] | None,
    now: datetime,
    origin: Mapping[str, str] | None = None,
    closed_loop: Sequence[TimelineEntry] = (),
) -> LeadTimeline | None:
    """The timeline, or None when nothing at all is known about the lead.

    ``rejected``: ``rejected_event`` rows; ``sla_rows``: ``sla_timer`` rows, or None when the
    table does not exist in this database. ``origin``: for a survivor of merges, the lead of
    every archived event id (see ``projections.closed_loop.merge``); entries of merged leads
    then say which lead they came from. ``closed_loop``: the lead's suppressed re-handoffs and
    duplicate pairs (``services.store.audit_closed_loop``).
    """
    if not archived and not rejected and current is None:
        return None
    ranked: list[tuple[tuple[datetime, int, Any], TimelineEntry]] = []
    events = _event_entries(archived, spans, now)
    ranked += [((e.at, _RANK["event"], i), e) for i, e in enumerate(events)]
    slas = sla_entries(sla_rows or ())
    ranked += [((e.at, _RANK["sla"], i), e) for i, e in enumerate(slas)]
    ranked += [((e.at, _RANK["closed_loop"], i), e) for i, e in enumerate(closed_loop)]
    rejections = [_rejected_entry(row) for row in rejected]
    ranked += [((e.at, _RANK["rejected"], i), e) for i, e in enumerate(rejections)]
    ranked.sort(key=lambda item: item[0])
    entries = [entry for _, entry in ranked]
    merged = sorted(set((origin or {}).values()) - {lead_id})
    if merged:
        entries = [_from_lead(entry, lead_id, origin or {}) for entry in entries]
    return LeadTimeline(
        lead_id=lead_id,
        as_of=now,
        current_stage=current.current_stage if current else None,
        highest_stage=current.highest_stage if current else None,
        owner_id=current.owner_id if current else None,
        team=current.team if current else None,
        events=len(archived),
        rejected=len(rejected),
        sla_available=sla_rows is not None,
        merged_leads=merged,
        entries=entries,
    )


def _from_lead(entry: TimelineEntry, lead_id: str, origin: Mapping[str, str]) -> TimelineEntry:
    # SLA facts belong to the lead whose event started the timer (its cycle).
    key = entry.sla.cycle_id if entry.sla is not None else entry.event_id
    lead = origin.get(key) if key is not None else None
    if lead is None or lead == lead_id:
        return entry
    return entry.model_copy(update={"from_lead": lead, "summary": f"(lead {lead}) {entry.summary}"})


def _event_entries(
    archived: Sequence[Archived], spans: Sequence[StageSpan], now: datetime
) -> list[TimelineEntry]:
    """Accepted events in the fold's order, each with what it changed."""
    opened = {span.entered_via: i for i, span in enumerate(spans)}
    decoded = sorted((a for a in archived if a.event is not None), key=_order)
    broken = [a for a in archived if a.event is None]
    owner: tuple[str, str] | None = None
    out: list[TimelineEntry] = []
    for row in decoded:
        event = row.event
        assert event is not None  # filtered above
        entry = _base(row, event)
        index = opened.get(event.id)
        if index is not None:
            entry = entry.model_copy(update=_stage(spans, index, now))
        data = event.data
        if isinstance(data, LeadAssigned):
            change = OwnerChangeOut(
                owner_id=data.owner_id,
                team=data.team,
                previous_owner_id=owner[0] if owner else None,
                previous_team=owner[1] if owner else None,
                assigned_by=data.assigned_by,
            )
            before = f", was {owner[0]} ({owner[1]})" if owner else ""
            summary = f"assigned to {data.owner_id} ({data.team}){before}"
            entry = entry.model_copy(update={"owner": change, "summary": summary})
            owner = (data.owner_id, data.team)
        out.append(entry)
    out += [
        TimelineEntry(
            at=a.time, kind="event", type=a.type, event_id=a.event_id, source=a.source,
            summary=f"archived event no longer decodes: {a.problem}", kafka=a.position,
        )
        for a in broken
    ]  # fmt: skip
    return out


def _order(row: Archived) -> tuple[datetime, int, str]:
    assert row.event is not None
    return order_key(row.event)


def _base(row: Archived, event: Event) -> TimelineEntry:
    data = event.data
    touch = deal = None
    if isinstance(data, TouchpointRecorded):
        touch = TouchOut(
            campaign_id=data.campaign_id, channel=data.channel, touch_type=data.touch_type
        )
    elif isinstance(data, DealCreated | DealWon | DealLost):
        action = {DealCreated: "created", DealWon: "won", DealLost: "lost"}[type(data)]
        reason = data.reason if isinstance(data, DealLost) else None
        deal = DealOut(
            deal_id=data.deal_id, action=action, amount=data.amount, currency=data.currency,
            reason=reason,
        )  # fmt: skip
    return TimelineEntry(
        at=event.time,
        kind="event",
        type=event.type,
        event_id=event.id,
        source=event.source,
        summary=summarize(event),
        touch=touch,
        deal=deal,
        kafka=row.position,
        data=to_obj(event).get("data"),
    )


def _stage(spans: Sequence[StageSpan], index: int, now: datetime) -> dict[str, Any]:
    span = spans[index]
    before = spans[index - 1] if index > 0 else None
    so_far = None if span.exited_at else max((now - span.entered_at).total_seconds(), 0.0)
    change = StageChangeOut(
        from_stage=before.stage if before else None,
        to_stage=span.stage,
        team=span.team,
        reason=span.reason,
        left_stage_seconds=before.seconds if before else None,
        stage_seconds=span.seconds,
        in_stage_so_far_seconds=so_far,
    )
    return {"stage": change}


def summarize(event: Event) -> str:
    """One human line for an accepted event (assignments are summarized with their history)."""
    d = event.data
    if isinstance(d, LeadCreated):
        # The archive holds the email key (an HMAC), never the address; its start is enough
        # to see that two leads share one.
        key = f"email key {d.email_key[:12]}..." if d.email_key else None
        who = ", ".join(x for x in (key, d.company, d.country, d.lead_source) if x)
        return f"created in stage {d.stage}" + (f": {who}" if who else "")
    if isinstance(d, LeadStageChanged):
        return f"{d.from_stage} -> {d.to_stage}" + (f": {d.reason}" if d.reason else "")
    if isinstance(d, LeadDisqualified):
        return f"disqualified from {d.from_stage}: {d.reason_code}"
    if isinstance(d, LeadRecycled):
        return f"recycled from {d.from_stage}: {d.reason}"
    if isinstance(d, LeadAssigned):
        return f"assigned to {d.owner_id} ({d.team})"
    if isinstance(d, LeadContacted):
        return f"{d.activity} by {d.rep_id}" + (f": {d.outcome}" if d.outcome else "")
    if isinstance(d, TouchpointRecorded):
        return f"touch: campaign {d.campaign_id} via {d.channel} ({d.touch_type})"
    if isinstance(d, DealCreated | DealWon | DealLost):
        verb = {DealCreated: "created", DealWon: "won", DealLost: "lost"}[type(d)]
        why = f": {d.reason}" if isinstance(d, DealLost) and d.reason else ""
        return f"deal {d.deal_id} {verb}, {d.currency} {d.amount:,f}{why}"
    if isinstance(d, LeadMerged):
        return f"merged into {d.survivor_id}"
    return event.type


def _rejected_entry(row: Mapping[str, Any]) -> TimelineEntry:
    raw = _raw_object(row["raw"])
    when = _aware(raw.get("time"))
    kind = raw.get("type")
    source = raw.get("source")
    raw_id = raw.get("id")
    return TimelineEntry(
        at=when or row["rejected_at"],
        kind="rejected",
        type=kind if isinstance(kind, str) else "(unreadable)",
        event_id=row["event_id"] or (raw_id if isinstance(raw_id, str) else None),
        source=source if isinstance(source, str) else None,
        summary=f"rejected ({row['reason']}): {row['detail']}",
        rejection=RejectionOut(
            reason=row["reason"],
            detail=row["detail"],
            rejected_at=row["rejected_at"],
            time_basis="event" if when else "rejected_at",
        ),
        kafka=KafkaPosition(
            topic=row["kafka_topic"], partition=row["kafka_partition"], offset=row["kafka_offset"]
        ),
    )


def _raw_object(raw: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None
