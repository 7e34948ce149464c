"""``leadledger plan``: a revenue goal worked back into the volumes each stage must
deliver, from the rates observed in the event archive (the same code as ``GET /v1/plan``;
``--format json`` prints its body). Exit code 1 when the history cannot support a plan (a
zero rate, no won deal), 2 for bad options."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from events.funnel import Funnel
from services import run_async
from services.api.funnel_flow import plan_request
from services.api.periods import parse_time
from services.api.plan_models import PlanReport
from services.cli_format import emit
from services.cli_funnel import load_funnel_or_exit, with_pool
from services.settings import Settings

if TYPE_CHECKING:
    import asyncpg

console = Console(width=160)


def plan(
    revenue: Annotated[str, typer.Option(help="Revenue goal in --currency, e.g. 1200000.")],
    period: Annotated[str, typer.Option(help="Plan period: 2027-Q1, 2027-03 or 2027.")],
    reps: Annotated[
        int | None, typer.Option(help="Sales reps (default: reps assigned leads in the window).")
    ] = None,
    window: Annotated[str, typer.Option(help="Observation window before --as-of.")] = "180d",
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="End of the window (default: now).")
    ] = None,
    currency: Annotated[
        str | None, typer.Option(help="Currency of the goal (default: most won deals).")
    ] = None,
    min_sample: Annotated[int, typer.Option(help="Warn when a rate rests on fewer leads.")] = 30,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    chart: Annotated[
        Path | None, typer.Option(help="Also write a plan-versus-actual chart (PNG).")
    ] = None,
) -> None:
    """Reverse funnel: the leads, MQLs, SALs, SQLs and deals a revenue goal needs.

    Per month and per rep, from the observed conversion rates, against the current run rate.
    """
    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    try:
        when = parse_time(as_of) if as_of else datetime.now(UTC)
        asked = plan_request(revenue, period, when, window, reps, currency, min_sample)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    funnel = load_funnel_or_exit()
    target = _sla_target(funnel)

    async def run(pool: asyncpg.Pool) -> PlanReport:
        from services.store.funnel_reader import PostgresFunnelReader
        from services.store.plan_report import Planner

        return await Planner(PostgresFunnelReader(pool, funnel), target).plan(asked)

    report = run_async.run(with_pool(run))
    _print(report, fmt)
    if chart is not None:
        from services.charts import plan_chart

        plan_chart(report, chart)
        if fmt == "table":
            console.print(f"chart written to {chart}")
    if not report.complete:
        raise typer.Exit(1)


def _sla_target(funnel: Funnel) -> tuple[str, int] | None:
    from pydantic import ValidationError

    from events.sla_config import load_sla

    try:
        volume = load_sla(funnel, Settings().sla_file).volume
    except (ValidationError, OSError) as exc:
        raise typer.BadParameter(f"invalid SLA file: {exc}") from None
    return (volume.stage, volume.per_rep) if volume else None


def _print(report: PlanReport, fmt: str) -> None:
    from services import plan_render as render

    emit(
        report,
        fmt,
        console,
        csv=lambda: render.plan_csv(report),
        tables=lambda: [render.plan_table(report), *render.notes(report)],
    )
