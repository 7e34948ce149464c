"""The progress callback that long CLI work (replay, restore) reports through to a rich bar."""

from __future__ import annotations

from collections.abc import Callable

from rich.progress import Progress, TaskID


def bar_callback(bar: Progress, task: TaskID) -> Callable[[int, int | None], None]:
    """``progress(0, total)`` sets the bar's total; ``progress(n, None)`` advances it by ``n``
    records and refreshes the records/s field (``rate``) the bar shows."""

    def progress(advance: int, total: int | None) -> None:
        if total is not None:
            bar.update(task, total=total)
            return
        bar.advance(task, advance)
        t = bar.tasks[task]
        if t.elapsed:
            bar.update(task, rate=f"{t.completed / t.elapsed:,.0f} ev/s")

    return progress


def write_callback(bar: Progress, label: str, tables: int) -> Callable[[str, int | None], None]:
    """``on_table`` of a replay's write as a second bar, shown once the write starts: tables
    done out of ``tables``, the one being written, and the rows/s so far. The write of a long
    history takes minutes after the fold's bar is full; this says what it is doing."""
    task: TaskID | None = None
    rows = 0

    def on_table(table: str, written: int | None) -> None:
        nonlocal task, rows
        if task is None:
            task = bar.add_task(label, total=tables, rate="-")
        if written is None:  # the table's write starts
            bar.update(task, description=f"{label}: {table}")
            return
        rows += written
        bar.advance(task)
        t = bar.tasks[task]
        if t.finished:
            bar.update(task, description=label)
        bar.update(task, rate=f"{rows / t.elapsed:,.0f} rows/s" if t.elapsed else "-")

    return on_table
