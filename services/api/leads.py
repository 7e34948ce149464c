"""GET /v1/leads/{lead_id}: one lead's view from the read models.

Reading needs no token for now: the data is internal to the sales and marketing teams and
the API is not exposed publicly. A read token can be added as a dependency here later.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from services.api.models import ErrorBody, LeadDetail, NotFoundBody, json_response
from services.api.ports import context_of

router = APIRouter(tags=["leads"])


@router.get(
    "/v1/leads/{lead_id}",
    response_model=LeadDetail,
    summary="Current stage, stage history, time in stage and handoffs of one lead",
    description="No token needed to read. Times are event times, in RFC 3339 UTC.",
    responses={
        404: {"model": NotFoundBody, "description": "no event of this lead was applied yet"},
        422: {"model": ErrorBody, "description": "the lead id is not valid"},
    },
)
async def get_lead(
    request: Request,
    lead_id: Annotated[
        str, Path(min_length=1, max_length=128, description="the lead id (events' subject)")
    ],
) -> Response:
    """The lead's detail, or 404."""
    detail = await context_of(request).reader.get_lead(lead_id)
    if detail is None:
        return json_response(404, NotFoundBody(error="lead not found", lead_id=lead_id))
    return json_response(200, detail)
