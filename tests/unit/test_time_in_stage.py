"""Time in stage: visits, cumulative and latest stay per stage, with time passed in."""

from __future__ import annotations

from projections.time_in_stage import stage_times
from projections.views import StageTime

from .factories import LEAD, apply_all, at, created, moved


def test_closed_stays_count_in_first_visit_order() -> None:
    view = apply_all(
        [
            created(LEAD, at(0)),
            moved(LEAD, at(10), "lead", "mql"),
            moved(LEAD, at(40), "mql", "sal"),
        ]
    ).view

    assert view.time_in_stage() == (
        StageTime("lead", visits=1, cumulative_seconds=600.0, latest_seconds=600.0),
        StageTime("mql", visits=1, cumulative_seconds=1800.0, latest_seconds=1800.0),
    )


def test_the_open_stay_is_left_out_without_now() -> None:
    view = apply_all([created(LEAD, at(0))]).view

    assert view.time_in_stage() == ()


def test_the_open_stay_counts_up_to_now() -> None:
    view = apply_all([created(LEAD, at(0)), moved(LEAD, at(10), "lead", "mql")]).view

    times = view.time_in_stage(now=at(70))

    assert times[-1] == StageTime("mql", visits=1, cumulative_seconds=3600.0, latest_seconds=3600.0)


def test_now_before_the_open_stay_began_counts_as_zero() -> None:
    view = apply_all([created(LEAD, at(10))]).view

    assert view.time_in_stage(now=at(0)) == (StageTime("lead", 1, 0.0, 0.0),)


def test_repeated_visits_add_up_and_latest_is_the_most_recent_visit() -> None:
    events = [
        created(LEAD, at(0)),
        moved(LEAD, at(10), "lead", "mql"),
        moved(LEAD, at(20), "mql", "nurture"),
        moved(LEAD, at(80), "nurture", "mql"),
        moved(LEAD, at(85), "mql", "sal"),
    ]
    times = {t.stage: t for t in apply_all(events).view.time_in_stage()}

    assert times["mql"] == StageTime(
        "mql", visits=2, cumulative_seconds=900.0, latest_seconds=300.0
    )
    assert list(times) == ["lead", "mql", "nurture"]


def test_an_open_repeat_visit_counts_as_the_latest_when_now_is_given() -> None:
    events = [
        created(LEAD, at(0)),
        moved(LEAD, at(10), "lead", "mql"),
        moved(LEAD, at(20), "mql", "nurture"),
        moved(LEAD, at(80), "nurture", "mql"),
    ]
    view = apply_all(events).view

    mql = {t.stage: t for t in view.time_in_stage(now=at(81))}["mql"]

    assert (mql.visits, mql.cumulative_seconds, mql.latest_seconds) == (2, 660.0, 60.0)
    assert {t.stage: t for t in view.time_in_stage()}["mql"].visits == 1


def test_stage_times_of_no_stays_is_empty() -> None:
    assert stage_times((), now=at(0)) == ()
