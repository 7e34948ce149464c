"""GET /v1/funnel: funnel flow per stage for a period, recomputed from the event archive.

The reader is attached to an app with ``install(app, reader)`` (``services.api_server``
does it after ``create_app``); an app without one answers 503. Time parameters take a date
or an RFC 3339 time (``services.api.periods``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, FastAPI, Query, Request, Response

from projections.funnel_lead import Dimension
from services.api.funnel_models import FunnelReport
from services.api.models import ErrorBody, json_response
from services.api.periods import parse_time, period
from services.api.ports import context_of

router = APIRouter(tags=["funnel"])

_WHEN = "a date (YYYY-MM-DD) or an RFC 3339 time; UTC when it has no zone"
_DIMENSIONS: tuple[Dimension, ...] = ("campaign", "channel", "source", "team")
_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "a parameter is not valid"},
    503: {"model": ErrorBody, "description": "this API has no funnel reader"},
}


class FunnelReader(Protocol):
    """Computes funnel flow from the event archive (never from snapshots)."""

    async def report(
        self,
        start: datetime,
        end: datetime,
        as_of: datetime,
        *,
        by: tuple[Dimension, ...] = (),
        previous: bool = False,
        cohorts: bool = False,
    ) -> FunnelReport:
        """The figures of ``[start, end)`` as known at ``as_of``."""
        ...


def install(app: FastAPI, reader: FunnelReader) -> None:
    """Serve ``GET /v1/funnel`` (and ``/v1/plan``) of ``app`` with ``reader``."""
    app.state.funnel_reader = reader


def reader_of(request: Request) -> Any:
    """The installed reader, or None."""
    return getattr(request.app.state, "funnel_reader", None)


def unavailable() -> Response:
    return json_response(503, ErrorBody(error="the funnel reader is not configured"))


def bad(message: str) -> Response:
    return json_response(422, ErrorBody(error=message))


def parse_by(values: list[str]) -> tuple[Dimension, ...]:
    """Repeated or comma-separated dimensions, each once, in the given order."""
    out: list[Dimension] = []
    for part in (p.strip() for v in values for p in v.split(",") if p.strip()):
        match = next((d for d in _DIMENSIONS if d == part), None)
        if match is None:
            raise ValueError(f"by {part!r}: use one or more of {', '.join(_DIMENSIONS)}")
        if match not in out:
            out.append(match)
    return tuple(out)


@router.get(
    "/v1/funnel",
    response_model=FunnelReport,
    summary="Funnel flow per stage: balances, inflow, outflow, conversion, time in stage",
    description="Every stage's figures for [from, to) as known at as_of, recomputed from the "
    "event archive (see `definitions` in the body). compare=previous adds the previous "
    "period of equal length; by adds one table per campaign, channel, source or team (first "
    "touch, lead_source, first assignment); cohorts adds leads per creation month and their "
    "current stage. A date as 'to' includes that whole day. Defaults: the current calendar "
    "quarter, as of now.",
    responses=_RESPONSES,
)
async def funnel_report(
    request: Request,
    start: Annotated[str | None, Query(alias="from", max_length=64, description=_WHEN)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=64, description=_WHEN)] = None,
    as_of: Annotated[
        str | None, Query(max_length=64, description=f"knowledge cut-off (event time); {_WHEN}")
    ] = None,
    by: Annotated[
        list[str] | None,
        Query(max_length=64, description="campaign, channel, source and/or team"),
    ] = None,
    compare: Annotated[
        Literal["previous"] | None, Query(description="previous: also the previous period")
    ] = None,
    cohorts: Annotated[bool, Query(description="leads per creation month, stage now")] = False,
) -> Response:
    reader = reader_of(request)
    if reader is None:
        return unavailable()
    now = context_of(request).clock()
    try:
        begin, finish = period(start, end, now)
        when = parse_time(as_of) if as_of else now
        dims = parse_by(by or [])
    except ValueError as exc:
        return bad(str(exc))
    report = await reader.report(
        begin, finish, when, by=dims, previous=compare == "previous", cohorts=cohorts
    )
    return json_response(200, report)
