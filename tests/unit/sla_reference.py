"""The SLA timers of a lead by one plain walk over its whole history: the reference that the
incremental fold (``projections.sla.step_timers``, which the processor runs) is checked
against, prefix by prefix, in test_sla_incremental.py. Kept apart from the production code
so that the two are written independently; they share only the per-policy stop rule
(``_on_move``) and the threshold computation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from events.catalog import LeadAssigned, LeadContacted, LeadMerged
from events.envelope import Event
from events.funnel import Team
from events.sla_config import StopRule
from projections.lead import LeadState
from projections.sla import Outcome, Policy, SlaRules, Timer, _on_move, _thresholds
from projections.step import stage_move


@dataclass(slots=True)
class _Running:
    policy: Policy
    start: Event
    assigned_at: datetime | None
    contacts: int = 0


def reference_timers(state: LeadState, rules: SlaRules) -> tuple[Timer, ...]:
    """Every timer of the lead, in start order (then policy order), by one walk."""
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
    order = rules.order
    return tuple(sorted(done, key=lambda t: (t.started_at, order[t.policy], t.cycle)))


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
