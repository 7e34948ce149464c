"""SLA policies as configuration, validated against the funnel they run on.

The sales side is a set of **timer policies**: a timer starts each time a lead enters
``start_stage`` and stops by the policy's ``stop`` rule (see ``StopRule``), with a warning
threshold, a limit, optional escalation steps after the limit, and a clock. The marketing side
is a **volume target**: at least ``per_rep`` MQLs per active sales rep, per calendar month and
per team. Loading fails at start-up with the offending path when a stage or clock is unknown,
a warning is not shorter than its limit, or a business-hours window is malformed.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from enum import StrEnum
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from events.funnel import Funnel, parse_duration

ALWAYS_ON = "24x7"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NAME = r"^[a-z][a-z0-9_]{0,47}$"
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-(([01]\d|2[0-3]):([0-5]\d)|24:00)$")
_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _duration(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone") from None
    return value


#: ``"15m"``, ``"1h"``, ``"14d"`` (see ``events.funnel.parse_duration``) or seconds.
Duration = Annotated[timedelta, BeforeValidator(_duration)]
ZoneName = Annotated[str, AfterValidator(_zone)]


class StopRule(StrEnum):
    """What stops a timer. Anything else that ends it (see below) cancels it instead.

    - ``first_sales_action``: the first contact, or sales accepting (the lead leaves the start
      stage for a sales-owned stage) or rejecting it (``lead.disqualified``/``lead.recycled``).
      Marketing taking the lead back (another marketing stage) cancels it.
    - ``decision``: accepting or rejecting as above; contacts do not stop it.
    - ``leave_stage``: moving forward along the funnel's main path; leaving for a side stage
      (nurture, recycled, disqualified, lost) cancels it.
    - ``contacts``: the ``contacts``-th ``lead.contacted`` since the start; the lead may move
      on meanwhile, but entering a side stage cancels it.

    A ``lead.merged`` cancels every running timer of the merged lead.
    """

    FIRST_SALES_ACTION = "first_sales_action"
    DECISION = "decision"
    LEAVE_STAGE = "leave_stage"
    CONTACTS = "contacts"


class ClockConfig(BaseModel):
    """Business hours: weekly windows like ``"09:00-17:00"`` in an IANA zone, and holidays."""

    model_config = _FROZEN

    timezone: ZoneName
    hours: dict[Weekday, tuple[str, ...]]
    holidays: tuple[date, ...] = ()

    @field_validator("hours")
    @classmethod
    def _windows_valid(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for day, windows in value.items():
            parsed = [parse_window(w) for w in windows]
            ends = [(o, time.max if c is None else c) for o, c in parsed]
            for (o1, c1), (o2, _) in pairwise(ends):
                if o2 < c1 or o2 < o1:
                    raise ValueError(f"{day}: windows must be sorted and must not overlap")
        if not any(value.values()):
            raise ValueError("business hours need at least one opening window")
        return value

    def weekly(self) -> tuple[tuple[tuple[time, time | None], ...], ...]:
        """Seven tuples of (open, close) windows, Monday first; close None means 24:00."""
        return tuple(tuple(parse_window(w) for w in self.hours.get(day, ())) for day in WEEKDAYS)


def parse_window(text: str) -> tuple[time, time | None]:
    """``"09:00-17:00"`` -> (09:00, 17:00); ``"00:00-24:00"`` -> (00:00, None)."""
    match = _WINDOW.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a window like 09:00-17:00")
    opens = time(int(match.group(1)), int(match.group(2)))
    if match.group(3) == "24:00":
        return opens, None
    closes = time(int(match.group(4)), int(match.group(5)))
    if closes <= opens:
        raise ValueError(f"{text!r}: a window must close after it opens (same day)")
    return opens, closes


class Escalation(BaseModel):
    """An escalation step: ``after`` more counted time beyond the limit, notify ``to``."""

    model_config = _FROZEN

    after: Duration
    to: str = Field(min_length=1, max_length=64, description="who is told, e.g. team_lead")


class TimerPolicy(BaseModel):
    """One sales-side SLA timer."""

    model_config = _FROZEN

    description: str = ""
    start_stage: str
    stop: StopRule
    contacts: int = Field(default=1, ge=1, le=100, description="for stop: contacts")
    limit: Duration
    warning: Duration
    clock: str = ALWAYS_ON
    escalations: tuple[Escalation, ...] = ()

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> TimerPolicy:
        if not timedelta(0) < self.warning < self.limit:
            raise ValueError("warning must be positive and shorter than limit")
        steps = [e.after for e in self.escalations]
        if any(s <= timedelta(0) for s in steps) or steps != sorted(set(steps)):
            raise ValueError("escalations must be positive and strictly increasing")
        return self


class VolumeTarget(BaseModel):
    """Marketing side: MQLs per active sales rep per calendar month, per team.

    An MQL counts for the team it was routed to (the first assignment after entering
    ``stage``). A rep is active in a month when at least one lead was assigned to them in
    that month; the target of a team is ``per_rep`` times its active reps.
    """

    model_config = _FROZEN

    stage: str = "mql"
    per_rep: int = Field(ge=1)
    timezone: ZoneName = "UTC"


class SlaConfig(BaseModel):
    """The validated SLA configuration. Load it with ``load_sla(path, funnel)``."""

    model_config = _FROZEN

    version: int = Field(ge=1)
    #: label values allowed for ``team`` on metrics; other teams are counted as ``other``.
    teams: tuple[str, ...] = ()
    clocks: dict[str, ClockConfig] = Field(default_factory=dict)
    policies: dict[str, TimerPolicy]
    volume: VolumeTarget | None = None

    @field_validator("clocks")
    @classmethod
    def _reserved_clock(cls, value: dict[str, ClockConfig]) -> dict[str, ClockConfig]:
        if ALWAYS_ON in value:
            raise ValueError(f"{ALWAYS_ON!r} is built in and cannot be redefined")
        return value

    @field_validator("policies")
    @classmethod
    def _names(cls, value: dict[str, TimerPolicy]) -> dict[str, TimerPolicy]:
        # Policy names label metrics and build derived-event ids: keep them plain.
        bad = [name for name in value if not re.match(_NAME, name)]
        if bad:
            raise ValueError(f"policy names must match {_NAME}: {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _refs_exist(self, info: ValidationInfo) -> SlaConfig:
        funnel = info.context.get("funnel") if isinstance(info.context, dict) else None
        unknown: list[str] = []
        for name, policy in self.policies.items():
            if policy.clock != ALWAYS_ON and policy.clock not in self.clocks:
                unknown.append(f"policies.{name}.clock: {policy.clock!r}")
            if isinstance(funnel, Funnel) and policy.start_stage not in funnel.stages:
                unknown.append(f"policies.{name}.start_stage: {policy.start_stage!r}")
        if isinstance(funnel, Funnel) and self.volume and self.volume.stage not in funnel.stages:
            unknown.append(f"volume.stage: {self.volume.stage!r}")
        if unknown:
            raise ValueError("unknown names: " + "; ".join(unknown))
        return self

    def team_label(self, team: str | None) -> str:
        """A bounded metric label: a configured team, ``unassigned`` or ``other``."""
        if team is None:
            return "unassigned"
        return team if team in self.teams else "other"


def load_sla(funnel: Funnel, path: Path | None = None) -> SlaConfig:
    """Load an SLA file (or the packaged default) and check it against ``funnel``."""
    if path is None:
        text = resources.files("events").joinpath("sla.yaml").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    return SlaConfig.model_validate(yaml.safe_load(text), context={"funnel": funnel})
