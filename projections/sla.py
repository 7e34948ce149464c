"""SLA timers of one lead: a pure function of its accepted history, sorted by event time.

``timers(state, rules)`` walks ``LeadState.events`` (already in ``order_key`` order) once, with
``step_timers``:

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

``step_timers`` takes one event at a time: a ``SlaFold`` holds what the walk carries (stage,
owner, team, the running timers with their thresholds, every timer so far), and an event that
sorts after every folded one gives the next fold plus the timers it changed. The processor
steps a lead's fold on each in-order event instead of rewalking its history. A property test
checks the fold, at every prefix, against an independent whole-history walk kept in the tests
(tests/unit/sla_reference.py).

Whether a timer has *fired* (warned, breached) depends on stream time, not on the history;
that is ``projections.sla_emit``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
from projections.fast_init import fast_new, slot_builder
from projections.lead import LeadState, order_key
from projections.sla_clock import ZERO, AlwaysOn, BusinessHours, Clock
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
    #: what a timer's thresholds are counted from its start: warning, limit, each escalation
    offsets: tuple[timedelta, ...] = field(init=False, repr=False, compare=False)
    #: on the 24x7 clock, what its thresholds are after the start (``AlwaysOn.deadline``)
    always_on: tuple[timedelta, ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        offsets = (self.warning, self.limit, *(self.limit + after for after, _ in self.escalations))
        object.__setattr__(self, "offsets", offsets)
        always_on = None
        if isinstance(self.clock, AlwaysOn):
            always_on = tuple(max(offset, ZERO) for offset in offsets)
        object.__setattr__(self, "always_on", always_on)


@dataclass(frozen=True, slots=True)
class SlaRules:
    """Everything the timer fold needs: the policies and the funnel they run on."""

    config: SlaConfig
    funnel: Funnel
    policies: tuple[Policy, ...]
    by_name: dict[str, Policy] = field(init=False, repr=False, compare=False)
    #: a policy's position in ``policies``: timers of one instant sort in this order
    order: dict[str, int] = field(init=False, repr=False, compare=False)
    #: per stage: the policies that start a timer there, in ``policies`` order
    starting: dict[str, tuple[Policy, ...]] = field(init=False, repr=False, compare=False)
    #: ``_on_move`` verdicts seen so far, by (policy, target stage, a rejection or not)
    moves: dict[tuple[str, str, bool], tuple[Outcome, str] | None] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.policies})
        object.__setattr__(self, "order", {p.name: i for i, p in enumerate(self.policies)})
        starting: dict[str, list[Policy]] = {}
        for p in self.policies:
            starting.setdefault(p.start_stage, []).append(p)
        object.__setattr__(self, "starting", {k: tuple(v) for k, v in starting.items()})
        object.__setattr__(self, "moves", {})


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


def timers(state: LeadState, rules: SlaRules) -> tuple[Timer, ...]:
    """Every timer of the lead, in start order (then policy order)."""
    return fold_timers(state.lead_id, state.events, rules).timers


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


Thresholds = tuple[datetime, datetime, tuple[datetime, ...]]


def _thresholds(p: Policy, start: datetime) -> Thresholds:
    # ``clock.deadline`` of each offset, in one walk of the clock (see ``Clock.deadlines``).
    offsets = p.always_on
    if offsets is not None:
        if len(offsets) == 2:
            return start + offsets[0], start + offsets[1], ()
        return start + offsets[0], start + offsets[1], tuple([start + o for o in offsets[2:]])
    warn_at, deadline, *escalate_at = p.clock.deadlines(start, p.offsets)
    return warn_at, deadline, tuple(escalate_at)


#: what ``step_timers`` needs to know of an event's payload type
_ASSIGNED, _MERGED, _CONTACTED, _REJECTION, _OTHER = "assigned", "merged", "contacted", "r", "o"
_KINDS: dict[type, str] = {}
_UNKNOWN: tuple[Outcome, str] = ("cancelled", "")  # never a verdict: ``_on_move`` not asked yet


def _kind_of(data: EventData) -> str:
    """The payload's kind, found with ``isinstance`` once per type (that is all it depends on:
    a negative ``isinstance`` on a pydantic class goes through ``ABCMeta``)."""
    kind = _KINDS.get(type(data))
    if kind is None:
        if isinstance(data, LeadAssigned):
            kind = _ASSIGNED
        elif isinstance(data, LeadMerged):
            kind = _MERGED
        elif isinstance(data, LeadContacted):
            kind = _CONTACTED
        elif isinstance(data, LeadDisqualified | LeadRecycled):
            kind = _REJECTION
        else:
            kind = _OTHER
        _KINDS[type(data)] = kind
    return kind


# --- the same walk, one event at a time --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Live:
    """A running timer: its ``Timer`` as of the latest event, and the contacts it counted."""

    timer: Timer
    policy: Policy
    contacts: int = 0


@dataclass(frozen=True, slots=True)
class SlaFold:
    """What the timer walk carries after ``count`` events of one lead.

    ``timers`` is every timer so far, in ``timers()`` order, each as ``timers()`` of the
    folded prefix gives it; ``running`` is the ones still running, in start order.
    """

    lead_id: str
    stage: str | None = None
    owner: str | None = None
    team: str | None = None
    running: tuple[_Live, ...] = ()
    timers: tuple[Timer, ...] = ()
    count: int = 0
    #: ``order_key`` of the last folded event: the next one must sort after it
    last: tuple[datetime, int, str] | None = None

    def thresholds(self) -> dict[tuple[str, str, datetime], Thresholds]:
        """The thresholds of every timer, for a refold of the same lead to reuse."""
        return {
            (t.policy, t.cycle, t.started_at): (t.warn_at, t.deadline, t.escalate_at)
            for t in self.timers
        }


def start_fold(lead_id: str) -> SlaFold:
    """The fold of a lead before any event."""
    return SlaFold(lead_id)


def fold_timers(
    lead_id: str,
    events: Iterable[Event],
    rules: SlaRules,
    known: Mapping[tuple[str, str, datetime], Thresholds] | None = None,
) -> SlaFold:
    """The fold of a history already in ``order_key`` order (``LeadState.events``).

    ``known``: thresholds of timers computed before (``SlaFold.thresholds``), reused rather
    than recomputed on the policy clock; they depend only on the policy and the start.
    """
    out = SlaFold(lead_id)
    for event in events:
        out, _ = step_timers(out, event, rules, known)
    return out


def step_timers(
    fold: SlaFold,
    event: Event,
    rules: SlaRules,
    known: Mapping[tuple[str, str, datetime], Thresholds] | None = None,
) -> tuple[SlaFold, tuple[Timer, ...]]:
    """Fold one more event, which must sort after every folded one (else ``ValueError``).

    Returns the new fold and the timers that event changed or started (their new values),
    in ``timers()`` order. Every other timer is exactly as before.
    """
    key = order_key(event)
    if fold.last is not None and key <= fold.last:
        raise ValueError(f"event {event.id} does not sort after the folded history")
    lead_id, owner, team = fold.lead_id, fold.owner, fold.team
    data = event.data
    #: new values of timers that were running (their place in ``timers`` does not change)
    updated: list[Timer] = []
    #: timers this event started, in policy order
    started: list[Timer] = []
    running = fold.running
    stage = fold.stage
    time, event_id = event.time, event.id

    def stopped(live: _Live, outcome: Outcome, reason: str) -> Timer:
        t = live.timer
        return _timer(
            lead_id, t.policy, t.cycle, t.started_at, t.warn_at, t.deadline, t.escalate_at,
            time, outcome, reason, event_id, owner, team, t.assigned_at,
        )  # fmt: skip

    kind = _kind_of(data)
    if kind is _ASSIGNED:
        assert isinstance(data, LeadAssigned)
        owner, team = data.owner_id, data.team
        lives: list[_Live] = []
        for live in running:
            t = live.timer
            assigned_at = t.assigned_at or time
            if t.owner_id != owner or t.team != team or t.assigned_at != assigned_at:
                t = _timer(
                    lead_id, t.policy, t.cycle, t.started_at, t.warn_at, t.deadline,
                    t.escalate_at, None, None, None, None, owner, team, assigned_at,
                )  # fmt: skip
                updated.append(t)
                live = _live(t, live.policy, live.contacts)
            lives.append(live)
        running = tuple(lives)
    elif kind is _MERGED:
        updated = [stopped(live, "cancelled", "merged") for live in running]
        running = ()
    elif kind is _CONTACTED:
        lives = []
        for live in running:
            contacts = live.contacts + 1
            p = live.policy
            if p.stop is StopRule.FIRST_SALES_ACTION or (
                p.stop is StopRule.CONTACTS and contacts >= p.contacts
            ):
                updated.append(stopped(live, "met", "contacted"))
            else:
                lives.append(_live(live.timer, p, contacts))
        running = tuple(lives)
    else:
        move = stage_move(data, rules.funnel, has_stage=stage is not None)
        if move is not None:
            target = move[0]
            funnel = rules.funnel
            lives = []
            moves = rules.moves
            rejection = kind is _REJECTION
            for live in running:
                # ``_on_move`` depends only on these three (and the funnel of the rules).
                memo = (live.policy.name, target, rejection)
                verdict = moves.get(memo, _UNKNOWN)
                if verdict is _UNKNOWN:
                    verdict = moves[memo] = _on_move(live.policy, data, target, funnel)
                if verdict is None:
                    lives.append(live)
                else:
                    updated.append(stopped(live, *verdict))
            stage = target
            owned = owner is not None and funnel.team_of(target) is Team.SALES
            for policy in rules.starting.get(target, ()):
                found = known.get((policy.name, event_id, time)) if known else None
                warn_at, deadline, escalate_at = found or _thresholds(policy, time)
                t = _timer(
                    lead_id, policy.name, event_id, time, warn_at, deadline, escalate_at,
                    None, None, None, None, owner, team, time if owned else None,
                )  # fmt: skip
                started.append(t)
                lives.append(_live(t, policy, 0))
            running = tuple(lives)
    all_timers = fold.timers
    if not updated and not started:
        changed: tuple[Timer, ...] = ()
    else:
        order = rules.order

        def sort_key(t: Timer) -> tuple[datetime, int, str]:
            return (t.started_at, order[t.policy], t.cycle)

        if updated:
            # An updated timer keeps its start, policy and cycle, so its place. It was running,
            # so a stopped one (most of a long history) is none of them: not even keyed.
            new = {t.key: t for t in updated}
            all_timers = tuple([t if t.outcome is not None else new.pop(t.key, t)
                                for t in all_timers])  # fmt: skip
            if len(updated) > 1:
                updated.sort(key=sort_key)
        if started:
            # Started by this event, in policy order: they sort after every earlier start, so
            # after the rest unless a timer started at the same instant (then sort to be exact).
            if not all_timers or all_timers[-1].started_at < time:
                all_timers = (*all_timers, *started)
            else:
                all_timers = tuple(sorted([*all_timers, *started], key=sort_key))
            if updated and updated[-1].started_at >= time:
                updated = sorted([*updated, *started], key=sort_key)
            else:
                updated += started
        changed = tuple(updated)
    out = _fold(lead_id, stage, owner, team, running, all_timers, fold.count + 1, key)
    return out, changed


#: ``Timer(...)``, ``_Live(...)`` and ``SlaFold(...)`` with every field given, built faster
#: (see ``projections.fast_init``).
_timer = fast_new(Timer)
_live = slot_builder(_Live)
_fold = slot_builder(SlaFold)
