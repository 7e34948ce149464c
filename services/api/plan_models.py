"""The request and response body of ``GET /v1/plan`` (and what ``leadledger plan`` prints).

Rates sit next to the counts they come from (the funnel report's ``converted`` and
``entrants`` for the same window); money is a decimal string next to its currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

_FROZEN = ConfigDict(frozen=True)


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """What a caller asks: the goal, the period, and how to observe the history."""

    revenue: Decimal
    period: str
    as_of: datetime
    window: timedelta = timedelta(days=180)
    reps: int | None = None
    currency: str | None = None
    min_sample: int = 30


class PlanRate(BaseModel):
    """An observed conversion rate and its sample."""

    model_config = _FROZEN

    from_stage: str
    to_stage: str
    converted: int
    entrants: int = Field(description="the sample: leads that entered from_stage in the window")
    rate: Decimal | None = Field(description="converted / entrants, as GET /v1/funnel shows it")
    small_sample: bool = Field(description="entrants below min_sample")


class PlanStepOut(BaseModel):
    """The volume one stage must deliver, and the window's run rate for it."""

    model_config = _FROZEN

    stage: str
    needed: int = Field(description="over the whole plan period")
    per_month: dict[str, int]
    per_rep_per_month: dict[str, int]
    rate: PlanRate | None = Field(description="conversion from this stage into the step above")
    needed_per_month: Decimal = Field(description="needed / months, 1 decimal")
    run_rate_per_month: Decimal = Field(description="observed entries per average month")
    gap_per_month: Decimal = Field(description="needed_per_month - run_rate_per_month")


class PlanSla(BaseModel):
    """The plan's per-rep figure next to the marketing side of the SLA."""

    model_config = _FROZEN

    stage: str
    target_per_rep_per_month: int = Field(description="events/sla.yaml volume.per_rep")
    plan_per_rep_per_month: int | None
    note: str


class PlanWindow(BaseModel):
    """The observation window ``[start, end)``; end is the plan's as_of."""

    model_config = _FROZEN

    start: AwareDatetime
    end: AwareDatetime
    days: Decimal


class PlanReport(BaseModel):
    """A reverse-funnel plan (see ``assumptions``)."""

    model_config = _FROZEN

    revenue: Decimal
    currency: str
    period: str
    months: list[str]
    reps: int
    reps_observed: bool = Field(description="reps counted from the window's assignments")
    window: PlanWindow
    as_of: AwareDatetime
    min_sample: int
    average_deal: Decimal | None
    deals_won: int = Field(description="won deals in the currency in the window (the sample)")
    revenue_won: Decimal
    rates: list[PlanRate]
    steps: list[PlanStepOut]
    complete: bool = Field(description="false when a zero rate or no won deal stops the plan")
    blocked: str | None
    warnings: list[str]
    sla: PlanSla | None
    assumptions: list[str]
