"""The journey builder and the sales side of a journey (sal -> sql -> opportunity -> close).

Pure: times advance only by sampled durations from the builder's cursor.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from decimal import Decimal

from events.catalog import (
    DealCreated,
    DealLost,
    DealWon,
    EventData,
    LeadContacted,
    LeadDisqualified,
    LeadRecycled,
    LeadStageChanged,
)
from services.simulator.world import SimConfig

__all__ = ["Builder", "amount", "sales_phases"]

_MIN, _HOUR, _DAY = 60.0, 3600.0, 86400.0


class Builder:
    """Collects one lead's events while walking a time cursor ``t`` and the current stage.

    Every stage change waits at least a second, so stage events of one lead are strictly
    ordered in time and their ``from_stage`` chain survives the final sort.
    """

    def __init__(self, start: datetime, rng: random.Random, cfg: SimConfig, subject: str) -> None:
        self.t = start
        self.rng = rng
        self.cfg = cfg
        self.subject = subject
        self.stage = ""
        self.last_reason = ""
        self.deals = 0
        self.items: list[tuple[datetime, str, EventData]] = []

    def span(self, lo: float, hi: float) -> timedelta:
        """A whole-second duration between ``lo`` and ``hi`` seconds, log-uniform.

        Log-uniform gives the long right tail real response times have: most are short,
        some take days.
        """
        if hi <= lo:
            return timedelta(seconds=round(max(lo, 0.0)))
        low = max(lo, 1.0)
        seconds = math.exp(self.rng.uniform(math.log(low), math.log(max(hi, low))))
        return timedelta(seconds=round(seconds))

    def wait(self, lo: float, hi: float) -> None:
        """Advance the cursor by a sampled duration, and by at least one second."""
        self.t += max(self.span(lo, hi), timedelta(seconds=1))

    def emit(self, source: str, data: EventData) -> None:
        """Record an event at the cursor."""
        self.items.append((self.t, source, data))

    def emit_at(self, t: datetime, source: str, data: EventData) -> None:
        """Record a non-stage event at another time (routing, later touchpoints)."""
        self.items.append((t, source, data))

    def move(self, to: str, lo: float, hi: float, by: str, reason: str) -> None:
        """Wait, then change stage with a ``lead.stage_changed`` from the current stage."""
        self.wait(lo, hi)
        self.emit(
            "crm",
            LeadStageChanged(from_stage=self.stage, to_stage=to, changed_by=by, reason=reason),
        )
        self.stage, self.last_reason = to, reason

    def recycle(self, lo: float, hi: float, by: str, reason: str) -> None:
        """Wait, then hand the lead back to marketing with a ``lead.recycled``."""
        self.wait(lo, hi)
        self.emit("crm", LeadRecycled(from_stage=self.stage, reason=reason, recycled_by=by))
        self.stage, self.last_reason = "recycled", reason

    def disqualify(self, lo: float, hi: float, by: str, code: str) -> None:
        """Wait, then disqualify with a reason code of the funnel."""
        self.wait(lo, hi)
        self.emit(
            "crm", LeadDisqualified(from_stage=self.stage, reason_code=code, disqualified_by=by)
        )
        self.stage, self.last_reason = "disqualified", code


def amount(rng: random.Random, lo: float = 5_000.0, hi: float = 120_000.0) -> Decimal:
    """A deal size between ``lo`` and ``hi`` with exactly two decimals (log-uniform)."""
    cents = round(math.exp(rng.uniform(math.log(lo), math.log(hi))) * 100)
    return Decimal(min(max(cents, round(lo * 100)), round(hi * 100))).scaleb(-2)


def sales_phases(b: Builder, rep_id: str, region: str, quality: float) -> None:
    """From an accepted SAL onwards: qualification, opportunity and a won or lost deal."""
    rng = b.rng
    adv = min(0.9, 0.62 * quality)
    roll = rng.random()
    if roll < adv:
        if rng.random() < 0.6:
            b.wait(1 * _HOUR, 2 * _DAY)
            b.emit(
                "sales-engagement",
                LeadContacted(activity="meeting", rep_id=rep_id, outcome="discovery_done"),
            )
        b.move("sql", 4 * _HOUR, 5 * _DAY, rep_id, "budget, authority, need and timing confirmed")
    elif roll < adv + (1 - adv) * 0.4:
        codes = ("no_budget", "no_authority", "no_need", "bad_timing", "competitor")
        b.disqualify(1 * _HOUR, 4 * _DAY, rep_id, rng.choice(codes))
    elif roll < adv + (1 - adv) * 0.75:
        b.recycle(1 * _HOUR, 6 * _DAY, rep_id, "revisit next quarter")
    else:
        b.move("nurture", 1 * _DAY, 7 * _DAY, rep_id, "long-term interest only")
    if b.stage != "sql":
        return

    adv = min(0.9, 0.7 * quality)
    roll = rng.random()
    if roll >= adv:
        rest = (roll - adv) / (1 - adv)
        if rest < 1 / 3:
            late = ("no_budget", "no_authority", "competitor", "other")
            b.disqualify(1 * _HOUR, 5 * _DAY, rep_id, rng.choice(late))
        elif rest < 2 / 3:
            b.recycle(1 * _HOUR, 5 * _DAY, rep_id, "budget frozen until next fiscal year")
        else:
            b.move("lost", 1 * _DAY, 10 * _DAY, rep_id, "chose a competitor")
        return
    # A tenth of SQLs stagnate past the 7-day limit before an opportunity opens.
    lo, hi = (1 * _HOUR, 6 * _DAY) if rng.random() < 0.9 else (7 * _DAY, 12 * _DAY)
    b.move("opportunity", lo, hi, rep_id, "opportunity opened")
    b.deals += 1
    deal_id = f"{b.subject}-D{b.deals}"
    size, currency = amount(rng), "EUR" if region == "EMEA" else "USD"
    b.wait(1.0, 60.0)
    b.emit("crm", DealCreated(deal_id=deal_id, amount=size, currency=currency))

    # Most deals close within four weeks; some stagnate past the 30-day limit.
    lo, hi = (2 * _DAY, 28 * _DAY) if rng.random() < 0.9 else (30 * _DAY, 45 * _DAY)
    b.wait(lo, hi)
    if rng.random() < min(0.75, 0.4 * quality):
        final = size
        if rng.random() < 0.3:  # a negotiated discount
            final = max(Decimal("5000.00"), (size * Decimal(rng.randint(90, 99)) / 100))
            final = final.quantize(Decimal("0.01"))
        b.emit("crm", DealWon(deal_id=deal_id, amount=final, currency=currency))
        b.move("customer", 1.0, 30.0, rep_id, "closed won")
    else:
        reason = rng.choice(("price", "chose a competitor", "no decision", "missing features"))
        b.emit("crm", DealLost(deal_id=deal_id, amount=size, currency=currency, reason=reason))
        b.move("lost", 1.0, 30.0, rep_id, f"closed lost: {reason}")
