"""``leadledger sla``: the SLA board, compliance reports and the config check.

The board and the report read PostgreSQL through the same reader as the HTTP API, so the
terminal and ``/v1/sla/*`` always agree. Rendering is split from reading so it can be tested
with fixed data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from services import run_async
from services.api.sla_models import OpenStatus, SlaOpenPage, SlaSummary
from services.cli_format import duration
from services.settings import Settings

if TYPE_CHECKING:
    from services.store.sla_reader import PostgresSlaReader

sla_app = typer.Typer(help="SLA timers: the board, compliance reports, the policy file.")
console = Console(width=160)

_STATUS_STYLE = {"breached": "bold red", "warning": "yellow", "ok": "green"}


def board_table(page: SlaOpenPage) -> Table:
    """Running timers, most urgent first (the reader's order)."""
    table = Table(
        "#", "status", "policy", "lead", "owner", "team", "deadline (UTC)", "overdue / left",
        "delay", title=f"SLA board: {page.count} running timers, most urgent first",
        caption=f"as of {page.as_of:%Y-%m-%d %H:%M:%S} UTC; status in event time",
    )  # fmt: skip
    for i, t in enumerate(page.timers, start=1):
        left = t.time_left_seconds
        when = f"{duration(-left)} overdue" if left < 0 else f"{duration(left)} left"
        table.add_row(
            str(i),
            f"[{_STATUS_STYLE[t.status]}]{t.status}[/]",
            t.policy,
            t.lead_id,
            t.owner_id or "-",
            t.team or "-",
            f"{t.deadline.astimezone(UTC):%Y-%m-%d %H:%M}",
            when,
            t.delay_side,
        )
    return table


def report_tables(summary: SlaSummary) -> list[Table]:
    """Compliance per policy and team, then the volume SLA per month."""
    period = f"{summary.start:%Y-%m-%d %H:%M} to {summary.end:%Y-%m-%d %H:%M} UTC"
    table = Table(
        "policy", "team", "started", "met", "breached", "cancelled", "running", "met %",
        "p50 to met", "p90 to met", title=f"SLA compliance, timers started {period}",
    )  # fmt: skip
    for p in summary.policies:
        pct = "-" if p.met_percent is None else f"{p.met_percent:.1f}"
        style = "bold" if p.team == "all" else None
        table.add_row(
            p.policy, p.team, str(p.started), str(p.met), str(p.breached), str(p.cancelled),
            str(p.running), pct, duration(p.p50_seconds), duration(p.p90_seconds), style=style,
        )  # fmt: skip
    volume = Table(
        "month", "team", "MQLs", "active reps", "target", "met",
        title="Marketing volume SLA (MQLs per active rep per month)",
    )  # fmt: skip
    for v in summary.volume:
        met = "-" if v.met is None else "[green]yes[/]" if v.met else "[red]no[/]"
        volume.add_row(v.month, v.team, str(v.mqls), str(v.active_reps), str(v.target), met)
    return [table, volume]


@sla_app.command("board")
def board(
    policy: Annotated[str | None, typer.Option(help="Only this policy.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this owner.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    status: Annotated[str | None, typer.Option(help="ok, warning or breached.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 25,
) -> None:
    """Print the running SLA timers as a table, most urgent first."""
    if status not in (None, "ok", "warning", "breached"):
        raise typer.BadParameter("status must be ok, warning or breached")
    wanted: OpenStatus | None = status  # type: ignore[assignment]  # checked just above

    async def read() -> SlaOpenPage:
        async with _reader() as reader:
            return await reader.open_timers(
                datetime.now(UTC), policy=policy, owner=owner, team=team, status=wanted,
                limit=limit,
            )  # fmt: skip

    console.print(board_table(run_async.run(read())))


@sla_app.command("report")
def report(
    start: Annotated[datetime, typer.Option("--from", help="Start (date or time, UTC).")],
    end: Annotated[datetime | None, typer.Option("--to", help="End, exclusive; now.")] = None,
) -> None:
    """Print SLA compliance per policy and team, and the volume SLA per month."""

    async def read() -> SlaSummary:
        async with _reader() as reader:
            return await reader.summary(_utc(start), _utc(end or datetime.now(UTC)))

    for table in report_tables(run_async.run(read())):
        console.print(table)


@sla_app.command("check")
def check(
    path: Annotated[Path | None, typer.Argument(help="SLA YAML; default: packaged.")] = None,
) -> None:
    """Validate an SLA file against the funnel and print its policies."""
    from pydantic import ValidationError

    from events.funnel import load_funnel
    from events.sla_config import load_sla

    settings = Settings()
    try:
        config = load_sla(load_funnel(settings.funnel_file), path)
    except (ValidationError, OSError) as exc:
        console.print(f"[red]invalid SLA file:[/red] {exc}")
        raise typer.Exit(1) from None
    table = Table("policy", "starts in", "stops on", "warning", "limit", "clock", "escalations")
    for name, p in config.policies.items():
        stop = f"{p.stop.value} x{p.contacts}" if p.stop.value == "contacts" else p.stop.value
        ladder = ", ".join(f"+{_d(e.after)} {e.to}" for e in p.escalations) or "-"
        table.add_row(name, p.start_stage, stop, _d(p.warning), _d(p.limit), p.clock, ladder)
    console.print(table)
    if config.volume:
        v = config.volume
        console.print(
            f"volume: >= {v.per_rep} MQLs ({v.stage}) per active rep per month, {v.timezone}"
        )


def _d(value: timedelta) -> str:
    return duration(value.total_seconds())


@asynccontextmanager
async def _reader() -> AsyncIterator[PostgresSlaReader]:
    """A pool and a reader for one command; the pool is closed afterwards."""
    import asyncpg

    from events.funnel import load_funnel
    from events.sla_config import load_sla
    from services.store.sla_reader import PostgresSlaReader

    settings = Settings()
    config = load_sla(load_funnel(settings.funnel_file), settings.sla_file)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        yield PostgresSlaReader(pool, config)
    finally:
        await pool.close()


def _utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
