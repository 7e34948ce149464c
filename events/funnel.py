"""The funnel definition: stages, owning teams, allowed transitions, SLA placeholders.

Validated on load, so a typo in a stage name fails at start-up with the offending path, not
later as a mysterious rejection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from events.closed_loop import ClosedLoopConfig


class Team(StrEnum):
    MARKETING = "marketing"
    SALES = "sales"


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"15m"``, ``"1h"``, ``"14d"`` -> timedelta; the config's only duration syntax."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 15m, 1h or 14d")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class StageDef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    team: Team
    next: tuple[str, ...] = ()


class SlaPlaceholder(BaseModel):
    """An SLA target on a stage; the SLA engine adds clocks and stop conditions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_stage: str
    limit: timedelta
    warning: timedelta

    @field_validator("limit", "warning", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _warning_before_limit(self) -> SlaPlaceholder:
        if not timedelta(0) < self.warning < self.limit:
            raise ValueError("warning must be positive and shorter than limit")
        return self


@dataclass(frozen=True, slots=True)
class FunnelLookups:
    """Per-stage facts of one funnel, computed once (``Funnel.lookups``) for the folds.

    Reading a pydantic model's attribute costs about three times a slotted dataclass's, and
    ``team_of(stage).value`` about half a microsecond; the folds ask these once or more per
    event, so they read them from here instead. Same answers as the ``Funnel`` methods.
    """

    #: ``Funnel.rank`` as a dict: main-path stages only (``.get(stage, -1)``).
    ranks: dict[str, int]
    #: ``Funnel.team_of(stage).value`` of every stage.
    team_values: dict[str, str]
    #: Stages owned by sales.
    sales_stages: frozenset[str]
    #: Every stage, with the stages ``Funnel.allows`` it to move to.
    next_stages: dict[str, frozenset[str]]
    #: ``Funnel.initial_stages`` as a set.
    initial_stages: frozenset[str]
    handoff_stage: str
    disqualified_stage: str
    recycled_stage: str


class Funnel(BaseModel):
    """A validated funnel. Use ``allows(a, b)``, ``team_of(s)`` and ``rank(s)`` in the folds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    main_path: tuple[str, ...] = Field(min_length=2)
    stages: dict[str, StageDef]
    initial_stages: tuple[str, ...] = Field(min_length=1)
    handoff_stage: str
    disqualified_stage: str = "disqualified"
    recycled_stage: str = "recycled"
    disqualification_reasons: tuple[str, ...] = Field(min_length=1)
    sla: dict[str, SlaPlaceholder] = Field(default_factory=dict)
    closed_loop: ClosedLoopConfig = Field(default_factory=ClosedLoopConfig)

    @model_validator(mode="after")
    def _names_exist(self) -> Funnel:
        known = set(self.stages)
        refs: list[tuple[str, str]] = [("main_path", s) for s in self.main_path]
        refs += [("initial_stages", s) for s in self.initial_stages]
        refs += [(f"stages.{name}.next", s) for name, d in self.stages.items() for s in d.next]
        refs += [(f"sla.{name}.start_stage", p.start_stage) for name, p in self.sla.items()]
        refs.append(("handoff_stage", self.handoff_stage))
        refs.append(("disqualified_stage", self.disqualified_stage))
        refs.append(("recycled_stage", self.recycled_stage))
        refs += [("closed_loop.rehandoff_stages", s) for s in self.closed_loop.rehandoff_stages]
        unknown = [f"{where}: {stage!r}" for where, stage in refs if stage not in known]
        if unknown:
            raise ValueError("unknown stage names: " + "; ".join(unknown))
        if self.stages[self.handoff_stage].team is not Team.MARKETING:
            raise ValueError("handoff_stage must be owned by marketing")
        codes = set(self.disqualification_reasons)
        stray = [r for r in self.closed_loop.suppressing_reasons if r not in codes]
        if stray:
            raise ValueError(
                "closed_loop.suppressing_reasons are not disqualification reasons: "
                + ", ".join(stray)
            )
        return self

    @cached_property
    def rehandoff_stages(self) -> frozenset[str]:
        """Stages whose entry is a re-handoff of a suppressed lead (closed loop)."""
        chosen = self.closed_loop.rehandoff_stages
        if chosen:
            return frozenset(chosen)
        marketing = {n for n, d in self.stages.items() if d.team is Team.MARKETING}
        return frozenset({*marketing, self.handoff_stage})

    @cached_property
    def _ranks(self) -> dict[str, int]:
        return {stage: i for i, stage in enumerate(self.main_path)}

    @cached_property
    def lookups(self) -> FunnelLookups:
        """The per-stage facts the folds read on every event (see ``FunnelLookups``)."""
        return FunnelLookups(
            ranks=dict(self._ranks),
            team_values={name: d.team.value for name, d in self.stages.items()},
            next_stages={name: frozenset(d.next) for name, d in self.stages.items()},
            sales_stages=frozenset(n for n, d in self.stages.items() if d.team is Team.SALES),
            initial_stages=frozenset(self.initial_stages),
            handoff_stage=self.handoff_stage,
            disqualified_stage=self.disqualified_stage,
            recycled_stage=self.recycled_stage,
        )

    def allows(self, from_stage: str, to_stage: str) -> bool:
        return to_stage in self.stages[from_stage].next

    def team_of(self, stage: str) -> Team:
        return self.stages[stage].team

    def rank(self, stage: str) -> int:
        """Position on the main path; -1 for side stages (nurture, recycled, ...)."""
        return self._ranks.get(stage, -1)


def load_funnel(path: Path | None = None) -> Funnel:
    """Load a funnel file, or the packaged default when ``path`` is None."""
    if path is None:
        text = resources.files("events").joinpath("funnel.yaml").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    return Funnel.model_validate(yaml.safe_load(text))
