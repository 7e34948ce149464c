"""Facts for the marketing-side volume SLA, per lead: MQLs delivered and rep assignments.

The target (``events.sla_config.VolumeTarget``) is at least ``per_rep`` MQLs per active sales
rep, per calendar month and team. Two kinds of fact feed it, both pure functions of the lead's
sorted history, with the month taken in the target's time zone:

- ``mql``: each entry into the target stage, counted for the team it was routed to: the team
  of the first ``lead.assigned`` after the entry and before the lead's next entry into that
  stage (None while unrouted);
- ``assignment``: each ``lead.assigned``; a rep is *active* in a month and team when at least
  one lead was assigned to them in that month, for that team.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from events.catalog import LeadAssigned
from events.envelope import Event
from events.funnel import Funnel
from events.sla_config import VolumeTarget
from projections.lead import LeadState
from projections.step import stage_move


@dataclass(frozen=True, slots=True)
class VolumeFact:
    lead_id: str
    event_id: str
    kind: Literal["mql", "assignment"]
    at: datetime
    month: str
    team: str | None
    rep_id: str | None


def month_of(at: datetime, timezone: str) -> str:
    """``YYYY-MM`` of the calendar month ``at`` falls in, in ``timezone``."""
    local = at.astimezone(ZoneInfo(timezone))
    # ``strftime`` once per month: what it writes for "%Y-%m" depends on nothing else.
    month = _MONTHS.get((local.year, local.month))
    if month is None:
        month = _MONTHS[(local.year, local.month)] = local.strftime("%Y-%m")
    return month


_MONTHS: dict[tuple[int, int], str] = {}


def volume_facts(state: LeadState, target: VolumeTarget, funnel: Funnel) -> tuple[VolumeFact, ...]:
    """The lead's MQL and assignment facts, in event-time order."""
    facts: list[VolumeFact] = []
    open_mql: int | None = None  # index in facts of the MQL still waiting for its routing
    has_stage = False
    for event in state.events:
        data = event.data
        if isinstance(data, LeadAssigned):
            if open_mql is not None:
                facts[open_mql] = replace(facts[open_mql], team=data.team)
                open_mql = None
            facts.append(
                VolumeFact(
                    state.lead_id, event.id, "assignment", event.time,
                    month_of(event.time, target.timezone), data.team, data.owner_id,
                )
            )  # fmt: skip
            continue
        move = stage_move(data, funnel, has_stage=has_stage)
        if move is None:
            continue
        has_stage = True
        if move[0] == target.stage:
            open_mql = len(facts)
            facts.append(
                VolumeFact(
                    state.lead_id, event.id, "mql", event.time,
                    month_of(event.time, target.timezone), None, None,
                )
            )  # fmt: skip
    return tuple(facts)


@dataclass(frozen=True, slots=True)
class VolumeFold:
    """What the ``volume_facts`` walk carries: the facts so far, the MQL still waiting for its
    routing (an index into ``facts``) and whether the lead has a stage yet."""

    facts: tuple[VolumeFact, ...] = ()
    open_mql: int | None = None
    has_stage: bool = False


def step_volume(
    fold: VolumeFold, lead_id: str, event: Event, target: VolumeTarget, funnel: Funnel
) -> VolumeFold:
    """Fold one more event that sorts after every folded one: ``volume_facts`` one event at a
    time, so each fact's month is computed once rather than on every later event."""
    data = event.data
    if isinstance(data, LeadAssigned):
        facts = list(fold.facts)
        if fold.open_mql is not None:
            facts[fold.open_mql] = replace(facts[fold.open_mql], team=data.team)
        facts.append(
            VolumeFact(
                lead_id, event.id, "assignment", event.time,
                month_of(event.time, target.timezone), data.team, data.owner_id,
            )
        )  # fmt: skip
        return VolumeFold(tuple(facts), None, fold.has_stage)
    move = stage_move(data, funnel, has_stage=fold.has_stage)
    if move is None:
        return fold
    if move[0] != target.stage:
        return fold if fold.has_stage else VolumeFold(fold.facts, fold.open_mql, True)
    mql = VolumeFact(
        lead_id, event.id, "mql", event.time, month_of(event.time, target.timezone), None, None
    )
    return VolumeFold((*fold.facts, mql), len(fold.facts), True)
