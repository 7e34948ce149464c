"""Formatting shared by the command-line tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import typer
from pydantic import BaseModel
from rich.console import Console, RenderableType


def duration(seconds: float | None) -> str:
    """``5d 3h``, ``2h 10m``, ``45m``, ``30s``; ``-`` for None."""
    if seconds is None:
        return "-"
    sign, s = ("-" if seconds < 0 else ""), int(abs(seconds))
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if d:
        return f"{sign}{d}d {h}h"
    if h:
        return f"{sign}{h}h {m}m"
    return f"{sign}{m}m" if m else f"{sign}{sec}s"


def emit(
    body: BaseModel,
    fmt: str,
    console: Console,
    *,
    csv: Callable[[], str],
    tables: Callable[[], Iterable[RenderableType]],
    warnings: Iterable[str] = (),
) -> None:
    """Print a report as the API's JSON body, as CSV, or as tables followed by its warnings.

    ``csv`` and ``tables`` are called only for their format, so a report renders once.
    """
    if fmt == "json":
        typer.echo(body.model_dump_json(indent=2))
    elif fmt == "csv":
        typer.echo(csv(), nl=False)
    else:
        for renderable in tables():
            console.print(renderable)
        for warning in warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")
