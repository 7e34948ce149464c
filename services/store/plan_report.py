"""A reverse-funnel plan from the event archive: the funnel report over the observation
window feeds ``projections.plan``, so the plan's rates are the report's conversions.

The window is ``[as_of - window, as_of)`` and the report is as known at ``as_of``: the
conversion of a stage is the share of the leads that entered it in the window that reached
the next main-path stage by as_of, exactly as ``GET /v1/funnel?from=..&to=..&as_of=..``
computes it for the same three times.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Final, Protocol

from events.funnel import Funnel
from projections.funnel_report import FunnelFlow, FunnelQuery, WonTotal
from projections.plan import Plan, PlanInput, PlanStep, Rate, plan_months, reverse_funnel
from services.api.plan_models import (
    PlanRate,
    PlanReport,
    PlanRequest,
    PlanSla,
    PlanStepOut,
    PlanWindow,
)

#: The plan works back to this main-path stage (leads needed).
FIRST_STAGE: Final = "lead"


def plan_input(
    flow: FunnelFlow,
    funnel: Funnel,
    request: PlanRequest,
    sla_target: tuple[str, int] | None,
) -> tuple[PlanInput, bool]:
    """The plan's inputs from the window's funnel report; True when reps were observed.
    ValueError for a bad period, a currency without won deals is left to the plan."""
    months = plan_months(request.period)
    path = funnel.main_path[funnel.main_path.index(FIRST_STAGE) :]
    rows = {s.stage: s for s in flow.stages}
    rates = tuple(
        Rate(stage, nxt, rows[stage].converted or 0, rows[stage].entrants)
        for stage, nxt in pairwise(path)
    )
    won = {w.currency: w for w in flow.won}
    currency = request.currency or _usual_currency(won)
    chosen = won.get(currency)
    reps = request.reps if request.reps is not None else max(flow.active_reps, 1)
    days = Decimal(request.window.total_seconds()) / Decimal(86400)
    inputs = PlanInput(
        revenue=request.revenue, currency=currency, months=months, reps=reps,
        rates=rates, entries={s: rows[s].inflow for s in path},
        deals_won=chosen.deals if chosen else 0,
        revenue_won=chosen.revenue if chosen else Decimal(0),
        window_days=days, min_sample=request.min_sample, sla_target=sla_target,
        all_deals_won=sum(w.deals for w in flow.won),
    )  # fmt: skip
    return inputs, request.reps is None


def _usual_currency(won: Mapping[str, WonTotal]) -> str:
    """The currency with the most won deals (ties: alphabetical); EUR with none."""
    return min(won, key=lambda c: (-won[c].deals, c)) if won else "EUR"


def assumptions(p: PlanInput, start: datetime, end: datetime, as_of: datetime) -> list[str]:
    """What the plan takes for granted, in words."""
    other = "; deals in other currencies count in the rates, not in the average"
    return [
        f"Rates: the funnel report's conversion for the window [{start:%Y-%m-%d %H:%M}, "
        f"{end:%Y-%m-%d %H:%M}) UTC as of {as_of:%Y-%m-%d %H:%M} UTC (GET /v1/funnel with "
        "the same from, to and as_of): leads entering a stage in the window that reached the "
        "next main-path stage by as-of. Recent entrants had less time, so rates lean low.",
        f"Average deal size: won revenue / won deals in {p.currency} in the window{other}.",
        "Each won deal is one customer; an opportunity gives at most one deal.",
        "Volumes are needed within the plan's months: the plan does not shift earlier "
        "stages forward by the sales cycle.",
        "Rounding: each step up (ceil) from the exact ratio; a total is split over the "
        "months as evenly as whole numbers allow (earlier months take the remainder); per "
        "rep: a month's figure / reps, rounded up.",
        "Run rate: entries into the stage in the window per average month (30.44 days); "
        "deals: won deals in any currency (a count, like the stages).",
        f"Rates resting on fewer than {p.min_sample} leads (deals, for the average) are flagged.",
    ]


def _rate(r: Rate, min_sample: int) -> PlanRate:
    return PlanRate(
        from_stage=r.from_stage, to_stage=r.to_stage, converted=r.converted,
        entrants=r.entrants, rate=r.value, small_sample=r.entrants < min_sample,
    )  # fmt: skip


def _step(s: PlanStep, months: tuple[str, ...], min_sample: int) -> PlanStepOut:
    needed = (Decimal(s.needed) / Decimal(len(months))).quantize(Decimal("0.1"))
    return PlanStepOut(
        stage=s.stage, needed=s.needed, per_month=dict(zip(months, s.per_month, strict=True)),
        per_rep_per_month=dict(zip(months, s.per_rep_per_month, strict=True)),
        rate=_rate(s.rate, min_sample) if s.rate else None, needed_per_month=needed,
        run_rate_per_month=s.run_rate, gap_per_month=s.gap_per_month,
    )  # fmt: skip


def report_of(
    plan: Plan, p: PlanInput, request: PlanRequest, start: datetime, observed: bool
) -> PlanReport:
    """The response body of ``GET /v1/plan``."""
    sla = None
    if plan.sla is not None:
        sla = PlanSla(stage=plan.sla.stage, target_per_rep_per_month=plan.sla.target,
                     plan_per_rep_per_month=plan.sla.need, note=plan.sla.note)  # fmt: skip
    return PlanReport(
        revenue=p.revenue, currency=p.currency, period=request.period, months=list(p.months),
        reps=p.reps, reps_observed=observed,
        window=PlanWindow(start=start, end=request.as_of, days=p.window_days),
        as_of=request.as_of, min_sample=p.min_sample, average_deal=plan.average_deal,
        deals_won=p.deals_won, revenue_won=p.revenue_won,
        rates=[_rate(r, p.min_sample) for r in p.rates],
        steps=[_step(s, p.months, p.min_sample) for s in plan.steps],
        complete=plan.blocked is None, blocked=plan.blocked, warnings=list(plan.warnings),
        sla=sla, assumptions=assumptions(p, start, request.as_of, request.as_of),
    )  # fmt: skip


class FlowSource(Protocol):
    """Where funnel reports come from (``PostgresFunnelReader``, or a fake in tests)."""

    funnel: Funnel

    async def flow(self, query: FunnelQuery) -> FunnelFlow:
        """The pure funnel report asked by ``query``."""
        ...


class Planner:
    """Plans from a ``FlowSource``, with the SLA's volume target (stage, per rep) if any."""

    def __init__(self, source: FlowSource, sla_target: tuple[str, int] | None) -> None:
        self.source = source
        self.sla_target = sla_target

    async def plan(self, request: PlanRequest) -> PlanReport:
        """Observe the window, then work the goal back (ValueError for a bad period)."""
        plan_months(request.period)  # a bad period fails before the archive is read
        start = request.as_of - request.window
        flow = await self.source.flow(FunnelQuery(start, request.as_of, request.as_of))
        p, observed = plan_input(flow, self.source.funnel, request, self.sla_target)
        return report_of(reverse_funnel(p), p, request, start, observed)
