"""Pydantic models of every HTTP request and response body; they also shape the OpenAPI spec.

Datetimes are timezone-aware and serialize as RFC 3339 (``2024-05-01T09:30:00Z``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from fastapi import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from events.envelope import EnvelopeHeader
from events.errors import Rejection, RejectReason

_FROZEN = ConfigDict(frozen=True)


def json_response(
    status: int, body: BaseModel, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response from a body model (pydantic serializes; no second validation)."""
    return Response(
        content=body.model_dump_json(),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


# --- ingest request (documentation only: the endpoint validates with events.codec) ---------


class CloudEventIn(EnvelopeHeader):
    """One lead event as a CloudEvents 1.0 JSON object.

    ``data`` depends on ``type`` and ``schemaversion``; ``leadledger schema export`` writes one
    JSON Schema per event type and version (their ``$id`` is the event's ``dataschema``).
    """

    data: dict[str, Any] = Field(description="the payload of this type and schema version")


# --- ingest responses -----------------------------------------------------------------------


class Accepted(BaseModel):
    """202: every event of the request is stored on the event log."""

    model_config = _FROZEN

    accepted: int = Field(ge=0, description="number of events stored")
    ids: list[str] = Field(description="the event ids, in request order")


class FieldErrorOut(BaseModel):
    """One problem with one field, addressed by a dotted path such as ``data.to_stage``."""

    model_config = _FROZEN

    loc: str
    msg: str


class RejectedEvent(BaseModel):
    """Why one event (or, when ``index`` is null, the whole request) was rejected."""

    model_config = _FROZEN

    index: int | None = Field(description="position in the batch (0 for a single event)")
    id: str | None = Field(description="the event id, when it could be read")
    reason: RejectReason = Field(description="stable, machine-readable reason")
    detail: str
    errors: list[FieldErrorOut] = Field(default_factory=list)

    @classmethod
    def of(cls, rejection: Rejection, index: int | None = None, id: str | None = None) -> Self:
        """Wrap a codec or funnel rejection."""
        return cls(
            index=index,
            id=id,
            reason=rejection.reason,
            detail=rejection.detail,
            errors=[FieldErrorOut(loc=e.loc, msg=e.msg) for e in rejection.errors],
        )


class ErrorBody(BaseModel):
    """400, 413, 422, 503: nothing of the request was published."""

    model_config = _FROZEN

    error: str = Field(description="human-readable summary")
    rejected: list[RejectedEvent] = Field(default_factory=list)


class AuthErrorBody(BaseModel):
    """401: the request carried no usable bearer token."""

    model_config = _FROZEN

    error: str
    reason: Literal["missing_token", "invalid_authorization", "unknown_token"]


class ForbiddenEvent(BaseModel):
    """An event whose ``source`` the token may not publish for."""

    model_config = _FROZEN

    index: int
    id: str | None
    source: str | None


class ForbiddenBody(BaseModel):
    """403: the token is valid but may not publish some of the events."""

    model_config = _FROZEN

    error: str
    allowed_source: str = Field(description="the only source this token may publish for")
    forbidden: list[ForbiddenEvent]


class NotFoundBody(BaseModel):
    """404 of the lead endpoint."""

    model_config = _FROZEN

    error: str
    lead_id: str


class Health(BaseModel):
    """Liveness: the process serves HTTP."""

    model_config = _FROZEN

    status: Literal["ok"] = "ok"


# --- lead read model ------------------------------------------------------------------------


class StageVisit(BaseModel):
    """One stay of the lead in one stage, in event time."""

    model_config = _FROZEN

    stage: str
    team: str = Field(description="team owning the stage in the funnel")
    entered_at: AwareDatetime
    exited_at: AwareDatetime | None = Field(description="null while the lead is still there")
    seconds: float | None = Field(description="length of the stay; null while open")
    from_stage: str | None = Field(description="previous stage; null for the first stage")
    reason: str | None = Field(description="recycle/disqualification reason, if any")
    entered_via: str = Field(description="id of the event that moved the lead here")


class StageTimeOut(BaseModel):
    """Time spent in one stage over all visits; an open stay counts up to now."""

    model_config = _FROZEN

    stage: str
    visits: int = Field(ge=0)
    cumulative_seconds: float = Field(ge=0)
    latest_seconds: float = Field(ge=0, description="length of the most recent visit")


class HandoffOut(BaseModel):
    """One marketing-to-sales handoff, from entering the handoff stage to the first action."""

    model_config = _FROZEN

    started_at: AwareDatetime = Field(description="entered the handoff stage (MQL)")
    assigned_at: AwareDatetime | None = Field(description="got an owner; null if not yet")
    action: str | None = Field(description="first sales action, e.g. accepted, rejected, contacted")
    action_at: AwareDatetime | None
    latency_seconds: float | None = Field(description="started_at to action_at")
    system_delay_seconds: float | None = Field(description="started_at to assigned_at")
    human_delay_seconds: float | None = Field(description="assigned_at to action_at")


class LeadDetail(BaseModel):
    """Everything the read models know about one lead."""

    model_config = _FROZEN

    lead_id: str
    current_stage: str | None = Field(
        description="null while only touchpoints or deals of the lead are known"
    )
    highest_stage: str | None = Field(description="furthest main-path stage ever reached")
    owner_id: str | None = Field(description="current owner; null until assigned")
    team: str | None = Field(description="team of the current owner (lead.assigned)")
    created_at: AwareDatetime | None = Field(description="time of lead.created, once known")
    entered_current_at: AwareDatetime | None
    last_event_at: AwareDatetime
    event_count: int = Field(ge=0)
    stage_history: list[StageVisit]
    time_in_stage: list[StageTimeOut]
    handoff: HandoffOut | None = Field(description="the latest handoff, if any")
    handoffs: list[HandoffOut] = Field(description="every handoff, oldest first")
