"""The SLA emission rule and clock as they were before their fast paths (kept for tests only).

``projections.sla_emit`` and ``projections.sla_clock`` now build rows, firings and derived
events with fast constructors and walk a timer's thresholds in one pass; these plain versions
are what they must still equal, field for field and byte for byte.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from events.envelope import Event
from events.sla_events import SOURCE, SlaEventData
from projections.sla import Policy, SlaRules, Timer
from projections.sla_clock import ZERO, AlwaysOn, BusinessHours, Clock
from projections.sla_emit import _MODELS, _SCHEMAS, TERMINAL, Firing, derived_id

_DAY = timedelta(days=1)


def due(timer: Timer, emitted: frozenset[str], stream_time: datetime | None) -> tuple[Firing, ...]:
    out: list[Firing] = []
    if "started" not in emitted:
        out.append(Firing("started", "started", timer.started_at))
    if emitted & TERMINAL:
        return tuple(out)

    def passed(threshold: datetime) -> bool:
        if stream_time is None or stream_time <= threshold:
            return False
        return timer.stopped_at is None or timer.stopped_at > threshold

    if "warning" not in emitted and passed(timer.warn_at):
        out.append(Firing("warning", "warning", timer.warn_at))
    if "breached" not in emitted and passed(timer.deadline):
        out.append(Firing("breached", "breached", timer.deadline))
    for level, at in enumerate(timer.escalate_at, start=1):
        tag = f"escalated-{level}"
        if tag not in emitted and passed(at):
            out.append(Firing(tag, "escalated", at, level))
    if timer.outcome is not None and timer.stopped_at is not None:
        out.append(Firing(timer.outcome, timer.outcome, timer.stopped_at))
    return tuple(out)


def next_fire_at(timer: Timer, emitted: frozenset[str]) -> datetime | None:
    if emitted & TERMINAL or timer.outcome is not None:
        return None
    pending = [timer.warn_at] if "warning" not in emitted else []
    if "breached" not in emitted:
        pending.append(timer.deadline)
    pending += [
        at
        for level, at in enumerate(timer.escalate_at, start=1)
        if f"escalated-{level}" not in emitted
    ]
    return min(pending, default=None)


def derived_event(timer: Timer, firing: Firing, rules: SlaRules) -> Event:
    """Built with pydantic's own ``model_construct``, from the same values as before."""
    policy = rules.by_name[timer.policy]
    elapsed = policy.clock.elapsed(timer.started_at, firing.at).total_seconds()
    limit = policy.limit.total_seconds()
    common: dict[str, Any] = {
        "policy": timer.policy,
        "lead_id": timer.lead_id,
        "cycle": timer.cycle,
        "owner_id": timer.owner_id,
        "team": timer.team,
        "started_at": timer.started_at,
        "warn_at": timer.warn_at,
        "deadline": timer.deadline,
        "limit_seconds": limit,
        "elapsed_seconds": elapsed,
        "delay_side": timer.delay_side(firing.at),
    }
    model: type[SlaEventData] = _MODELS[firing.kind]
    if firing.kind == "escalated":
        common.update(level=firing.level, escalate_to=policy.escalations[firing.level - 1][1])
    elif firing.kind in TERMINAL:
        common.update(
            stopped_at=firing.at,
            stop_reason=timer.stop_reason or "",
            stop_event_id=timer.stop_event_id,
            lateness_seconds=elapsed - limit,
        )
    return Event.model_construct(
        id=derived_id(timer, firing.tag),
        source=SOURCE,
        type=model.TYPE,
        subject=timer.lead_id,
        time=firing.at,
        schemaversion=model.VERSION,
        dataschema=_SCHEMAS[model],
        data=model.model_construct(**common),
    )


def thresholds(p: Policy, start: datetime) -> tuple[datetime, datetime, tuple[datetime, ...]]:
    return (
        deadline(p.clock, start, p.warning),
        deadline(p.clock, start, p.limit),
        tuple(deadline(p.clock, start, p.limit + after) for after, _ in p.escalations),
    )


def deadline(clock: Clock, start: datetime, limit: timedelta) -> datetime:
    if isinstance(clock, AlwaysOn):
        return start + max(limit, ZERO)
    if limit <= ZERO:
        return start
    remaining = limit
    day = start.astimezone(ZoneInfo(clock.timezone)).date()
    while True:
        for opens, closes in windows(clock, day):
            if closes <= start:
                continue
            lo = max(opens, start)
            if closes - lo >= remaining:
                return lo + remaining
            remaining -= closes - lo
        day += _DAY


def elapsed(clock: Clock, start: datetime, end: datetime) -> timedelta:
    if isinstance(clock, AlwaysOn):
        return max(end - start, ZERO)
    if end <= start:
        return ZERO
    total = ZERO
    zone = ZoneInfo(clock.timezone)
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    while day <= last:
        for opens, closes in windows(clock, day):
            lo, hi = max(opens, start), min(closes, end)
            if hi > lo:
                total += hi - lo
        day += _DAY
    return total


def windows(clock: BusinessHours, day: date) -> tuple[tuple[datetime, datetime], ...]:
    if day in clock.holidays:
        return ()
    zone = ZoneInfo(clock.timezone)
    out: list[tuple[datetime, datetime]] = []
    for opens, closes in clock.weekly[day.weekday()]:
        lo = datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)
        if closes is None:
            hi = datetime.combine(day + _DAY, time(0), tzinfo=zone).astimezone(UTC)
        else:
            hi = datetime.combine(day, closes, tzinfo=zone).astimezone(UTC)
        if hi > lo:
            out.append((lo, hi))
    return tuple(out)
