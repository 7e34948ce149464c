"""Response bodies of the SLA endpoints (and the rows ``leadledger sla`` prints)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

_FROZEN = ConfigDict(frozen=True)

OpenStatus = Literal["ok", "warning", "breached"]


class SlaTimerOut(BaseModel):
    """One running SLA timer."""

    model_config = _FROZEN

    lead_id: str
    policy: str
    cycle_id: str = Field(description="id of the event that started the timer")
    owner_id: str | None
    team: str | None
    status: OpenStatus = Field(
        description="event time: what the processor has declared (sla.warning, sla.breached)"
    )
    started_at: AwareDatetime
    warn_at: AwareDatetime
    deadline: AwareDatetime
    next_escalation_at: AwareDatetime | None = Field(
        description="the next escalation step not yet fired, if the policy has one"
    )
    delay_side: Literal["system", "human"] = Field(
        description="system: no owner assigned for this timer yet; human: assigned"
    )
    time_left_seconds: float = Field(
        description="deadline minus the wall clock now (negative when overdue): live only"
    )


class SlaOpenPage(BaseModel):
    """Running timers, most urgent (earliest deadline) first."""

    model_config = _FROZEN

    as_of: AwareDatetime = Field(description="wall clock used for time_left_seconds")
    count: int = Field(ge=0, description="timers in this page")
    timers: list[SlaTimerOut]


class SlaCompliance(BaseModel):
    """Timers of one policy (and team) started in the period, by outcome."""

    model_config = _FROZEN

    policy: str
    team: str = Field(description="owner team at the stop (or now); 'unassigned'; 'all' = total")
    started: int = Field(ge=0)
    met: int = Field(ge=0, description="stopped by the stop condition within the limit")
    breached: int = Field(ge=0, description="stopped after the limit, or running past it")
    cancelled: int = Field(ge=0, description="ended otherwise before the limit; not judged")
    running: int = Field(ge=0, description="still running within the limit; not judged yet")
    met_percent: float | None = Field(description="met / (met + breached); null if none")
    breached_percent: float | None = Field(description="breached / (met + breached)")
    p50_seconds: float | None = Field(
        description="median counted time from start to a met stop (mql_first_touch: time to "
        "first touch, in business time)"
    )
    p90_seconds: float | None


class VolumeMonth(BaseModel):
    """The marketing-side volume SLA of one team in one calendar month."""

    model_config = _FROZEN

    month: str = Field(description="YYYY-MM in the volume target's time zone")
    team: str = Field(description="team the MQLs were routed to; 'unassigned' if not routed")
    mqls: int = Field(ge=0)
    active_reps: int = Field(ge=0, description="reps with at least one lead assigned that month")
    per_rep: int = Field(ge=1)
    target: int = Field(ge=0, description="per_rep x active_reps")
    met: bool | None = Field(description="mqls >= target; null without active reps (no target)")


class SlaSummary(BaseModel):
    """SLA compliance for a period: sales-side timers and the marketing-side volume."""

    model_config = _FROZEN

    start: AwareDatetime = Field(description="timers started at or after this instant")
    end: AwareDatetime = Field(description="... and before this one")
    policies: list[SlaCompliance]
    volume: list[VolumeMonth] = Field(description="calendar months overlapping the period")


def percent(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 2)


def delay_side(assigned_at: datetime | None, now: datetime) -> Literal["system", "human"]:
    return "human" if assigned_at is not None and assigned_at <= now else "system"
