"""Response body of the lead audit (``GET /v1/leads/{lead_id}/timeline``, ``leadledger audit``).

One entry per accepted event, per rejected record concerning the lead, and per SLA fact
(timer started, warning, breached, escalated, met, cancelled), in event-time order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

_FROZEN = ConfigDict(frozen=True)

EntryKind = Literal["event", "rejected", "sla", "closed_loop"]


class KafkaPosition(BaseModel):
    """Where the record sits in the event log (provenance)."""

    model_config = _FROZEN

    topic: str
    partition: int
    offset: int


class StageChangeOut(BaseModel):
    """A move between stages, with how long the lead stayed on each side of it."""

    model_config = _FROZEN

    from_stage: str | None = Field(description="the stage left; null for the first stage")
    to_stage: str
    team: str = Field(description="team owning the stage entered")
    reason: str | None
    left_stage_seconds: float | None = Field(description="time spent in the stage left")
    stage_seconds: float | None = Field(
        description="time spent in the stage entered; null while the lead is still there"
    )
    in_stage_so_far_seconds: float | None = Field(
        description="still in the stage entered: time from entering it to as_of"
    )


class OwnerChangeOut(BaseModel):
    """An assignment: the new owner and the one it replaced."""

    model_config = _FROZEN

    owner_id: str
    team: str
    previous_owner_id: str | None
    previous_team: str | None
    assigned_by: str | None


class TouchOut(BaseModel):
    """A marketing touch."""

    model_config = _FROZEN

    campaign_id: str
    channel: str
    touch_type: str


class DealOut(BaseModel):
    """A deal event."""

    model_config = _FROZEN

    deal_id: str
    action: Literal["created", "won", "lost"]
    amount: Decimal
    currency: str
    reason: str | None = None


class RejectionOut(BaseModel):
    """Why a record about this lead was not accepted."""

    model_config = _FROZEN

    reason: str = Field(description="a stable reject reason, e.g. disallowed_transition")
    detail: str
    rejected_at: AwareDatetime = Field(description="wall clock of the rejection")
    time_basis: Literal["event", "rejected_at"] = Field(
        description="event: placed by the record's own time; rejected_at: it had none usable"
    )


class SlaOut(BaseModel):
    """One fact of an SLA timer (from the ``sla_timer`` read model)."""

    model_config = _FROZEN

    policy: str
    cycle_id: str = Field(description="id of the event that started the timer")
    fact: str = Field(description="started, warning, breached, escalated, met or cancelled")
    level: int | None = Field(default=None, description="escalation level")
    status: str = Field(description="the timer's status now: ok, warning, breached, met, ...")
    started_at: AwareDatetime
    warn_at: AwareDatetime | None
    deadline: AwareDatetime | None
    stopped_at: AwareDatetime | None
    stop_reason: str | None
    limit_seconds: float | None
    elapsed_seconds: float | None = Field(description="counted time from start to stop")
    owner_id: str | None
    team: str | None


class TimelineEntry(BaseModel):
    """One line of a lead's audit trail; the sub-object matching its type is set."""

    model_config = _FROZEN

    at: AwareDatetime = Field(description="event time (rejected records: see time_basis)")
    kind: EntryKind
    type: str = Field(description="event type, sla.<fact>, or the rejected record's type")
    event_id: str | None
    source: str | None = Field(description="who or what sent it (CloudEvents source)")
    summary: str = Field(description="one human-readable line")
    stage: StageChangeOut | None = None
    owner: OwnerChangeOut | None = None
    touch: TouchOut | None = None
    deal: DealOut | None = None
    rejection: RejectionOut | None = None
    sla: SlaOut | None = None
    kafka: KafkaPosition | None = None
    data: dict[str, Any] | None = Field(default=None, description="the event's payload")
    from_lead: str | None = Field(
        default=None, description="set when the entry comes from a lead merged into this one"
    )


class LeadTimeline(BaseModel):
    """Every event of one lead in event-time order, with its current state for context."""

    model_config = _FROZEN

    lead_id: str
    as_of: AwareDatetime = Field(description="wall clock used for in_stage_so_far_seconds")
    current_stage: str | None
    highest_stage: str | None
    owner_id: str | None
    team: str | None
    events: int = Field(ge=0, description="accepted events")
    rejected: int = Field(ge=0, description="rejected records concerning the lead")
    sla_available: bool = Field(description="false when this database has no sla_timer table")
    merged_leads: list[str] = Field(
        default_factory=list,
        description="leads merged into this one (lead.merged); their histories are included",
    )
    entries: list[TimelineEntry]
