"""A pure, single-lead stand-in for the processor's SLA engine, for unit tests.

It does what the engine does per record, without queues or I/O: advance stream time, fold
the event in, recompute the lead's timers and fire what is due.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from events.envelope import Event
from events.sla_config import load_sla
from projections.lead import Applied, LeadState, apply, empty
from projections.sla import SlaRules, Timer, compile_rules, timers
from projections.sla_emit import Firing, TimerRow, fire

from .factories import FUNNEL

RULES = compile_rules(load_sla(FUNNEL), FUNNEL)


def run(
    events: Iterable[Event], until: datetime | None = None, rules: SlaRules = RULES
) -> tuple[dict[tuple[str, str], TimerRow], list[tuple[Timer, Firing]]]:
    """Deliver ``events`` in the given order, then advance stream time to ``until``.

    Returns the final rows by (policy, cycle) and every fact fired, in firing order.
    """
    events = list(events)
    state: LeadState = empty(events[0].subject)
    rows: dict[tuple[str, str], TimerRow] = {}
    fired: list[tuple[Timer, Firing]] = []
    stream: datetime | None = None

    def advance() -> None:
        for key, row in list(rows.items()):
            rows[key], firings = fire(row, stream)
            fired.extend((row.timer, f) for f in firings)

    for event in events:
        stream = event.time if stream is None else max(stream, event.time)
        result = apply(state, event, FUNNEL)
        assert isinstance(result, Applied), result
        state = result.state
        for timer in timers(state, rules):
            key = (timer.policy, timer.cycle)
            rows[key] = replace(rows[key], timer=timer) if key in rows else TimerRow(timer, 0)
        advance()
    if until is not None:
        stream = until
        advance()
    return rows, fired


def tags(fired: list[tuple[Timer, Firing]], policy: str) -> list[str]:
    """The tags one policy fired, in order."""
    return [f.tag for t, f in fired if t.policy == policy]
