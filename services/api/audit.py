"""GET /v1/leads/{lead_id}/timeline: one lead's audit trail.

Every accepted event with who sent it and what it changed, every rejected record concerning
the lead, and its SLA facts, in event-time order. Reading needs no token for now.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from services.api.audit_models import LeadTimeline
from services.api.models import ErrorBody, NotFoundBody, json_response
from services.api.ports import context_of

router = APIRouter(tags=["leads"])


@router.get(
    "/v1/leads/{lead_id}/timeline",
    response_model=LeadTimeline,
    summary="Audit trail of one lead: events, rejections and SLA facts in event-time order",
    description="Each accepted event with its source, Kafka position and payload; stage "
    "changes with the time spent in the stage left and in the stage entered; owner changes "
    "with the previous owner; touchpoints; deals; rejected records about the lead with their "
    "reason; SLA timers' facts (when this database has the SLA read model).",
    responses={
        404: {"model": NotFoundBody, "description": "nothing is known about this lead"},
        422: {"model": ErrorBody, "description": "the lead id is not valid"},
        503: {"model": ErrorBody, "description": "this API has no audit reader"},
    },
)
async def lead_timeline(
    request: Request,
    lead_id: Annotated[
        str, Path(min_length=1, max_length=128, description="the lead id (events' subject)")
    ],
) -> Response:
    reader = context_of(request).audit
    if reader is None:
        return json_response(503, ErrorBody(error="the audit reader is not configured"))
    timeline = await reader.timeline(lead_id)
    if timeline is None:
        return json_response(404, NotFoundBody(error="lead not found", lead_id=lead_id))
    return json_response(200, timeline)
