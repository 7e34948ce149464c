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
            bar.update(task, rate=f"{t.completed / t.elapsed:,.0f}")

    return progress
