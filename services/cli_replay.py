"""``leadledger replay`` and ``leadledger diff``: rebuild the read models from history into a
fresh schema, check them against the live ones, and dry-run a funnel or model change.

The engine is ``services.replay``; this module parses options, draws the progress bar and
prints results. Exit codes: 0 done (and, with ``--verify``, identical), 1 a verify mismatch,
2 bad input.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import asyncpg
import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from events.attribution_config import AttributionConfig, load_attribution
from events.funnel import Funnel, load_funnel
from events.sla_config import load_sla
from projections.sla import compile_rules
from services import run_async
from services.api.periods import parse_time
from services.processor.pipeline import Limits
from services.progress_bar import bar_callback, write_callback
from services.replay.digest import overall_digest
from services.replay.engine import ReplayPlan, ReplayResult
from services.replay.live_credits import live_credit_table
from services.replay.parallel import PartitionedSource, WorkerFailed, replay_parallel
from services.replay.projections import PROJECTIONS, VERIFIED
from services.replay.render import diff_json, digest_table, print_diffs
from services.replay.restore import RestoreResult, TopicNotEmpty, restore
from services.replay.schema import (
    LIVE_SCHEMA,
    BadSchemaName,
    SchemaExists,
    check_name,
    check_target,
    default_name,
)
from services.replay.sources import ArchiveSource, KafkaSource
from services.replay.tables import compare_schemas
from services.settings import Settings

console = Console(width=160)
SourceName = Literal["kafka", "archive"]


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _load_configs(
    funnel_file: Path | None, sla_file: Path | None, models_file: Path | None, s: Settings
) -> tuple[Funnel, object, AttributionConfig]:
    try:
        funnel = load_funnel(funnel_file or s.funnel_file)
        rules = compile_rules(load_sla(funnel, sla_file or s.sla_file), funnel)
        models = load_attribution(models_file)
    except (ValidationError, OSError, ValueError) as exc:
        raise _fail(f"invalid configuration: {exc}") from None
    return funnel, rules, models


def events_progress() -> Progress:
    """Bar, records done/total, records/s, elapsed and ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
    )  # fmt: skip


def replay_cmd(
    source: Annotated[
        str, typer.Option(help="kafka: the events topic from offset 0; archive: event_archive.")
    ] = "kafka",
    into: Annotated[
        str | None, typer.Option(help="Target schema (default: replay_YYYYmmdd_HHMMSS).")
    ] = None,
    replace_schema: Annotated[
        bool, typer.Option("--replace", help="Rebuild --into if it exists (swapped in when done).")
    ] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Stop each partition at this event time.")
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(help="Compare with the live read models row by row; exit 1 if unequal."),
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per pipeline batch.")] = 20_000,
    topic: Annotated[str | None, typer.Option(help="Events topic (default: settings).")] = None,
    funnel_file: Annotated[
        Path | None, typer.Option("--funnel", help="Funnel YAML to replay with.")
    ] = None,
    sla_file: Annotated[Path | None, typer.Option("--sla", help="SLA policies YAML.")] = None,
    models_file: Annotated[
        Path | None,
        typer.Option("--attribution", help="Attribution models YAML for the credit table."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Differing rows listed per table.")] = 10,
    workers: Annotated[
        int,
        typer.Option(
            min=0, help="Fold processes, each over some of the partitions (0: one per usable core)."
        ),
    ] = 0,
) -> None:
    """Rebuild every read model from history into a fresh schema (the live one is untouched)."""
    s = Settings()
    if source not in ("kafka", "archive"):
        raise _fail(f"--source must be kafka or archive, not {source!r}")
    try:
        schema = check_name(into or default_name(datetime.now(UTC)))
        cut = parse_time(as_of) if as_of else None
    except (BadSchemaName, ValueError) as exc:
        raise _fail(str(exc)) from None
    funnel, rules, models = _load_configs(funnel_file, sla_file, models_file, s)
    plan = ReplayPlan(
        dsn=s.database_url, schema=schema, topic=topic or s.events_topic, funnel=funnel,
        sla_rules=rules,  # type: ignore[arg-type]
        limits=Limits(
            max_future_skew=timedelta(seconds=s.max_future_skew_seconds),
            allowed_lateness=timedelta(seconds=s.allowed_lateness_seconds),
            max_event_bytes=64 * 1024,
        ),
        as_of=cut, attribution=models, replace=replace_schema, source=source,
        email_hmac_key=s.email_hmac_key.get_secret_value().encode(),
    )  # fmt: skip
    src: PartitionedSource = (
        KafkaSource(s.kafka_bootstrap, plan.topic, batch_size)
        if source == "kafka"
        else ArchiveSource(s.database_url, plan.topic, s.processor_id, batch_size)
    )
    try:
        result = run_async.run(_run(plan, src, source, workers or len(os.sched_getaffinity(0))))
    except SchemaExists as exc:
        raise _fail(str(exc)) from None
    except LookupError as exc:
        raise _fail(str(exc)) from None
    except WorkerFailed as exc:
        raise _fail(str(exc)) from None
    except (OSError, asyncpg.PostgresError) as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    _summary(result, schema, source)
    if verify:
        ok = run_async.run(_verify(s.database_url, schema, limit))
        if not ok:
            raise typer.Exit(1)


async def _run(plan: ReplayPlan, src: PartitionedSource, source: str, workers: int) -> ReplayResult:
    # Refused before any bar is drawn (the replay checks again before it reads).
    await check_target(plan.dsn, plan.schema, replace=plan.replace)
    with events_progress() as bar:
        task = bar.add_task(f"replay {source} -> {plan.schema}", total=None, rate="-")
        tables = write_callback(bar, f"write {plan.schema}", len(PROJECTIONS))
        result = await replay_parallel(plan, src, workers, bar_callback(bar, task), tables)
        bar.update(task, completed=bar.tasks[task].total or result.records)
    return result


def _summary(result: ReplayResult, schema: str, source: str) -> None:
    c = result.counts
    rate = result.records / result.seconds if result.seconds else 0.0
    console.print(
        f"replayed {result.records:,} records from {source} into schema [bold]{schema}[/bold]:"
        f" {c.accepted:,} accepted, {c.rejected:,} rejected, {result.ticks:,} ticks"
        + (f", {result.cut:,} after the as-of cut" if result.cut else "")
        + f"; {c.leads:,} leads, {c.timers:,} SLA timers, {c.credits:,} credit"
        f" rows; {c.derived:,} derived events not republished"
    )
    if result.fallback is not None:
        console.print(f"[yellow]folded in one process:[/yellow] {result.fallback}")
    workers = f" in {result.workers} processes" if result.workers > 1 else ""
    console.print(
        f"read+fold {result.read_seconds:.1f}s{workers}, bulk write {result.write_seconds:.1f}s,"
        f" {rate:,.0f} records/s overall"
    )


async def _verify(dsn: str, schema: str, limit: int) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        live, rebuilt, diffs = await compare_schemas(conn, LIVE_SCHEMA, schema, VERIFIED, limit)
    finally:
        await conn.close()
    console.print(digest_table(f"verify: live ({LIVE_SCHEMA}) vs {schema}", "live", live,
                               schema, rebuilt))  # fmt: skip
    same = overall_digest(live) == overall_digest(rebuilt)
    if same:
        console.print(f"[green]identical[/green]: digest {overall_digest(live)}")
    else:
        print_diffs(console, diffs, "live", schema)
        console.print("[red]MISMATCH[/red]: the rebuilt read models differ from the live ones")
    return same


def diff_cmd(
    sandbox: Annotated[str, typer.Argument(help="The replay schema to compare (e.g. sandbox).")],
    live: Annotated[
        str, typer.Argument(help="The reference: 'live' or another replay schema.")
    ] = "live",
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    limit: Annotated[int, typer.Option(help="Differing keys listed per table.")] = 20,
    models_file: Annotated[
        Path | None,
        typer.Option("--attribution", help="Models of the live credit (default: packaged)."),
    ] = None,
) -> None:
    """Which leads, stages, SLA outcomes and attribution credits differ between two schemas."""
    s = Settings()
    if fmt not in ("table", "json"):
        raise _fail(f"--format must be table or json, not {fmt!r}")
    try:
        right = check_name(sandbox, allow_live=True)
        left = check_name(live, allow_live=True)
    except BadSchemaName as exc:
        raise _fail(str(exc)) from None
    try:
        result = run_async.run(_diff(s, left, right, limit, models_file))
    except (LookupError, ValueError) as exc:
        raise _fail(str(exc)) from None
    lefts, rights, diffs = result
    lname = "live" if left == LIVE_SCHEMA else left
    if fmt == "json":
        typer.echo(orjson.dumps(diff_json(lname, right, lefts, rights, diffs)).decode())
    else:
        console.print(digest_table(f"diff: {lname} vs {right}", lname, lefts, right, rights))
        print_diffs(console, diffs, lname, right)
        if all(d.equal for d in diffs):
            console.print("no differences")


async def _diff(
    s: Settings, left: str, right: str, limit: int, models_file: Path | None
) -> tuple[list, list, list]:  # type: ignore[type-arg]
    conn = await asyncpg.connect(s.database_url)
    try:
        for name in (left, right):
            if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", name):
                raise LookupError(f"schema {name!r} does not exist")
        # The live side has no stored credit: compute it from the live archive with the
        # current model file, as of the sandbox's as-of time, into a temporary table.
        overrides = {}
        if left == LIVE_SCHEMA:
            funnel = load_funnel(s.funnel_file)
            overrides["attribution_credit"] = await live_credit_table(
                conn, right, funnel, load_attribution(models_file)
            )
        return await compare_schemas(conn, left, right, PROJECTIONS, limit, overrides)
    finally:
        await conn.close()


archive_app = typer.Typer(help="The event archive (the durable copy in embedded mode).",
                          no_args_is_help=True)  # fmt: skip


@archive_app.command("restore")
def archive_restore(
    force: Annotated[
        bool, typer.Option(help="Append even if the topic holds records (offsets shift).")
    ] = False,
    topic: Annotated[str | None, typer.Option(help="Events topic (default: settings).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per produce round.")] = 20_000,
) -> None:
    """Republish event_archive into the (empty) events topic, in original offset order."""

    s = Settings()
    name = topic or s.events_topic

    async def run() -> RestoreResult:
        with events_progress() as bar:
            task = bar.add_task(f"restore archive -> {name}", total=None, rate="-")
            return await restore(s.database_url, s.kafka_bootstrap, name, s.processor_id,
                                 s.partitions, force=force, batch_size=batch_size,
                                 progress=bar_callback(bar, task))  # fmt: skip

    try:
        result = run_async.run(run())
    except (TopicNotEmpty, ValueError) as exc:
        raise _fail(str(exc)) from None
    except (OSError, asyncpg.PostgresError) as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    console.print(
        f"restored {result.events:,} events and {result.rejected:,} rejected records to {name},"
        f" with {result.ticks:,} ticks where ticks were"
        + (
            "; every record is at its original offset"
            if result.offsets_preserved
            else "; appended after existing records (offsets shifted)"
        )
    )
