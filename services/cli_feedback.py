"""``leadledger feedback``: sales' feedback on lead quality per campaign, channel or source.

Same reader and body as ``GET /v1/feedback`` (``--format json`` prints exactly the API's
body), recomputed from the event archive.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.table import Table

from projections.closed_loop.feedback import Dimension
from services import run_async
from services.api.feedback import FeedbackReport, FeedbackRowOut, report
from services.api.periods import period
from services.cli_format import emit
from services.settings import Settings

console = Console(width=160)
_DIMENSIONS = ("campaign", "channel", "source")
_FORMATS = ("table", "csv", "json")
_COLUMNS = ("handoffs", "rejected", "rejected %", "disqualified", "suppressing",
            "suppressed re-handoffs", "leads", "top reasons")  # fmt: skip


def feedback(
    start: Annotated[
        str | None, typer.Option("--from", help="From this date or time (UTC).")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="...until this date (inclusive) or time (exclusive)."),
    ] = None,
    by: Annotated[str, typer.Option("--by", help="campaign, channel or source.")] = "campaign",
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Which programs produce leads that sales rejects or disqualifies, and why."""
    if by not in _DIMENSIONS:
        raise typer.BadParameter("--by must be campaign, channel or source")
    if fmt not in _FORMATS:
        raise typer.BadParameter("--format must be table, csv or json")
    try:
        begin, finish = period(start, end, datetime.now(UTC))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    body = run_async.run(_read(begin, finish, cast(Dimension, by)))
    emit(body, fmt, console, csv=lambda: feedback_csv(body), tables=lambda: [feedback_table(body)])


async def _read(start: datetime, end: datetime, by: Dimension) -> FeedbackReport:
    import asyncpg

    from events.funnel import load_funnel
    from services.store.feedback_reader import PostgresFeedbackReader

    settings = Settings()
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        reader = PostgresFeedbackReader(pool, load_funnel(settings.funnel_file))
        return report(start, end, by, await reader.feedback(start, end, by))
    finally:
        await pool.close()


def _cells(row: FeedbackRowOut) -> list[str]:
    share = "-" if row.rejected_percent is None else f"{row.rejected_percent:.1f}"
    top = ", ".join(f"{code} {n}" for code, n in list(row.reasons.items())[:3])
    return [str(row.handoffs), str(row.rejected), share, str(row.disqualified),
            str(row.suppressing), str(row.suppressed_rehandoffs), str(row.leads), top]  # fmt: skip


def feedback_table(body: FeedbackReport) -> Table:
    """Rows, worst first, and the total."""
    table = Table(
        body.by, *_COLUMNS,
        title=f"Sales feedback by {body.by}",
        caption=f"{body.start:%Y-%m-%d %H:%M} to {body.end:%Y-%m-%d %H:%M} UTC (end exclusive)",
    )  # fmt: skip
    for row in body.rows:
        table.add_row(row.key, *_cells(row))
    table.add_section()
    table.add_row("total", *_cells(body.total))
    return table


def feedback_csv(body: FeedbackReport) -> str:
    """One line per row plus the total; reasons as ``code:n`` joined by ``;``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([body.by, "handoffs", "rejected", "rejected_percent", "disqualified",
                     "suppressing", "suppressed_rehandoffs", "leads", "reasons"])  # fmt: skip
    for row in [*body.rows, body.total]:
        reasons = ";".join(f"{k}:{v}" for k, v in row.reasons.items())
        writer.writerow([row.key, row.handoffs, row.rejected, row.rejected_percent,
                         row.disqualified, row.suppressing, row.suppressed_rehandoffs,
                         row.leads, reasons])  # fmt: skip
    return out.getvalue()
