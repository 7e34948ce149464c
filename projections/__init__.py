"""Pure, deterministic folds over lead events: no I/O, no asyncio, no clock.

Time only ever comes in as an argument (event times, or an explicit ``now``), so the same
events give the same projections live, on replay and in tests.

- ``projections.lead``: ``LeadState``, ``apply``, ``fold``, ``order_key``
- ``projections.views``: the frozen read-side values (``LeadView``, ``StageSpan``, ...)
- ``projections.step``: the stage rules, one event at a time
- ``projections.handoff``: the marketing -> sales handoff rules
- ``projections.time_in_stage``: time spent per stage
- ``projections.changes``: what an applied event newly reported (for counters)
"""

from __future__ import annotations

from projections.changes import Changes, StageExit, Transition, diff
from projections.lead import Applied, LeadState, Rejected, apply, empty, fold, order_key
from projections.views import Handoff, LeadView, StageSpan, StageTime

__all__ = [
    "Applied",
    "Changes",
    "Handoff",
    "LeadState",
    "LeadView",
    "Rejected",
    "StageExit",
    "StageSpan",
    "StageTime",
    "Transition",
    "apply",
    "diff",
    "empty",
    "fold",
    "order_key",
]
