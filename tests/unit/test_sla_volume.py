"""Facts behind the marketing-side volume SLA: MQLs routed to teams, and rep assignments."""

from __future__ import annotations

from datetime import UTC, datetime

from events.sla_config import VolumeTarget
from projections.lead import fold
from projections.sla_volume import month_of, volume_facts

from .factories import FUNNEL, LEAD, assigned, at, created, moved, recycled

TARGET = VolumeTarget(stage="mql", per_rep=10, timezone="Europe/Berlin")


def test_an_mql_counts_for_the_team_it_was_routed_to() -> None:
    history = [
        created(LEAD, at(0)),
        moved(LEAD, at(1), "lead", "mql"),
        assigned(LEAD, at(2), "rep-9", "sdr-amer"),
        assigned(LEAD, at(3), "rep-1", "sdr-emea"),
    ]
    facts = volume_facts(fold(LEAD, history, FUNNEL), TARGET, FUNNEL)
    assert [(f.kind, f.team, f.rep_id) for f in facts] == [
        ("mql", "sdr-amer", None),
        ("assignment", "sdr-amer", "rep-9"),
        ("assignment", "sdr-emea", "rep-1"),
    ]


def test_each_entry_into_mql_is_an_mql_and_an_unrouted_one_has_no_team() -> None:
    history = [
        created(LEAD, at(0), "mql"),
        assigned(LEAD, at(2)),
        recycled(LEAD, at(5), "mql"),
        moved(LEAD, at(days=3), "recycled", "mql"),
    ]
    facts = volume_facts(fold(LEAD, history, FUNNEL), TARGET, FUNNEL)
    assert [(f.kind, f.team) for f in facts if f.kind == "mql"] == [("mql", "sales"), ("mql", None)]


def test_the_month_is_the_calendar_month_in_the_target_time_zone() -> None:
    new_year_in_berlin = datetime(2024, 12, 31, 23, 30, tzinfo=UTC)
    assert month_of(new_year_in_berlin, "Europe/Berlin") == "2025-01"
    assert month_of(new_year_in_berlin, "UTC") == "2024-12"
