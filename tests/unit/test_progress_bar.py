"""The CLI's progress bars: records through the fold, then tables through the write."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress, TextColumn

from services.progress_bar import bar_callback, write_callback


def quiet_bar() -> Progress:
    console = Console(file=io.StringIO(), force_terminal=False)
    return Progress(TextColumn("{task.description}"), console=console, auto_refresh=False)


def test_the_records_bar_takes_its_total_then_counts_and_shows_events_per_second() -> None:
    bar = quiet_bar()
    task = bar.add_task("replay", total=None, rate="-")
    progress = bar_callback(bar, task)
    progress(0, 100)
    progress(40, None)
    progress(20, None)
    t = bar.tasks[task]
    assert (t.total, t.completed) == (100, 60)
    assert t.fields["rate"].endswith(" ev/s")


def test_the_write_bar_appears_with_the_first_table_and_names_the_one_being_written() -> None:
    bar = quiet_bar()
    on_table = write_callback(bar, "write audit", 3)
    assert not bar.tasks, "nothing to show before the write starts"
    on_table("lead_current", None)
    (t,) = bar.tasks
    assert (t.description, t.total, t.completed) == ("write audit: lead_current", 3, 0)
    on_table("lead_current", 10)
    on_table("sla_timer", None)
    assert (bar.tasks[0].description, bar.tasks[0].completed) == ("write audit: sla_timer", 1)


def test_the_write_bar_ends_full_under_its_own_label_with_the_rows_per_second() -> None:
    bar = quiet_bar()
    on_table = write_callback(bar, "write audit", 2)
    for table, rows in (("a", 5), ("b", 7)):
        on_table(table, None)
        on_table(table, rows)
    (t,) = bar.tasks
    assert t.finished
    assert t.description == "write audit"
    assert t.fields["rate"].endswith(" rows/s")
