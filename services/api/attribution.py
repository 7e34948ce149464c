"""GET /v1/attribution and /v1/attribution/deals/{deal_id}: credited revenue, recomputed
from the event archive on every request with the named model versions.

Reading needs no token for now, like the lead endpoints. Time parameters take a date or an
RFC 3339 time (``services.api.periods``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from services.api.attribution_models import (
    AttributionReport,
    DealExplanation,
    Dimension,
    UnknownModel,
)
from services.api.models import ErrorBody, json_response
from services.api.params import FromParam, ToParam, when
from services.api.periods import model_list, parse_time, period
from services.api.ports import AttributionReader, context_of

router = APIRouter(tags=["attribution"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "a parameter or model name is not valid"},
    503: {"model": ErrorBody, "description": "this API has no attribution reader"},
}
_MODEL = "model name, alias or name@vN, e.g. W, linear, w_shaped@v1"
_COMPARE = "comma-separated models side by side, e.g. first,last,linear,W (replaces model)"
_BY: dict[str, tuple[Dimension, ...]] = {
    "campaign": ("campaign",),
    "channel": ("channel",),
    "both": ("campaign", "channel"),
}

ModelParam = Annotated[str, Query(max_length=64, description=_MODEL)]
CompareParam = Annotated[str | None, Query(max_length=512, description=_COMPARE)]
AsOfParam = Annotated[str | None, when("evaluate the history as known then (event time)")]


def _reader(request: Request) -> AttributionReader | None:
    return context_of(request).attribution


def _unavailable() -> Response:
    return json_response(503, ErrorBody(error="the attribution reader is not configured"))


def _bad(message: str) -> Response:
    return json_response(422, ErrorBody(error=message))


@router.get(
    "/v1/attribution",
    response_model=AttributionReport,
    summary="Won revenue, deals and touches credited per campaign and channel",
    description="Deals won in [from, to) are revenue; deals still open at as_of (created "
    "before to) are pipeline, with the closing position pending on their latest touch. "
    "Credit is recomputed from the event archive with the named model versions; money is "
    "exact decimal strings, one row per currency. A date as 'to' includes that whole day. "
    "Defaults: the current calendar quarter, as of now, model W, by campaign and channel.",
    responses=_RESPONSES,
)
async def attribution_report(
    request: Request,
    model: ModelParam = "W",
    start: FromParam = None,
    end: ToParam = None,
    as_of: AsOfParam = None,
    by: Annotated[
        Literal["campaign", "channel", "both"], Query(description="dimension of the rows")
    ] = "both",
    compare: CompareParam = None,
) -> Response:
    reader = _reader(request)
    if reader is None:
        return _unavailable()
    now = context_of(request).clock()
    try:
        begin, finish = period(start, end, now)
        when = parse_time(as_of) if as_of else now
    except ValueError as exc:
        return _bad(str(exc))
    models = model_list(compare) if compare else [model]
    try:
        report = await reader.report(models, begin, finish, when, _BY[by])
    except UnknownModel as exc:
        return _bad(str(exc))
    return json_response(200, report)


@router.get(
    "/v1/attribution/deals/{deal_id}",
    response_model=DealExplanation,
    summary="How a deal's credit is split: each touch, its positions, share and amount",
    description="Every touch at or before the deal's close (as_of while it is open), with "
    "its milestone positions and, per model, its share (sums to 1) and amount (sums to the "
    "deal amount exactly).",
    responses={
        404: {"model": ErrorBody, "description": "no lead knew the deal at as_of"},
        **_RESPONSES,
    },
)
async def explain_deal(
    request: Request,
    deal_id: Annotated[str, Path(min_length=1, max_length=128, description="the deal id")],
    model: ModelParam = "W",
    as_of: AsOfParam = None,
    compare: CompareParam = None,
) -> Response:
    reader = _reader(request)
    if reader is None:
        return _unavailable()
    try:
        when: datetime = parse_time(as_of) if as_of else context_of(request).clock()
    except ValueError as exc:
        return _bad(str(exc))
    models = model_list(compare) if compare else [model]
    try:
        found = await reader.explain(deal_id, models, when)
    except UnknownModel as exc:
        return _bad(str(exc))
    if found is None:
        return json_response(404, ErrorBody(error=f"deal {deal_id!r} not found"))
    return json_response(200, found)
