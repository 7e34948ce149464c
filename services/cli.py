"""The ``leadledger`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from services import run_async
from services.cli_attribution import attribution
from services.cli_audit import audit
from services.cli_feedback import feedback
from services.cli_funnel import funnel
from services.cli_plan import plan
from services.cli_replay import archive_app, diff_cmd, replay_cmd
from services.settings import Settings
from services.sla_cli import sla_app

app = typer.Typer(help="leadledger: event-sourced lead lifecycle.", no_args_is_help=True)
schema_app = typer.Typer(help="Event schemas for upstream teams.", no_args_is_help=True)
funnel_app = typer.Typer(help="Funnel flow analytics, and the funnel definition.")
db_app = typer.Typer(help="The PostgreSQL read models.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(funnel_app, name="funnel")
app.add_typer(db_app, name="db")
app.add_typer(sla_app, name="sla")
console = Console()


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Also run the simulator, so numbers move.")] = False,
    rate: Annotated[float, typer.Option(help="Simulator events per second.")] = 50.0,
    speedup: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 600.0,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processor workers: one consumer group splitting the partitions, metrics on "
            "the processor web port and the ports after it.",
        ),
    ] = 1,
) -> None:
    """Start the embedded broker and PostgreSQL, the processor and the HTTP API."""
    from services.up import run_stack

    settings = Settings()
    idle = workers - settings.partitions
    if idle > 0:
        console.print(f"[yellow]{workers} workers for {settings.partitions} partitions: "
                      f"{idle} will have nothing to do[/yellow]")  # fmt: skip
    code = run_stack(settings, demo=demo, rate=rate, speedup=speedup, workers=workers)
    raise typer.Exit(code)


@app.command()
def processor() -> None:
    """Run the stream processor (a Faust worker) in the foreground."""
    from services.processor.worker import run_worker

    run_worker(Settings())


@app.command()
def api() -> None:
    """Run the HTTP API in the foreground."""
    from services.api_server import run_api

    run_api(Settings())


@app.command()
def simulate(
    rate: Annotated[float, typer.Option(help="Events per second (wall clock).")] = 50.0,
    speedup: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 600.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed, the same leads.")] = 7,
    lead_prefix: Annotated[str, typer.Option(help="Lead ids are PREFIX-000001, ...")] = "L",
    max_events: Annotated[int | None, typer.Option(help="Stop after this many.")] = None,
    tick_every: Annotated[
        float, typer.Option(help="Publish ticks at simulated time every N seconds (0: none).")
    ] = 0.0,
) -> None:
    """Publish a realistic, seeded stream of lead journeys to the events topic."""
    import logging

    from services.simulator.run import run_simulator

    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper())
    n = run_async.run(
        run_simulator(
            settings.kafka_bootstrap,
            settings.events_topic,
            rate=rate,
            speedup=speedup,
            seed=seed,
            max_events=max_events,
            lead_id_prefix=lead_prefix,
            tick_every=tick_every or None,
        )
    )
    console.print(f"published {n} events")


@schema_app.command("export")
def schema_export(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the JSON Schema files.")],
) -> None:
    """Write one JSON Schema file per event type and version."""
    from events.schema import all_schemas

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, schema in all_schemas().items():
        (out_dir / name).write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2) + b"\n")
        console.print(f"wrote {out_dir / name}")


@funnel_app.command("check")
def funnel_check(
    path: Annotated[Path | None, typer.Argument(help="Funnel YAML; default: packaged.")] = None,
) -> None:
    """Validate a funnel file and print its stages."""
    from pydantic import ValidationError
    from rich.table import Table

    from events.funnel import load_funnel

    try:
        funnel = load_funnel(path)
    except (ValidationError, OSError) as exc:
        console.print(f"[red]invalid funnel:[/red] {exc}")
        raise typer.Exit(1) from None
    table = Table("stage", "team", "allowed next stages", title=f"funnel v{funnel.version}")
    for name, stage in funnel.stages.items():
        table.add_row(name, stage.team.value, ", ".join(stage.next) or "-")
    console.print(table)


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the read-model tables."""
    import asyncpg

    from services.store.migrate import migrate

    async def run() -> list[str]:
        conn = await asyncpg.connect(Settings().database_url)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    applied = run_async.run(run())
    console.print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")


app.command()(attribution)
app.command()(audit)
funnel_app.callback(invoke_without_command=True)(funnel)
app.command()(feedback)
app.command()(plan)
app.command("replay")(replay_cmd)
app.command("diff")(diff_cmd)
app.add_typer(archive_app, name="archive")


def main() -> None:
    app()
