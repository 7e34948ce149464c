"""A seeded closed-loop history with its ground truth written down per constructed case.

Scenarios (one lead each, cycling, campaign by lead number):

- ``rehandoff``: MQL, disqualified with a suppressing reason, recycled, MQL again: two
  re-handoffs (the recycle and the new MQL);
- ``late_rehandoff``: the same, but the recycle and the new MQL are published *before* the
  disqualification that sorts earlier: still two re-handoffs (event time, not arrival);
- ``soft``: disqualified with a non-suppressing reason, recycled, MQL again: none;
- ``suppressed_quiet``: disqualified with a suppressing reason and left there: none;
- ``accepted``: MQL accepted by sales: none.

Duplicates: a few constructed pairs whose addresses differ only in what normalization
ignores (``John.Doe+x@Gmail.com`` / ``johndoe@gmail.com``, case and spaces, googlemail), and
near-misses that must stay apart (dots on a non-gmail domain). The last pair is merged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from events.catalog import (
    DealCreated,
    DealWon,
    EventData,
    LeadCreated,
    LeadDisqualified,
    LeadMerged,
    LeadRecycled,
    LeadStageChanged,
    TouchpointRecorded,
)
from events.envelope import Event, make_event

M = timedelta(minutes=1)
SUPPRESSING = ("poor_fit", "competitor", "existing_customer", "spam")
SOFT = ("no_budget", "bad_timing", "no_need")
CAMPAIGNS = ("cmp-webinar-pipeline", "cmp-linkedin-abm", "cmp-search-brand")
CHANNEL = {"cmp-webinar-pipeline": "webinar", "cmp-linkedin-abm": "paid_social",
           "cmp-search-brand": "paid_search"}  # fmt: skip
SCENARIOS = ("rehandoff", "late_rehandoff", "soft", "suppressed_quiet", "accepted")
#: (original address, duplicate address): each a constructed duplicate pair
DUPLICATES = (
    ("John.Doe+x@Gmail.com", "johndoe@gmail.com"),
    ("ada.lovelace@example.com", "  Ada.Lovelace@Example.COM "),
    ("grace.hopper@googlemail.com", "GraceHopper+crm@gmail.com"),
    ("linus@example.org", "linus+news@example.org"),
)
#: addresses that look alike but are different people: never a pair
NEAR_MISSES = ("john.doe@example.com", "johndoe@example.com")


@dataclass
class ClosedLoopHistory:
    events: list[Event] = field(default_factory=list)
    #: published after everything else (their arrival is late, their event time is not)
    late: list[Event] = field(default_factory=list)
    #: a record the processor must reject, carrying a raw address
    rejected: list[Event] = field(default_factory=list)
    suppressed_ids: set[str] = field(default_factory=set)
    #: campaign -> (suppressed re-handoffs, disqualifications)
    per_campaign: dict[str, list[int]] = field(default_factory=dict)
    pairs: set[tuple[str, str]] = field(default_factory=set)
    addresses: list[str] = field(default_factory=list)
    merged: tuple[str, str] | None = None  # (merged lead, survivor)

    def publish_order(self) -> list[Event]:
        return [*self.events, *self.rejected]


def _ev(lead: str, k: int, when: datetime, data: EventData, source: str = "crm") -> Event:
    return make_event(data, id=f"{lead}-e{k}", subject=lead, source=source, time=when)


def build(n_leads: int, t0: datetime, seed: int = 7) -> ClosedLoopHistory:
    rng = random.Random(seed)
    h = ClosedLoopHistory()
    for i in range(n_leads):
        scenario = SCENARIOS[i % len(SCENARIOS)]
        lead = f"cl-{i:04d}"
        campaign = CAMPAIGNS[i % len(CAMPAIGNS)]
        start = t0 + timedelta(minutes=rng.randint(0, 3 * 24 * 60))
        address = f"person{i}@leads.example"
        h.addresses.append(address)
        first = [
            _ev(lead, 0, start, TouchpointRecorded(
                campaign_id=campaign, channel=CHANNEL[campaign], touch_type="form_fill"),
                "web-forms"),
            _ev(lead, 1, start + M, LeadCreated(stage="mql", email=address,
                                                lead_source=CHANNEL[campaign]), "web-forms"),
        ]  # fmt: skip
        h.events += first
        counts = h.per_campaign.setdefault(campaign, [0, 0])
        dq_at = start + 30 * M
        if scenario == "accepted":
            h.events.append(_ev(lead, 2, dq_at, LeadStageChanged(from_stage="mql", to_stage="sal")))
            continue
        reason = rng.choice(SOFT if scenario == "soft" else SUPPRESSING)
        dq = _ev(lead, 2, dq_at, LeadDisqualified(from_stage="mql", reason_code=reason))
        counts[1] += 1
        back = [
            _ev(lead, 3, dq_at + 60 * M, LeadRecycled(from_stage="disqualified", reason="retry")),
            _ev(lead, 4, dq_at + 120 * M, LeadStageChanged(
                from_stage="recycled", to_stage="mql", changed_by="marketing-automation")),
        ]  # fmt: skip
        if scenario == "suppressed_quiet":
            h.events.append(dq)
        elif scenario == "late_rehandoff":
            h.events += back
            h.late.append(dq)
        else:
            h.events += [dq, *back]
        if scenario in ("rehandoff", "late_rehandoff"):
            h.suppressed_ids |= {f"closedloop/suppressed/{lead}/{e.id}" for e in back}
            counts[0] += len(back)
    for j, (original, duplicate) in enumerate(DUPLICATES):
        a, b = f"dup-{j}-a", f"dup-{j}-b"
        when = t0 + timedelta(hours=j)
        h.events.append(_ev(a, 0, when, LeadCreated(stage="lead", email=original), "web-forms"))
        h.events.append(
            _ev(b, 0, when + 90 * M, LeadCreated(stage="lead", email=duplicate), "web-forms")
        )
        h.pairs.add((a, b))
        h.addresses += [original.strip(), duplicate.strip()]
    survivor, dup = "dup-0-a", "dup-0-b"
    h.events += [
        _ev(survivor, 1, t0 + 10 * M, LeadStageChanged(from_stage="lead", to_stage="mql")),
        _ev(dup, 1, t0 + 100 * M, TouchpointRecorded(
            campaign_id="cmp-search-brand", channel="paid_search", touch_type="ad_click")),
        _ev(dup, 2, t0 + 200 * M, LeadMerged(survivor_id=survivor, merged_by="ops-dedupe")),
        _ev(survivor, 2, t0 + 5 * M, TouchpointRecorded(
            campaign_id="cmp-webinar-pipeline", channel="webinar", touch_type="form_fill")),
        _ev(survivor, 3, t0 + 300 * M, DealCreated(
            deal_id="D-merged", amount=Decimal("1000.00"), currency="EUR")),
        _ev(survivor, 4, t0 + 400 * M, DealWon(
            deal_id="D-merged", amount=Decimal("1000.00"), currency="EUR")),
    ]  # fmt: skip
    h.merged = (dup, survivor)
    for k, address in enumerate(NEAR_MISSES):
        lead = f"near-{k}"
        h.events.append(_ev(lead, 0, t0, LeadCreated(stage="lead", email=address), "web-forms"))
        h.addresses.append(address)
    h.rejected.append(
        _ev("bad-1", 0, t0, LeadCreated(stage="vip", email="reject.me+x@gmail.com"), "web-forms")
    )
    h.addresses.append("reject.me+x@gmail.com")
    return h
