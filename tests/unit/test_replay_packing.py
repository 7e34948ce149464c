"""Packing leads out of the replay's working set changes memory, never the rebuilt tables."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from events.attribution_config import load_attribution
from events.codec import encode
from events.envelope import Event
from events.sla_config import load_sla
from projections.sla import compile_rules
from services.processor.records import Record
from services.replay.engine import FoldResult, ReplayPlan, fold_source
from services.replay.projections import PROJECTIONS
from tests.unit.factories import FUNNEL, at, one_of_each, touched

LEADS = [f"L-{n}" for n in range(6)]


def history() -> list[Event]:
    """Every lead's events interleaved, so each lead is committed in many batches, plus
    events that arrive after later ones of their lead (a refold)."""
    per_lead = [one_of_each(lead) for lead in LEADS]
    events = [e for step in zip(*per_lead, strict=True) for e in step]
    return events + [touched(lead, at(0.5), campaign="late") for lead in LEADS[::2]]


class ListSource:
    def __init__(self, events: Sequence[Event], batch_size: int) -> None:
        self.records = [
            Record("t", 0, n, e.key, encode(e), int(e.time.timestamp() * 1000) + 1000, ())
            for n, e in enumerate(events)
        ]
        self.batch_size = batch_size

    async def open(self) -> int:
        return len(self.records)

    async def batches(self) -> AsyncIterator[list[Record]]:
        for i in range(0, len(self.records), self.batch_size):
            yield self.records[i : i + self.batch_size]

    async def close(self) -> None:
        return None


def fold(keep_leads: int, batch_size: int) -> FoldResult:
    plan = ReplayPlan(
        dsn="", schema="unused", topic="t", funnel=FUNNEL,
        sla_rules=compile_rules(load_sla(FUNNEL), FUNNEL), attribution=load_attribution(),
        email_hmac_key=b"k",
    )  # fmt: skip
    source = ListSource(history(), batch_size)
    return asyncio.run(fold_source(plan, source, keep_leads=keep_leads))


def tables(result: FoldResult) -> dict[str, list[str]]:
    def text(rows: Any) -> list[str]:
        return sorted(repr(r) for r in rows)

    return {p.table: text(p.rows(result.state)) for p in PROJECTIONS}


def test_a_replay_that_packs_all_but_one_lead_rebuilds_the_same_tables() -> None:
    unbounded = fold(keep_leads=1 << 62, batch_size=4)
    packed = fold(keep_leads=1, batch_size=4)
    assert packed.state.packed, "the small working set packed leads"
    assert packed.state.lead_count == unbounded.state.lead_count == len(LEADS)
    assert tables(packed) == tables(unbounded)
    assert unbounded.state.credits, "attribution was computed"


def test_a_packed_lead_that_gets_another_event_is_unpacked_and_refolded() -> None:
    result = fold(keep_leads=2, batch_size=3)
    state = result.state
    assert not state.leads.keys() & state.packed.keys()
    assert len(state.leads) == 2
    rows = {r[0]: r for r in state.lead_rows()}
    reference = {r[0]: r for r in fold(keep_leads=1 << 62, batch_size=50).state.lead_rows()}
    assert rows == reference
