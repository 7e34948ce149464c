"""SLA timers of one lead: a pure function of its accepted history, sorted by event time.

``timers(state, rules)`` walks ``LeadState.events`` (already in ``order_key`` order) once:

- a timer starts each time the lead enters a policy's ``start_stage``; its cycle id is the
  id of the event that moved it there, so the same history always names the same timers;
- its warning, deadline and escalation instants are fixed at the start by the policy clock;
- it stops by the policy's ``StopRule`` (``met``) or ends otherwise (``cancelled``): see
  ``events.sla_config.StopRule``. Stage moves are read with ``projections.step.stage_move``,
  the same rule the stage history uses, so timers never disagree with it.

Each timer also records the owner and team at its stop (or at the latest event while it
runs) and ``assigned_at``, the moment the lead had an owner for this timer: the first
assignment after the start, or the start itself when the start stage is sales-owned and the
lead already had an owner. Before ``assigned_at`` a delay is the system's (routing), after it
a person's.

Whether a timer has *fired* (warned, breached) depends on stream time, not on the history;
that is ``projections.sla_emit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal

from events.catalog import (
    EventData,
    LeadAssigned,
    LeadContacted,
    LeadDisqualified,
    LeadMerged,
    LeadRecycled,
)
from events.envelope import Event
from events.funnel import Funnel, Team
from events.sla_config import ALWAYS_ON, SlaConfig, StopRule
from projections.lead import LeadState
from projections.sla_clock import AlwaysOn, BusinessHours, Clock
from projections.step import stage_move

Outcome = Literal["met", "cancelled"]


@dataclass(frozen=True, slots=True)
class Policy:
    """A timer policy with its clock built."""

    name: str
    start_stage: str
    stop: StopRule
    contacts: int
    limit: timedelta
    warning: timedelta
    escalations: tuple[tuple[timedelta, str], ...]
    clock: Clock


@dataclass(frozen=True, slots=True)
class SlaRules:
    """Everything the timer fold needs: the policies and the funnel they run on."""

    config: SlaConfig
    funnel: Funnel
    policies: tuple[Policy, ...]
    by_name: dict[str, Policy] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.policies})


def compile_rules(config: SlaConfig, funnel: Funnel) -> SlaRules:
    """Build the clocks of every policy once."""
    clocks: dict[str, Clock] = {ALWAYS_ON: AlwaysOn()}
    for name, c in config.clocks.items():
        clocks[name] = BusinessHours(name, c.timezone, c.weekly(), frozenset(c.holidays))
    policies = tuple(
        Policy(
            name=name,
            start_stage=p.start_stage,
            stop=p.stop,
            contacts=p.contacts,
            limit=p.limit,
            warning=p.warning,
            escalations=tuple((e.after, e.to) for e in p.escalations),
            clock=clocks[p.clock],
        )
        for name, p in config.policies.items()
    )
    return SlaRules(config=config, funnel=funnel, policies=policies)


@dataclass(frozen=True, slots=True)
class Timer:
    """One run of one policy on one lead, as far as the history tells."""

    lead_id: str
    policy: str
    cycle: str
    started_at: datetime
    warn_at: datetime
    deadline: datetime
    escalate_at: tuple[datetime, ...]
    stopped_at: datetime | None
    outcome: Outcome | None
    stop_reason: str | None
    stop_event_id: str | None
    owner_id: str | None
    team: str | None
    assigned_at: datetime | None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.lead_id, self.policy, self.cycle)

    def delay_side(self, at: datetime) -> Literal["system", "human"]:
        """Whose delay the time up to ``at`` was: the router's until someone owned the lead."""
        return "human" if self.assigned_at is not None and self.assigned_at <= at else "system"


@dataclass(slots=True)
class _Running:
    policy: Policy
    start: Event
    assigned_at: datetime | None
    contacts: int = 0


def timers(state: LeadState, rules: SlaRules) -> tuple[Timer, ...]:
    """Every timer of the lead, in start order (then policy order)."""
    funnel = rules.funnel
    stage: str | None = None
    owner: str | None = None
    team: str | None = None
    running: list[_Running] = []
    done: list[Timer] = []

    def finish(run: _Running, event: Event, outcome: Outcome, reason: str) -> None:
        done.append(_timer(state.lead_id, run, owner, team, (event, outcome, reason)))

    for event in state.events:
        data = event.data
        if isinstance(data, LeadAssigned):
            owner, team = data.owner_id, data.team
            for run in running:
                run.assigned_at = run.assigned_at or event.time
            continue
        if isinstance(data, LeadMerged):
            for run in running:
                finish(run, event, "cancelled", "merged")
            running = []
            continue
        if isinstance(data, LeadContacted):
            still: list[_Running] = []
            for run in running:
                run.contacts += 1
                if run.policy.stop is StopRule.FIRST_SALES_ACTION or (
                    run.policy.stop is StopRule.CONTACTS and run.contacts >= run.policy.contacts
                ):
                    finish(run, event, "met", "contacted")
                else:
                    still.append(run)
            running = still
            continue
        move = stage_move(data, funnel, has_stage=stage is not None)
        if move is None:
            continue
        target = move[0]
        still = []
        for run in running:
            verdict = _on_move(run.policy, data, target, funnel)
            if verdict is None:
                still.append(run)
            else:
                finish(run, event, *verdict)
        running = still
        stage = target
        owned = owner is not None and funnel.team_of(target) is Team.SALES
        for policy in rules.policies:
            if policy.start_stage == target:
                running.append(_Running(policy, event, event.time if owned else None))

    done.extend(_timer(state.lead_id, run, owner, team, None) for run in running)
    order = {p.name: i for i, p in enumerate(rules.policies)}
    return tuple(sorted(done, key=lambda t: (t.started_at, order[t.policy], t.cycle)))


def _on_move(
    policy: Policy, data: EventData, target: str, funnel: Funnel
) -> tuple[Outcome, str] | None:
    """How a stage move ends a running timer, or None if it keeps running."""
    if policy.stop in (StopRule.FIRST_SALES_ACTION, StopRule.DECISION):
        # The same reading as the handoff projection: these timers run while in the stage.
        if isinstance(data, LeadDisqualified | LeadRecycled) or target in (
            funnel.disqualified_stage,
            funnel.recycled_stage,
        ):
            return "met", "rejected"
        if funnel.team_of(target) is Team.SALES:
            return "met", "accepted"
        return "cancelled", "withdrawn"
    progressed = funnel.rank(target) >= 0 and funnel.rank(target) > funnel.rank(policy.start_stage)
    if policy.stop is StopRule.LEAVE_STAGE:
        return ("met", "progressed") if progressed else ("cancelled", target)
    # CONTACTS: the lead may move on along the main path; a side stage ends the effort.
    return ("cancelled", target) if funnel.rank(target) < 0 else None


def _timer(
    lead_id: str,
    run: _Running,
    owner: str | None,
    team: str | None,
    stop: tuple[Event, Outcome, str] | None,
) -> Timer:
    p, start = run.policy, run.start.time
    warn_at, deadline, escalate_at = _thresholds(p, start)
    return Timer(
        lead_id=lead_id,
        policy=p.name,
        cycle=run.start.id,
        started_at=start,
        warn_at=warn_at,
        deadline=deadline,
        escalate_at=escalate_at,
        stopped_at=stop[0].time if stop else None,
        outcome=stop[1] if stop else None,
        stop_reason=stop[2] if stop else None,
        stop_event_id=stop[0].id if stop else None,
        owner_id=owner,
        team=team,
        assigned_at=run.assigned_at,
    )


@lru_cache(maxsize=65536)
def _thresholds(p: Policy, start: datetime) -> tuple[datetime, datetime, tuple[datetime, ...]]:
    # Every event of a lead recomputes its timers; their thresholds never change.
    return (
        p.clock.deadline(start, p.warning),
        p.clock.deadline(start, p.limit),
        tuple(p.clock.deadline(start, p.limit + after) for after, _ in p.escalations),
    )
