"""GET /v1/sla/open and /v1/sla/summary: the SLA board and compliance, from the read models.

Like the lead endpoint, reading needs no token for now. ``status`` is event time (what the
processor has declared on the derived topic); ``time_left_seconds`` is the wall clock now.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from services.api.models import ErrorBody, json_response
from services.api.params import FromParam, ToParam
from services.api.periods import parse_time
from services.api.ports import SlaReader, context_of
from services.api.sla_models import OpenStatus, SlaOpenPage, SlaSummary

router = APIRouter(tags=["sla"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "a parameter is not valid"},
    503: {"model": ErrorBody, "description": "this API has no SLA read model"},
}


def _reader(request: Request) -> SlaReader | None:
    return context_of(request).sla


@router.get(
    "/v1/sla/open",
    response_model=SlaOpenPage,
    summary="Running SLA timers, most urgent first",
    description="Sorted by deadline (the most overdue first), then warning time and lead. "
    "Filter by policy, owner, team and event-time status.",
    responses=_RESPONSES,
)
async def open_timers(
    request: Request,
    policy: Annotated[str | None, Query(max_length=64, description="policy name")] = None,
    owner: Annotated[str | None, Query(max_length=128, description="owner id")] = None,
    team: Annotated[str | None, Query(max_length=64, description="owner team")] = None,
    status: Annotated[OpenStatus | None, Query(description="ok, warning or breached")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="page size")] = 100,
) -> Response:
    reader = _reader(request)
    if reader is None:
        return json_response(503, ErrorBody(error="the SLA read model is not configured"))
    page = await reader.open_timers(
        context_of(request).clock(),
        policy=policy, owner=owner, team=team, status=status, limit=limit,
    )  # fmt: skip
    return json_response(200, page)


@router.get(
    "/v1/sla/summary",
    response_model=SlaSummary,
    summary="SLA compliance for a period, per policy and team, and the volume SLA per month",
    description="Timers started in [from, to): met and breached counts and percentages, and "
    "p50/p90 of the counted time to a met stop (for mql_first_touch: time to first touch). "
    "The marketing-side volume target is reported for every calendar month overlapping the "
    "period. Defaults: from the start of the current UTC month to now.",
    responses=_RESPONSES,
)
async def summary(request: Request, start: FromParam = None, end: ToParam = None) -> Response:
    reader = _reader(request)
    if reader is None:
        return json_response(503, ErrorBody(error="the SLA read model is not configured"))
    now = context_of(request).clock()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    try:
        # Read as every report reads its period (``periods``): dates and times without a zone
        # are UTC, a date as ``to`` means the whole day, anything else is refused by name.
        begin = parse_time(start) if start else month_start
        finish = parse_time(end, end_of_period=True) if end else now
    except ValueError as exc:
        return json_response(422, ErrorBody(error=str(exc)))
    if begin >= finish:
        return json_response(422, ErrorBody(error="'from' must be before 'to'"))
    return json_response(200, await reader.summary(begin, finish))
