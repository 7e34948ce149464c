"""``leadledger funnel --from --to``: funnel flow analytics from the event archive.

The callback of the ``funnel`` command group: without a subcommand it prints the report,
so ``leadledger funnel check FILE`` keeps validating funnel files. It reads PostgreSQL
through the same reader as ``GET /v1/funnel``; ``--format json`` prints exactly the API's
body. Rendering is in ``services.funnel_render``, the chart in ``services.charts``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar, get_args

import typer
from rich.console import Console

from events.funnel import Funnel
from projections.funnel_lead import Dimension
from projections.funnel_report import FunnelQuery
from services import run_async
from services.api.funnel_models import FunnelReport
from services.api.periods import parse_time, period
from services.cli_format import emit
from services.settings import Settings

if TYPE_CHECKING:
    import asyncpg

console = Console(width=160)
T = TypeVar("T")
DIMENSION_NAMES: tuple[str, ...] = get_args(Dimension)


def dimensions(text: str | None) -> tuple[Dimension, ...]:
    """``campaign,team`` -> ("campaign", "team"); ValueError names the known dimensions."""
    if not text:
        return ()
    out: list[Dimension] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part not in DIMENSION_NAMES:
            raise ValueError(f"--by {part!r}: use one or more of {', '.join(DIMENSION_NAMES)}")
        if part not in out:
            out.append(part)  # type: ignore[arg-type]  # checked against Dimension above
    return tuple(out)


def funnel(
    ctx: typer.Context,
    start: Annotated[
        str | None, typer.Option("--from", help="Period start, a date or time (UTC).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Period end: a date (inclusive) or time (exclusive).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Use only events up to this time (default: now)."),
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Breakdown: campaign, channel, source, team (comma list).")
    ] = None,
    compare: Annotated[
        str | None, typer.Option(help="'previous': also the previous period of equal length.")
    ] = None,
    cohorts: Annotated[
        bool, typer.Option("--cohorts", help="Leads created per month and where they are now.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    chart: Annotated[
        Path | None, typer.Option(help="Also write a funnel chart (PNG) to this file.")
    ] = None,
) -> None:
    """Funnel flow per stage for a period: balances, inflow, outflow, conversion and time in
    stage, computed from the event archive. The period defaults to the current quarter.

    Subcommand: ``check`` validates a funnel file.
    """
    if ctx.invoked_subcommand is not None:
        return
    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    if compare not in (None, "previous"):
        raise typer.BadParameter("--compare takes 'previous'")
    now = datetime.now(UTC)
    try:
        begin, finish = period(start, end, now)
        when = parse_time(as_of) if as_of else now
        dims = dimensions(by)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    funnel_def = load_funnel_or_exit()

    async def run(pool: asyncpg.Pool) -> FunnelReport:
        from services.store.funnel_reader import PostgresFunnelReader

        reader = PostgresFunnelReader(pool, funnel_def)
        return await reader.report(
            FunnelQuery(begin, finish, when, dims, previous=compare is not None, cohorts=cohorts)
        )

    report = run_async.run(with_pool(run))
    print_report(report, fmt)
    if chart is not None:
        from services.charts import funnel_chart

        funnel_chart(report, chart)
        if fmt == "table":
            console.print(f"chart written to {chart}")


def print_report(report: FunnelReport, fmt: str) -> None:
    """The report as a table, CSV or the API's JSON body."""
    from services import funnel_render as render

    emit(
        report,
        fmt,
        console,
        csv=lambda: render.report_csv(report),
        tables=lambda: render.tables(report),
        warnings=report.warnings,
    )


def load_funnel_or_exit() -> Funnel:
    """The configured funnel; a usage error (exit 2) when the file is not valid."""
    from pydantic import ValidationError

    from events.funnel import load_funnel

    try:
        return load_funnel(Settings().funnel_file)
    except (ValidationError, OSError) as exc:
        raise typer.BadParameter(f"invalid funnel file: {exc}") from None


async def with_pool(use: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """Run one read with a pool of one connection, closed afterwards. An unreachable or
    failing database is a message and exit code 1, not a traceback."""
    import asyncpg

    try:
        pool = await asyncpg.create_pool(Settings().database_url, min_size=1, max_size=1)
    except (OSError, asyncpg.PostgresError) as exc:
        console.print(f"[red]cannot reach PostgreSQL[/red] (LEADLEDGER_DATABASE_URL): {exc}")
        raise typer.Exit(1) from None
    try:
        return await use(pool)
    except (OSError, asyncpg.PostgresError) as exc:
        console.print(f"[red]reading the event archive failed:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        await pool.close()
