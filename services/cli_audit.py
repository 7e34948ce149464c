"""``leadledger audit LEAD_ID``: one lead's audit trail, from the same reader as
``GET /v1/leads/{lead_id}/timeline`` (``--format json`` prints exactly the API's body)."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services import run_async
from services.api.audit_models import LeadTimeline, TimelineEntry
from services.cli_format import duration
from services.settings import Settings

#: Wide enough that summaries rarely wrap; narrower terminals wrap cells.
console = Console(width=200)

_SLA_STYLE = {"breached": "bold red", "escalated": "bold red", "warning": "yellow", "met": "green"}


def in_stage(entry: TimelineEntry) -> str:
    """For a stage change: how long the lead stayed in the stage it entered (or so far)."""
    stage = entry.stage
    if stage is None:
        return ""
    if stage.stage_seconds is not None:
        return duration(stage.stage_seconds)
    return f"{duration(stage.in_stage_so_far_seconds)} so far"


def what(entry: TimelineEntry) -> str:
    """The summary, plus the time spent in the stage a stage change left."""
    stage = entry.stage
    if stage is not None and stage.from_stage is not None:
        left = duration(stage.left_stage_seconds)
        return f"{entry.summary} (after {left} in {stage.from_stage})"
    return entry.summary


def _style(entry: TimelineEntry) -> str | None:
    if entry.kind == "rejected":
        return "red"
    if entry.kind == "closed_loop":
        return "magenta"
    if entry.sla is not None:
        return _SLA_STYLE.get(entry.sla.fact)
    return None


def timeline_table(timeline: LeadTimeline) -> Table:
    """Every entry in event-time order: time, type, source, what happened, time in stage."""
    owner = f"{timeline.owner_id} ({timeline.team})" if timeline.owner_id else "nobody"
    notes = [f"{timeline.events} events, {timeline.rejected} rejected"]
    if not timeline.sla_available:
        notes.append("no SLA read model in this database")
    if timeline.merged_leads:
        notes.append(f"with merged {', '.join(timeline.merged_leads)}")
    table = Table(
        "#", "time (UTC)", "type", "source", "what", "in stage", "event id",
        title=(f"Lead {timeline.lead_id}: {timeline.current_stage or '-'} (highest "
               f"{timeline.highest_stage or '-'}), owner {owner}"),
        caption=(f"{'; '.join(notes)}. Times are event times; a rejected record without a "
                 f"usable time is placed when it was rejected. As of "
                 f"{timeline.as_of.astimezone(UTC):%Y-%m-%d %H:%M} UTC."),
    )  # fmt: skip
    table.columns[5].justify = "right"
    for i, entry in enumerate(timeline.entries, start=1):
        table.add_row(
            str(i), f"{entry.at.astimezone(UTC):%Y-%m-%d %H:%M:%S}", entry.type,
            entry.source or "-", what(entry), in_stage(entry), entry.event_id or "-",
            style=_style(entry),
        )  # fmt: skip
    return table


def audit(
    lead_id: Annotated[str, typer.Argument(help="The lead id (the events' subject).")],
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Every event of a lead in event-time order, with what it changed.

    Sources, stage changes with time in stage, owners, touches, deals, rejections, SLA facts.
    """
    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format must be table or json")

    async def read() -> LeadTimeline | None:
        import asyncpg

        from services.store.audit_reader import PostgresAuditReader

        pool = await asyncpg.create_pool(Settings().database_url, min_size=1, max_size=1)
        try:
            return await PostgresAuditReader(pool).timeline(lead_id)
        finally:
            await pool.close()

    timeline = run_async.run(read())
    if timeline is None:
        console.print(f"[red]lead {lead_id!r} not found[/red]")
        raise typer.Exit(1)
    if fmt == "json":
        typer.echo(timeline.model_dump_json(indent=2))
    else:
        console.print(timeline_table(timeline))
