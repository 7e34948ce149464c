"""GET /v1/feedback: sales' feedback on lead quality per campaign, channel or lead source.

Recomputed from the event archive on every request (``services.store.feedback_reader``), so
marketing sees which programs produce leads that sales rejects or disqualifies. The reader is
``app.state.feedback_reader`` (set by ``services.api_server``); reading needs no token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Protocol

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from projections.closed_loop.feedback import Dimension, FeedbackRow
from services.api.models import ErrorBody, json_response
from services.api.params import FromParam, ToParam
from services.api.periods import period
from services.api.ports import context_of

router = APIRouter(tags=["closed loop"])


class FeedbackReader(Protocol):
    async def feedback(
        self, start: datetime, end: datetime, by: Dimension
    ) -> list[FeedbackRow]: ...


class FeedbackRowOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str = Field(description="campaign id, channel or lead source; (none) when unknown")
    leads: int = Field(description="leads with any of the counts below in the period")
    handoffs: int = Field(description="MQL handoffs started in the period")
    rejected: int = Field(description="handoffs sales rejected (disqualified or recycled)")
    rejected_percent: float | None = Field(description="rejected per handoff, in percent")
    disqualified: int = Field(description="lead.disqualified events in the period")
    suppressing: int = Field(description="of those, with a suppressing reason code")
    suppressed_rehandoffs: int = Field(description="hand-overs of suppressed leads")
    reasons: dict[str, int] = Field(description="disqualifications per reason code")


class FeedbackReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: datetime
    end: datetime = Field(description="exclusive")
    by: Dimension
    rows: list[FeedbackRowOut]
    total: FeedbackRowOut


def report(
    start: datetime, end: datetime, by: Dimension, rows: list[FeedbackRow]
) -> FeedbackReport:
    """The API body (the CLI prints the same)."""
    total = FeedbackRow("total")
    for row in rows:
        total.leads |= row.leads
        total.handoffs += row.handoffs
        total.rejected += row.rejected
        total.disqualified += row.disqualified
        total.suppressing += row.suppressing
        total.suppressed_rehandoffs += row.suppressed_rehandoffs
        total.reasons.update(row.reasons)
    return FeedbackReport(
        start=start, end=end, by=by, rows=[_out(r) for r in rows], total=_out(total)
    )


def _out(row: FeedbackRow) -> FeedbackRowOut:
    share = row.rejected_share
    return FeedbackRowOut(
        key=row.key,
        leads=len(row.leads),
        handoffs=row.handoffs,
        rejected=row.rejected,
        rejected_percent=None if share is None else round(100 * share, 2),
        disqualified=row.disqualified,
        suppressing=row.suppressing,
        suppressed_rehandoffs=row.suppressed_rehandoffs,
        reasons=dict(sorted(row.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


@router.get(
    "/v1/feedback",
    response_model=FeedbackReport,
    summary="Sales feedback on lead quality per campaign, channel or source",
    description="Per program (the lead-creation touch's campaign and channel, or the lead "
    "source): MQL handoffs in [from, to), how many sales rejected, disqualifications by "
    "reason code (and how many suppress the lead), and re-handoffs of suppressed leads. "
    "Defaults: the current calendar quarter, by campaign.",
    responses={
        422: {"model": ErrorBody, "description": "a parameter is not valid"},
        503: {"model": ErrorBody, "description": "this API has no feedback reader"},
    },
)
async def sales_feedback(
    request: Request,
    start: FromParam = None,
    end: ToParam = None,
    by: Annotated[Dimension, Query(description="dimension of the rows")] = "campaign",
) -> Response:
    reader: FeedbackReader | None = getattr(request.app.state, "feedback_reader", None)
    if reader is None:
        return json_response(503, ErrorBody(error="the feedback reader is not configured"))
    try:
        begin, finish = period(start, end, context_of(request).clock())
    except ValueError as exc:
        return json_response(422, ErrorBody(error=str(exc)))
    return json_response(200, report(begin, finish, by, await reader.feedback(begin, finish, by)))
