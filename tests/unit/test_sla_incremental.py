"""The incremental timer fold: stepping a lead's fold one in-order event at a time gives what
refolding its whole history gives, in the pure fold and in the processor's SLA engine."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.envelope import Event
from events.sla_config import VolumeTarget
from projections.lead import Applied, LeadState, apply, empty, fold, order_key
from projections.sla import fold_timers, start_fold, step_timers
from projections.sla_emit import TimerRow
from projections.sla_volume import VolumeFold, step_volume, volume_facts
from services.processor.sla_engine import Key, SlaEngine

from .factories import FUNNEL, LEAD, assigned, at, contacted, created, merged, moved
from .sla_reference import reference_timers
from .sla_support import RULES
from .test_fold_properties import FAST, deliveries, journeys

TARGET = VolumeTarget(stage="mql", per_rep=10, timezone="Europe/Berlin")


def with_merge(journey: list[Event], merge: bool) -> list[Event]:
    if not merge:
        return journey
    last = journey[-1].time + timedelta(minutes=5)
    return [*journey, merged(LEAD, last, "lead-survivor", id="zz-merge")]


@FAST
@given(journeys(), st.booleans())
def test_stepping_in_order_gives_the_timers_of_every_prefix(
    journey: list[Event], merge: bool
) -> None:
    history = sorted(with_merge(journey, merge), key=order_key)
    state = start_fold(LEAD)
    before: dict[Key, object] = {}
    for n, event in enumerate(history, start=1):
        state, changed = step_timers(state, event, RULES)
        expected = reference_timers(fold(LEAD, history[:n], FUNNEL), RULES)
        assert state.timers == expected
        now = {t.key: t for t in state.timers}
        # Exactly the timers that are new or differ are reported changed, in timers() order.
        assert changed == tuple(t for t in expected if before.get(t.key) != t)
        before = dict(now)


@FAST
@given(journeys())
def test_stepping_the_volume_fold_gives_the_volume_facts_of_every_prefix(
    journey: list[Event],
) -> None:
    history = sorted(journey, key=order_key)
    state = VolumeFold()
    for n, event in enumerate(history, start=1):
        state = step_volume(state, LEAD, event, TARGET, FUNNEL)
        assert state.facts == volume_facts(fold(LEAD, history[:n], FUNNEL), TARGET, FUNNEL)


@FAST
@given(journeys())
def test_a_refold_that_reuses_known_thresholds_gives_the_same_timers(journey: list[Event]) -> None:
    history = sorted(journey, key=order_key)
    first = fold_timers(LEAD, history, RULES)
    assert fold_timers(LEAD, history, RULES, first.thresholds()) == first
    assert first.timers == reference_timers(fold(LEAD, history, FUNNEL), RULES)


def test_stepping_an_event_that_sorts_before_the_folded_history_is_refused() -> None:
    history = [created(LEAD, at(0)), moved(LEAD, at(5), "lead", "mql")]
    state = fold_timers(LEAD, history, RULES)
    with pytest.raises(ValueError, match="does not sort after"):
        step_timers(state, contacted(LEAD, at(1)), RULES)


def test_an_assignment_changes_only_the_running_timers() -> None:
    history = [
        created(LEAD, at(0)),
        moved(LEAD, at(1), "lead", "mql"),
        contacted(LEAD, at(10)),  # meets mql_first_touch
    ]
    state = fold_timers(LEAD, history, RULES)
    _, changed = step_timers(state, assigned(LEAD, at(20), "rep-1"), RULES)
    assert {t.policy for t in changed} == {"sal_decision", "mql_stagnation"}
    assert all(t.owner_id == "rep-1" and t.assigned_at == at(20) for t in changed)


# --- the engine: stepping vs refolding ---------------------------------------------------------


class CommittedRows:
    """The ``sla_timer`` table: what the engine committed, loaded back on a cache miss."""

    def __init__(self) -> None:
        self.rows: dict[Key, TimerRow] = {}

    async def load_timers(self, lead_ids: Sequence[str]) -> dict[str, list[TimerRow]]:
        out: dict[str, list[TimerRow]] = {}
        for row in self.rows.values():
            if row.timer.lead_id in lead_ids:
                out.setdefault(row.timer.lead_id, []).append(row)
        return out

    async def load_pending(self, partitions: Sequence[int]) -> list[TimerRow]:
        return [r for r in self.rows.values() if r.next_fire_at is not None]


async def drive(
    arrival: list[Event], cuts: set[int], fail: set[int], cache_leads: int, stepped: bool
) -> tuple[list[str], dict[Key, TimerRow], list[object]]:
    """Feed ``arrival`` through an engine as the pipeline does: batches end after each index
    in ``cuts``; the first attempt of a batch that holds an index in ``fail`` fails right
    after that record (``forget``) and is redone from the last commit."""
    engine, table = SlaEngine(RULES, cache_leads=cache_leads), CommittedRows()
    committed: LeadState = empty(LEAD)
    stream: datetime | None = None
    derived: list[str] = []
    facts: list[object] = []
    ends = sorted({i for i in cuts if i < len(arrival)} | {len(arrival) - 1})
    start = 0
    for end in ends:
        batch = arrival[start : end + 1]
        for attempt in range(2):
            await engine.prepare(table, [0], [LEAD])
            state, now = committed, stream
            failed = False
            for i, event in enumerate(batch, start=start):
                result = apply(state, event, FUNNEL)
                if isinstance(result, Applied):
                    state = result.state
                    now = event.time if now is None else max(now, event.time)
                    engine.lead_changed(0, state, now, stepped and not result.out_of_order)
                if now is not None:
                    engine.advance(0, now)
                if attempt == 0 and i in fail:
                    failed = True
                    break
            if failed:
                engine.forget()
                continue
            out = engine.drain()
            derived.extend(e.id for e in out.derived)
            facts.extend(out.facts.values())
            table.rows.update({r.timer.key: r for r in out.rows})
            engine.committed()
            committed, stream = state, now
            break
        start = end + 1
    return derived, table.rows, facts


@FAST
@given(
    deliveries(),
    st.sets(st.integers(0, 30), max_size=6),
    st.sets(st.integers(0, 30), max_size=2),
    st.sampled_from([0, 1, 1000]),
)
def test_the_engine_stepping_in_order_events_emits_and_stores_what_refolding_does(
    delivery: tuple[list[Event], list[Event]], cuts: set[int], fail: set[int], cache_leads: int
) -> None:
    # Batch cuts, failed attempts and cache evictions decide when the engine has a fold to
    # step; none of them may change a row, a derived event (or its order) or a volume fact.
    _, arrival = delivery
    stepped = asyncio.run(drive(arrival, cuts, fail, cache_leads, stepped=True))
    refolded = asyncio.run(drive(arrival, cuts, fail, cache_leads, stepped=False))
    assert stepped == refolded


def test_a_running_timer_due_at_an_event_fires_in_timer_order_with_the_ones_it_changed() -> None:
    # contact_attempts started before sql_stagnation and keeps running past its warning; the
    # move that stops sql_stagnation also makes it due. Refolding settles both, in timer order.
    history = [
        created(LEAD, at(0)),
        moved(LEAD, at(1), "lead", "mql"),
        assigned(LEAD, at(2), "rep-1"),
        moved(LEAD, at(10), "mql", "sal"),
        moved(LEAD, at(hours=1), "sal", "sql"),
        moved(LEAD, at(days=4), "sql", "opportunity"),
    ]
    stepped = asyncio.run(drive(history, set(), set(), 1000, stepped=True))
    assert stepped == asyncio.run(drive(history, set(), set(), 1000, stepped=False))
    ids = [i.split("/")[2] + "/" + i.split("/")[-1] for i in stepped[0]]
    assert ids.index("contact_attempts/warning") < ids.index("sql_stagnation/met")
