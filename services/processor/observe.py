"""Turns a committed batch's outcome into metric updates, aggregated per batch."""

from __future__ import annotations

import time
from collections import Counter

from services import metrics
from services.metrics_bulk import observe_all
from services.processor.pipeline import BatchOutcome


class EventTimeClock:
    """Tracks the newest applied event time; lag is computed when Prometheus scrapes."""

    def __init__(self) -> None:
        self.newest: float | None = None
        metrics.EVENT_TIME_LAG.set_function(self.lag)

    def lag(self) -> float:
        return 0.0 if self.newest is None else max(0.0, time.time() - self.newest)

    def saw(self, timestamp: float) -> None:
        if self.newest is None or timestamp > self.newest:
            self.newest = timestamp
            metrics.NEWEST_EVENT_TIME.set(timestamp)


def observe(outcome: BatchOutcome, clock: EventTimeClock) -> None:
    """Record one committed batch. Counters are incremented once per label set per batch."""
    for type_, n in Counter(e.type for e in outcome.accepted).items():
        metrics.EVENTS_PROCESSED.labels(type=type_).inc(n)
    for type_, n in Counter(e.type for e in outcome.out_of_order).items():
        metrics.EVENTS_OUT_OF_ORDER.labels(type=type_).inc(n)
    for reason, n in Counter(r.rejection.reason.value for r in outcome.rejected).items():
        metrics.EVENTS_REJECTED.labels(reason=reason, component="processor").inc(n)
    transitions: Counter[tuple[str, str]] = Counter()
    # A histogram child per label value, looked up once per batch rather than per observation
    # (``labels`` takes a lock and builds a key each time: a few percent of the worker).
    # The values of each histogram child are gathered and observed in one go per batch.
    in_stage: dict[str, list[float]] = {}
    latency: dict[str, list[float]] = {}
    system: list[float] = []
    human: list[float] = []
    for changes in outcome.changes:
        for t in changes.transitions:
            transitions[(t.from_stage or "none", t.to_stage)] += 1
        for x in changes.exits:
            seconds = in_stage.get(x.stage)
            if seconds is None:
                seconds = in_stage[x.stage] = []
            seconds.append(x.seconds)
        for h in changes.handoffs_completed:
            if h.latency_seconds is not None and h.action is not None:
                latency.setdefault(h.action, []).append(h.latency_seconds)
            if h.system_delay_seconds is not None:
                system.append(h.system_delay_seconds)
            if h.human_delay_seconds is not None:
                human.append(h.human_delay_seconds)
    for stage, values in in_stage.items():
        observe_all(metrics.TIME_IN_STAGE.labels(stage=stage), values)
    for action, values in latency.items():
        observe_all(metrics.HANDOFF_LATENCY.labels(action=action), values)
    observe_all(metrics.HANDOFF_SYSTEM_DELAY, system)
    observe_all(metrics.HANDOFF_HUMAN_DELAY, human)
    for (frm, to), n in transitions.items():
        metrics.STAGE_TRANSITIONS.labels(from_stage=frm, to_stage=to).inc(n)
    if outcome.ticks:
        metrics.TICKS.inc(outcome.ticks)
    if outcome.accepted:
        clock.saw(max(e.time for e in outcome.accepted).timestamp())
