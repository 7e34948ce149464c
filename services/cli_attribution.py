"""``leadledger attribution``: credited revenue per campaign and channel, model comparisons
and deal explanations, computed from the event archive.

It reads PostgreSQL through the same reader as ``GET /v1/attribution``, so the terminal and
the API always agree; ``--format json`` prints exactly the API's body. Rendering lives in
``services.attribution_render`` so it is tested with fixed data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from services import run_async
from services.api.attribution_models import (
    AttributionReport,
    DealExplanation,
    Dimension,
    UnknownModel,
)
from services.api.periods import model_list, parse_time, period
from services.cli_format import emit
from services.settings import Settings

if TYPE_CHECKING:
    import asyncpg

    from services.store.attribution_reader import PostgresAttributionReader

#: Wide enough for five models side by side; narrower terminals wrap cells.
console = Console(width=200)
T = TypeVar("T")

_BY: dict[str, tuple[Dimension, ...]] = {
    "campaign": ("campaign",),
    "channel": ("channel",),
    "both": ("campaign", "channel"),
}


def attribution(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model name, alias or name@vN (W, linear...).")
    ] = "W",
    start: Annotated[
        str | None, typer.Option("--from", help="Deals won from this date or time (UTC).")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="...until this date (inclusive) or time (exclusive)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Use only events up to this event time (a date: 00:00)."),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(help="campaign, channel or both (default: both; campaign for --compare)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    compare: Annotated[
        str | None, typer.Option(help="Models side by side, e.g. first,last,linear,W.")
    ] = None,
    explain: Annotated[
        str | None, typer.Option(help="Show how this deal's credit is split, touch by touch.")
    ] = None,
    models_file: Annotated[
        Path | None, typer.Option(help="Attribution model YAML; default: packaged.")
    ] = None,
) -> None:
    """Credited won revenue, deals and touches per campaign and channel.

    Deals count by their won time; the period defaults to the current quarter.

    With --as-of, only events up to that time count: deals won later show as open.
    """
    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    if by not in (None, "campaign", "channel", "both"):
        raise typer.BadParameter("--by must be campaign, channel or both")
    now = datetime.now(UTC)
    try:
        begin, finish = period(start, end, now)
        when = parse_time(as_of) if as_of else now
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    models = model_list(compare) if compare else [model]
    dimensions = _BY[by or ("campaign" if compare else "both")]
    reader = _reader_factory(models_file, models)
    try:
        if explain is not None:
            found = run_async.run(_with_reader(reader, lambda r: r.explain(explain, models, when)))
            if found is None:
                console.print(f"[red]deal {explain!r} not found[/red] as of {when:%Y-%m-%d %H:%M}")
                raise typer.Exit(1)
            _print_explanation(found, fmt)
            return
        report = run_async.run(
            _with_reader(reader, lambda r: r.report(models, begin, finish, when, dimensions))
        )
    except UnknownModel as exc:
        raise typer.BadParameter(str(exc)) from None
    _print_report(report, fmt, compared=compare is not None)


def _print_report(report: AttributionReport, fmt: str, *, compared: bool) -> None:
    from services import attribution_render as render

    tables = render.compare_tables if compared else render.report_tables
    emit(
        report,
        fmt,
        console,
        csv=lambda: render.report_csv(report),
        tables=lambda: tables(report),
        warnings=report.warnings,
    )


def _print_explanation(found: DealExplanation, fmt: str) -> None:
    from services import attribution_render as render

    emit(
        found,
        fmt,
        console,
        csv=lambda: render.explain_csv(found),
        tables=lambda: [render.explain_table(found)],
        warnings=found.warnings,
    )


_Reader = Callable[["asyncpg.Pool"], "PostgresAttributionReader"]


def _reader_factory(models_file: Path | None, models: list[str]) -> _Reader:
    """Load and validate the model file, the model names and the funnel before touching the
    database, so a typo fails fast with a usage error."""
    from pydantic import ValidationError

    from events.attribution_config import load_attribution
    from events.funnel import load_funnel
    from services.store.attribution_reader import PostgresAttributionReader
    from services.store.attribution_report import resolve_models

    try:
        config = load_attribution(models_file)
        funnel = load_funnel(Settings().funnel_file)
    except (ValidationError, OSError) as exc:
        raise typer.BadParameter(f"invalid model or funnel file: {exc}") from None
    try:
        resolve_models(config, models)
    except UnknownModel as exc:
        raise typer.BadParameter(str(exc)) from None
    return lambda pool: PostgresAttributionReader(pool, funnel, config)


async def _with_reader(
    make: _Reader, use: Callable[[PostgresAttributionReader], Awaitable[T]]
) -> T:
    """Run one read with a pool of one connection, closed afterwards."""
    import asyncpg

    pool = await asyncpg.create_pool(Settings().database_url, min_size=1, max_size=1)
    try:
        return await use(make(pool))
    finally:
        await pool.close()
