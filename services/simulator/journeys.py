"""Seeded, pure generation of realistic lead journeys through the default funnel.

No I/O and no clock reads: every time is derived from the ``start`` passed in. ``journey``
builds one lead's history; ``Timeline`` merges an endless arrival of leads into one stream in
event-time order, to be cut at any simulated instant with ``until``.
"""

from __future__ import annotations

import heapq
import math
import random
from datetime import datetime, timedelta

from events.catalog import (
    EventData,
    LeadAssigned,
    LeadContacted,
    LeadCreated,
    LeadMerged,
    TouchpointRecorded,
)
from events.envelope import Event, make_event
from services.simulator.stages import Builder, sales_phases
from services.simulator.world import Campaign, Rep, SimConfig, lead_id, person, survivor_of
from services.simulator.world import touch_types as _touch_types

__all__ = ["SimConfig", "Timeline", "journey"]

_MIN, _HOUR, _DAY = 60.0, 3600.0, 86400.0
_CHANGED_BY_MARKETING = "marketing-automation"
#: the default funnel's suppressing reason codes (events/funnel.yaml, closed_loop)
_SUPPRESSING = frozenset({"poor_fit", "competitor", "existing_customer", "spam"})


def _campaigns(rng: random.Random, cfg: SimConfig, n: int) -> list[Campaign]:
    weights = [c.weight for c in cfg.campaigns]
    return rng.choices(cfg.campaigns, weights=weights, k=n)


def _touch(campaign: Campaign, touch_type: str) -> TouchpointRecorded:
    return TouchpointRecorded(
        campaign_id=campaign.campaign_id, channel=campaign.channel, touch_type=touch_type
    )


def _rep_for(rng: random.Random, cfg: SimConfig, region: str) -> Rep:
    # The router assigns by territory; custom rep lists without that region take anyone.
    local = [r for r in cfg.reps if r.region == region]
    return rng.choice(local or list(cfg.reps))


def journey(lead_no: int, start: datetime, rng: random.Random, cfg: SimConfig) -> list[Event]:
    """One lead's events in event-time order; the first (a touchpoint) is at ``start``.

    Ids are ``sim-{seed}-{lead_no}-{k}`` with ``k`` the position in the returned list, so
    they are unique per seed and identical for identical inputs.
    """
    b = Builder(start, rng, cfg, lead_id(cfg, lead_no))
    survivor = survivor_of(cfg, lead_no)
    who = person(cfg, survivor or lead_no)
    n_touches = rng.choices((1, 2, 3, 4, 5), weights=(25, 30, 22, 15, 8))[0]
    touches = _campaigns(rng, cfg, n_touches)
    n_before = 1 if n_touches == 1 else rng.randint(1, min(3, n_touches - 1))
    quality = sum(c.quality for c in touches) / len(touches)

    # Touches before the lead exists (an ad click, a blog visit) are what first-touch
    # attribution credits; the last of them is the conversion that creates the lead.
    for i, campaign in enumerate(touches[:n_before]):
        if i:
            b.wait(10 * _MIN, 5 * _DAY)
        engage, convert = _touch_types(campaign.channel)
        b.emit("web-forms", _touch(campaign, convert if i == n_before - 1 else engage))
    b.wait(2.0, 90.0)
    created_at = b.t
    channel = touches[n_before - 1].channel
    roll = rng.random()
    initial = "mql" if roll < 0.07 else "subscriber" if roll < 0.22 else "lead"
    # A duplicate repeats its original's email in other casing, and every other one with a
    # plus tag as well: normalization must catch both.
    email = who.email if survivor is None else _variant(who.email, lead_no)
    b.emit(
        "web-forms",
        LeadCreated(
            stage=initial,
            email=email,
            company=who.company,
            country=who.country,
            lead_source=channel,
        ),
    )
    b.stage = initial

    if survivor is not None:
        b.wait(30 * _MIN, 2 * _DAY)
        b.emit("crm", LeadMerged(survivor_id=lead_id(cfg, survivor), merged_by="ops-dedupe"))
    else:
        _marketing_phase(b, quality)
        attempts = 0
        while b.stage == "mql" and attempts < 2:
            attempts += 1
            rep = _rep_for(rng, cfg, who.region)
            _handoff(b, rep, quality)
            if b.stage == "sal":
                sales_phases(b, rep.rep_id, who.region, quality)
            _maybe_return(b, attempts)

    # Later touches (nurture emails, another webinar) fall anywhere in the active journey.
    span = max((b.t - created_at).total_seconds(), 60.0)
    for campaign in touches[n_before:]:
        at = created_at + timedelta(seconds=round(rng.uniform(0.05, 0.95) * span))
        b.emit_at(at, "web-forms", _touch(campaign, _touch_types(campaign.channel)[0]))
    return _events(b.items, b.subject, cfg.seed, lead_no)


def _variant(email: str, lead_no: int) -> str:
    local, _, domain = email.partition("@")
    tag = "+crm" if lead_no % 2 else ""
    return f"{local.title()}{tag}@{domain.upper()}"


def _events(
    items: list[tuple[datetime, str, EventData]], subject: str, seed: int, lead_no: int
) -> list[Event]:
    ordered = sorted(items, key=lambda item: item[0])  # stable: same-time items keep order
    return [
        make_event(data, id=f"sim-{seed}-{lead_no}-{k}", subject=subject, source=src, time=t)
        for k, (t, src, data) in enumerate(ordered)
    ]


def _marketing_phase(b: Builder, quality: float) -> None:
    """From creation to MQL, nurture or an early disqualification."""
    rng = b.rng
    if b.stage == "subscriber":
        roll = rng.random()
        if roll < 0.6:
            b.move("lead", 1 * _HOUR, 7 * _DAY, _CHANGED_BY_MARKETING, "requested contact")
        elif roll < 0.7:
            b.move("mql", 1 * _HOUR, 5 * _DAY, "lead-scoring", "score above threshold")
            return
        else:
            b.move("nurture", 1 * _DAY, 10 * _DAY, _CHANGED_BY_MARKETING, "newsletter only")
    if b.stage == "lead":
        roll = rng.random()
        if roll < min(0.85, 0.6 * quality):
            b.move("mql", 5 * _MIN, 4 * _DAY, "lead-scoring", "score above threshold")
            return
        if roll < min(0.85, 0.6 * quality) + 0.04:
            b.disqualify(10 * _MIN, 1 * _DAY, "marketing-ops", rng.choice(("spam", "duplicate")))
            return
        b.move("nurture", 1 * _DAY, 14 * _DAY, _CHANGED_BY_MARKETING, "not ready to buy")
    if b.stage == "nurture" and rng.random() < 0.35:
        b.move("mql", 2 * _DAY, 20 * _DAY, "lead-scoring", "re-engaged in nurture")


def _handoff(b: Builder, rep: Rep, quality: float) -> None:
    """Routing, then the first sales action and the accept/reject decision on an MQL."""
    rng, cfg = b.rng, b.cfg
    mql_at = b.t
    miss = rng.random() < cfg.sla_miss_ratio
    latency = b.span(61 * _MIN, 3 * _DAY) if miss else b.span(90.0, 55 * _MIN)
    # Routing is usually seconds; when the SLA is missed it is sometimes the router's fault.
    if miss and rng.random() < 0.35:
        system = latency * rng.uniform(0.5, 0.95)
    else:
        system = min(b.span(3.0, 20 * _MIN), latency * 0.8)
    assigned = LeadAssigned(owner_id=rep.rep_id, team=rep.team, assigned_by="router")
    b.emit_at(mql_at + system, "crm", assigned)
    b.t = mql_at + latency

    first = rng.random()
    if first < 0.65:
        activity = rng.choices(("call", "email", "meeting"), weights=(50, 40, 10))[0]
        outcome = rng.choice(("no_answer", "left_voicemail", "connected", "sent"))
        b.emit(
            "sales-engagement", LeadContacted(activity=activity, rep_id=rep.rep_id, outcome=outcome)
        )
        for _ in range(rng.choice((0, 0, 1, 2))):
            b.wait(1 * _HOUR, 2 * _DAY)
            b.emit(
                "sales-engagement",
                LeadContacted(
                    activity=rng.choice(("call", "email")), rep_id=rep.rep_id, outcome="connected"
                ),
            )
        lo, hi = (5 * _MIN, 20 * _HOUR) if rng.random() < 0.85 else (1 * _DAY, 4 * _DAY)
        decide = rng.random()
        accept = min(0.9, 0.7 * quality)
        if decide < accept:
            b.move("sal", lo, hi, rep.rep_id, "accepted after first contact")
        elif decide < accept + (1 - accept) / 2:
            b.recycle(lo, hi, rep.rep_id, "no response after three attempts")
        else:
            code = rng.choice(("unresponsive", "no_budget", "no_need", "poor_fit", "bad_timing"))
            b.disqualify(lo, hi, rep.rep_id, code)
    elif first < 0.85:
        b.move("sal", 0.0, 0.0, rep.rep_id, "accepted on review")
    elif first < 0.925:
        b.recycle(0.0, 0.0, rep.rep_id, "not sales ready")
    else:
        codes = ("poor_fit", "existing_customer", "competitor", "duplicate", "no_need", "spam")
        b.disqualify(0.0, 0.0, rep.rep_id, rng.choice(codes))


def _maybe_return(b: Builder, attempts: int) -> None:
    """After a handoff: recycled and some lost leads go to nurture, and a few come back as MQL.

    A quarter of the leads disqualified for a suppressing reason (poor fit, competitor,
    existing customer, spam) are re-handed to sales by marketing within days, so the
    closed loop has something to flag (``handoff.suppressed``) even in a two-day demo.
    """
    rng, again = b.rng, attempts < 2
    if b.stage == "disqualified":
        if again and b.last_reason in _SUPPRESSING and rng.random() < 0.25:
            b.recycle(2 * _HOUR, 2 * _DAY, "marketing-ops", "re-engaged on a new campaign")
            b.move("mql", 1 * _HOUR, 2 * _DAY, "lead-scoring", "score above threshold")
        return
    if b.stage == "recycled":
        b.move("nurture", 10 * _MIN, 2 * _DAY, _CHANGED_BY_MARKETING, "back to nurture")
    elif b.stage == "lost" and rng.random() < 0.3:
        b.move("nurture", 7 * _DAY, 30 * _DAY, _CHANGED_BY_MARKETING, "closed lost, nurture")
    if b.stage == "nurture" and again and rng.random() < 0.25:
        b.move("mql", 3 * _DAY, 21 * _DAY, "lead-scoring", "re-engaged in nurture")


class Timeline:
    """Many journeys merged into one stream in event-time order.

    Leads arrive as a Poisson process of ``leads_per_hour`` in simulated time, starting at
    ``start``. Each lead's path uses its own RNG seeded from (seed, lead number), so the
    stream is identical however ``until`` is called.
    """

    def __init__(self, cfg: SimConfig, start: datetime, leads_per_hour: float) -> None:
        if not leads_per_hour > 0 or math.isinf(leads_per_hour):
            raise ValueError("leads_per_hour must be a positive, finite number")
        self._cfg = cfg
        self._mean_gap = 3600.0 / leads_per_hour
        self._arrivals = random.Random(f"{cfg.seed}-arrivals")
        self._next_no = 1
        self._next_at = start
        self._heap: list[tuple[datetime, int, int, Event]] = []

    def until(self, t: datetime) -> list[Event]:
        """Every not-yet-emitted event with ``time <= t``, in event-time order.

        Monotonic: a ``t`` earlier than a previous one returns nothing new.
        """
        # A journey's events are never earlier than its arrival, so once every lead that
        # arrived by t is in the heap, everything left in it is later than t.
        while self._next_at <= t:
            rng = random.Random(f"{self._cfg.seed}-lead-{self._next_no}")
            for k, event in enumerate(journey(self._next_no, self._next_at, rng, self._cfg)):
                heapq.heappush(self._heap, (event.time, self._next_no, k, event))
            self._next_no += 1
            gap = self._arrivals.expovariate(1.0 / self._mean_gap)
            self._next_at += timedelta(seconds=max(1, round(gap)))
        out: list[Event] = []
        while self._heap and self._heap[0][0] <= t:
            out.append(heapq.heappop(self._heap)[3])
        return out

    @property
    def leads_started(self) -> int:
        """How many leads have arrived so far."""
        return self._next_no - 1
