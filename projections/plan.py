"""The reverse funnel: a revenue goal worked back into the volumes each stage must deliver.

revenue -> deals (goal / average deal size) -> opportunities -> SQLs -> SALs -> MQLs ->
leads, each step dividing by the observed conversion rate into the stage after it. Pure
arithmetic (Decimal and integers, no floats); the inputs come from a funnel report over the
observation window, so the plan's rates *are* the report's conversions (same counts).

Rounding: every step is rounded up (ceil) from the exact ratio (``needed * entrants /
converted``, integer arithmetic; deals: ``goal * deals / won revenue`` at 60 digits), so the
plan never asks for a fraction of a lead and never rounds a need away. A step's total is
split over the plan's months as evenly as whole numbers allow (the earlier months take the
remainder), and per rep each month's figure is divided by the reps and rounded up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Context, Decimal
from typing import Final

from projections.funnel_flow import rate

_EXACT = Context(prec=60)
#: Days in an average Gregorian month: run rates are per such month.
MONTH_DAYS: Final = Decimal("30.436875")
_PERIOD = re.compile(r"^(?P<year>\d{4})(?:-(?:Q(?P<quarter>[1-4])|(?P<month>0[1-9]|1[0-2])))?$")


def plan_months(text: str) -> tuple[str, ...]:
    """``2027-Q1`` -> (2027-01, 2027-02, 2027-03); ``2027-03``; ``2027`` (twelve months).
    ValueError names the accepted forms."""
    match = _PERIOD.match(text.strip().upper())
    if match is None:
        raise ValueError(f"period {text!r}: use a year (2027), a quarter (2027-Q1) or a "
                         "month (2027-03)")  # fmt: skip
    year = int(match["year"])
    if match["quarter"]:
        first = 3 * (int(match["quarter"]) - 1) + 1
        months = range(first, first + 3)
    elif match["month"]:
        months = range(int(match["month"]), int(match["month"]) + 1)
    else:
        months = range(1, 13)
    return tuple(f"{year:04d}-{m:02d}" for m in months)


@dataclass(frozen=True, slots=True)
class Rate:
    """Observed conversion ``from_stage`` -> ``to_stage``: ``converted`` of ``entrants``."""

    from_stage: str
    to_stage: str
    converted: int
    entrants: int

    @property
    def value(self) -> Decimal | None:
        """As the funnel report shows it (4 decimals); None without entrants."""
        return rate(self.converted, self.entrants)


@dataclass(frozen=True, slots=True)
class PlanInput:
    """What the plan needs. ``rates`` follow the main path from the first planned stage
    (e.g. lead -> mql, ..., opportunity -> customer); ``entries`` is each stage's inflow in
    the window, ``deals_won`` and ``revenue_won`` the window's won deals in ``currency``
    (the average deal size), ``all_deals_won`` its won deals in any currency (the deals' run
    rate, a count like the stages' entries)."""

    revenue: Decimal
    currency: str
    months: tuple[str, ...]
    reps: int
    rates: tuple[Rate, ...]
    entries: Mapping[str, int]
    deals_won: int
    revenue_won: Decimal
    window_days: Decimal
    min_sample: int = 30
    #: Won deals in the window in any currency; None: ``deals_won``.
    all_deals_won: int | None = None
    #: The marketing side of the SLA: (stage, at least this many per rep per month).
    sla_target: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One stage of the plan: the volume needed and how the window's run rate compares.
    ``rate`` is the conversion from this stage into the step before it (None for deals)."""

    stage: str
    needed: int
    per_month: tuple[int, ...]
    per_rep_per_month: tuple[int, ...]
    rate: Rate | None
    run_rate: Decimal
    gap_per_month: Decimal


@dataclass(frozen=True, slots=True)
class SlaCheck:
    """The plan's per-rep monthly need at the SLA's volume stage next to its target."""

    stage: str
    target: int
    need: int | None
    note: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The steps from deals back to the first stage; ``blocked`` says why the plan stops
    early (a zero rate, no won deal), and the steps before that point are still given."""

    average_deal: Decimal | None
    steps: tuple[PlanStep, ...]
    blocked: str | None
    warnings: tuple[str, ...]
    sla: SlaCheck | None


def split(total: int, parts: int) -> tuple[int, ...]:
    """``total`` over ``parts`` as evenly as whole numbers allow; earlier parts take more."""
    base, extra = divmod(total, parts)
    return tuple(base + (1 if i < extra else 0) for i in range(parts))


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for positive ``b``, exact."""
    return -(-a // b)


def run_rate(count: int, window_days: Decimal) -> Decimal:
    """Per average month: ``count`` over the window, scaled to ``MONTH_DAYS``, 1 decimal."""
    return _EXACT.divide(Decimal(count) * MONTH_DAYS, window_days).quantize(Decimal("0.1"))


def reverse_funnel(p: PlanInput) -> Plan:
    """Work the revenue goal back through the observed rates (see the module docstring)."""
    if p.reps < 1 or not p.months or p.revenue <= 0 or p.window_days <= 0:
        raise ValueError("a plan needs revenue > 0, at least one month, one rep and a window")
    warnings: list[str] = []
    if p.deals_won == 0 or p.revenue_won <= 0:
        no_deal = (f"no deal in {p.currency} was won in the window, so there is no average "
                   "deal size to plan with; widen --window or pick another --currency")  # fmt: skip
        return Plan(None, (), no_deal, (), None)
    average = _EXACT.divide(p.revenue_won, Decimal(p.deals_won)).quantize(Decimal("0.01"))
    if p.deals_won < p.min_sample:
        warnings.append(f"the average deal size rests on {p.deals_won} won deals "
                        f"(fewer than {p.min_sample})")  # fmt: skip
    deals_exact = _EXACT.divide(p.revenue * p.deals_won, p.revenue_won)
    needed = int(deals_exact.to_integral_value(rounding=ROUND_CEILING))
    last = p.rates[-1].to_stage if p.rates else "customer"
    all_deals = p.deals_won if p.all_deals_won is None else p.all_deals_won
    steps = [_step(p, last, needed, None, all_deals)]
    blocked: str | None = None
    for r in reversed(p.rates):
        if r.entrants == 0 or r.converted == 0:
            blocked = (f"no {r.from_stage} of the window reached {r.to_stage} "
                       f"({r.converted} of {r.entrants}): the plan cannot work back past "
                       f"{r.to_stage}; widen --window")  # fmt: skip
            break
        if r.entrants < p.min_sample:
            warnings.append(f"{r.from_stage} -> {r.to_stage} rests on {r.entrants} leads "
                            f"(fewer than {p.min_sample})")  # fmt: skip
        needed = ceil_div(needed * r.entrants, r.converted)
        steps.append(_step(p, r.from_stage, needed, r, p.entries.get(r.from_stage, 0)))
    return Plan(average, tuple(steps), blocked, tuple(warnings), _sla(p, steps))


def _step(p: PlanInput, stage: str, needed: int, r: Rate | None, observed: int) -> PlanStep:
    per_month = split(needed, len(p.months))
    current = run_rate(observed, p.window_days)
    monthly = _EXACT.divide(Decimal(needed), Decimal(len(p.months)))
    return PlanStep(
        stage=stage,
        needed=needed,
        per_month=per_month,
        per_rep_per_month=tuple(ceil_div(m, p.reps) for m in per_month),
        rate=r,
        run_rate=current,
        gap_per_month=(monthly - current).quantize(Decimal("0.1")),
    )


def _sla(p: PlanInput, steps: Sequence[PlanStep]) -> SlaCheck | None:
    if p.sla_target is None:
        return None
    stage, per_rep = p.sla_target
    step = next((s for s in steps if s.stage == stage), None)
    if step is None:
        note = f"the SLA's volume target is on {stage}, which this plan does not reach"
        return SlaCheck(stage, per_rep, None, note)
    need = max(step.per_rep_per_month)
    verdict = (
        "the target covers the plan"
        if per_rep >= need
        else f"the target is {need - per_rep} short of the plan: raise it to {need}"
    )
    note = (
        f"the plan needs {need} {stage.upper()}s per rep per month; the SLA's marketing side "
        f"asks at least {per_rep} (events/sla.yaml volume.per_rep): {verdict}"
    )
    return SlaCheck(stage, per_rep, need, note)
