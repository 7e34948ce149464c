"""GET /v1/funnel (funnel flow per stage for a period) and GET /v1/plan (the reverse
funnel), both recomputed from the event archive on every request.

The reader and planner are attached to an app with ``install(app, reader, planner)``
(``services.api_server`` does it after ``create_app``); an app without them answers 503.
Time parameters take a date or an RFC 3339 time (``services.api.periods``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Protocol, cast

from fastapi import APIRouter, FastAPI, Query, Request, Response

from events.funnel import parse_duration
from projections.funnel_lead import Dimension
from projections.funnel_report import FunnelQuery
from projections.plan import plan_months
from services.api.funnel_models import FunnelReport
from services.api.models import ErrorBody, json_response
from services.api.params import FromParam, ToParam, when
from services.api.periods import parse_time, period
from services.api.plan_models import PlanReport, PlanRequest
from services.api.ports import context_of

router = APIRouter(tags=["funnel"])

_DIMENSIONS: tuple[Dimension, ...] = ("campaign", "channel", "source", "team")
_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "a parameter is not valid"},
    503: {"model": ErrorBody, "description": "this API has no funnel reader"},
}


class FunnelReader(Protocol):
    """Computes funnel flow from the event archive (never from snapshots)."""

    async def report(self, query: FunnelQuery) -> FunnelReport:
        """The figures of ``[start, end)`` as known at ``as_of``."""
        ...


class Planner(Protocol):
    """Works a revenue goal back through the observed funnel (``services.store.plan_report``)."""

    async def plan(self, request: PlanRequest) -> PlanReport:
        """The plan for a ``PlanRequest``; ValueError for a bad period."""
        ...


def install(app: FastAPI, reader: FunnelReader, planner: Planner | None = None) -> None:
    """Serve ``GET /v1/funnel`` with ``reader`` and ``GET /v1/plan`` with ``planner``."""
    app.state.funnel_reader = reader
    app.state.funnel_planner = planner


def reader_of(request: Request) -> FunnelReader | None:
    """The installed reader, or None."""
    return cast("FunnelReader | None", getattr(request.app.state, "funnel_reader", None))


def unavailable(what: str = "funnel reader") -> Response:
    return json_response(503, ErrorBody(error=f"the {what} is not configured"))


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
    start: FromParam = None,
    end: ToParam = None,
    as_of: Annotated[str | None, when("knowledge cut-off (event time)")] = None,
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
        FunnelQuery(begin, finish, when, dims, previous=compare == "previous", cohorts=cohorts)
    )
    return json_response(200, report)


def _revenue(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise ValueError(f"revenue {text!r} is not a number") from None
    if not (value.is_finite() and value > 0):
        raise ValueError("revenue must be a positive amount")
    return value


def plan_request(
    revenue: str, period: str, as_of: datetime, window: str, reps: int | None,
    currency: str | None, min_sample: int,
) -> PlanRequest:  # fmt: skip
    """A ``PlanRequest`` from text parameters (shared with the CLI); ValueError names the
    bad one."""
    plan_months(period)
    try:
        span = parse_duration(window)
    except ValueError:
        raise ValueError(f"window {window!r}: use a duration like 180d or 26w") from None
    if span.total_seconds() <= 0:
        raise ValueError("window must be longer than zero")
    if reps is not None and reps < 1:
        raise ValueError("reps must be at least 1")
    if min_sample < 1:
        raise ValueError("min_sample must be at least 1")
    cur = currency.strip().upper() if currency else None
    if cur is not None and not (len(cur) == 3 and cur.isalpha()):
        raise ValueError(f"currency {currency!r}: use an ISO 4217 code such as EUR")
    return PlanRequest(
        revenue=_revenue(revenue), period=period, as_of=as_of, window=span, reps=reps,
        currency=cur, min_sample=min_sample,
    )  # fmt: skip


@router.get(
    "/v1/plan",
    response_model=PlanReport,
    summary="Reverse funnel: the deals, opportunities, SQLs, SALs, MQLs and leads a revenue "
    "goal needs, per month and per rep",
    description="Average deal size and conversion rates come from the history observed in "
    "[as_of - window, as_of), exactly as GET /v1/funnel reports them for that window (same "
    "counts), with their sample sizes. Each step is rounded up. The run rate (entries per "
    "month in the window) and the gap are shown per stage, and the per-rep MQL figure next "
    "to the SLA's volume target. When a rate is zero or no deal was won, complete is false "
    "and blocked says why; the steps before that point are still given.",
    responses=_RESPONSES,
)
async def plan(
    request: Request,
    revenue: Annotated[str, Query(max_length=32, description="goal, e.g. 1200000")],
    period: Annotated[str, Query(max_length=16, description="2027-Q1, 2027-03 or 2027")],
    reps: Annotated[int | None, Query(description="sales reps; default: active in window")] = None,
    window: Annotated[str, Query(max_length=16, description="e.g. 180d, 26w")] = "180d",
    as_of: Annotated[str | None, when("end of the window")] = None,
    currency: Annotated[
        str | None, Query(max_length=3, description="default: most won deals in window")
    ] = None,
    min_sample: Annotated[int, Query(description="warn below this many leads")] = 30,
) -> Response:
    planner = cast("Planner | None", getattr(request.app.state, "funnel_planner", None))
    if planner is None:
        return unavailable("planner")
    try:
        when = parse_time(as_of) if as_of else context_of(request).clock()
        asked = plan_request(revenue, period, when, window, reps, currency, min_sample)
        report = await planner.plan(asked)
    except ValueError as exc:
        return bad(str(exc))
    return json_response(200, report)
