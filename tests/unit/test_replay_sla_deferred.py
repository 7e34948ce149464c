"""The replay's SLA engine, which settles in-order leads once at the end, ends with exactly the
timer rows, figures, volume facts and fact count of the live engine settling record by record."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from events.envelope import Event
from projections.lead import Applied, LeadState, apply, empty
from projections.sla_emit import TimerRow
from services.processor.sla_engine import Key, SlaEngine, SlaWrite
from services.replay.sla_deferred import DeferredSlaEngine
from services.store.sla_rows import row_values

from .factories import FUNNEL, LEAD, assigned, at, contacted, created, moved
from .sla_support import RULES
from .test_fold_properties import FAST, deliveries

#: (partition, lead, event) or (partition, None, tick time)
Item = tuple[int, str | None, Event | datetime]


class NoRows:
    """A replay starts from an empty store."""

    async def load_timers(self, lead_ids: Sequence[str]) -> dict[str, list[TimerRow]]:
        return {}

    async def load_pending(self, partitions: Sequence[int]) -> list[TimerRow]:
        return []


Result = tuple[dict[Key, TimerRow], dict[Key, tuple[float, float | None]], dict[str, object], int]


async def drive(engine: SlaEngine, items: list[Item], batch: int, finish: bool = True) -> Result:
    """What the pipeline does per record, in batches of ``batch``; what a replay stores
    (without the deferred engine's ``finish`` unless ``finish``)."""
    leads: dict[str, LeadState] = {}
    stream: dict[int, datetime] = {}
    rows: dict[Key, TimerRow] = {}
    figures: dict[Key, tuple[float, float | None]] = {}
    facts: dict[str, object] = {}
    fired = 0

    def keep(out: SlaWrite) -> None:
        nonlocal fired
        rows.update({r.timer.key: r for r in out.rows})
        figures.update(out.figures)
        facts.update(out.facts)
        fired += out.fired

    for start in range(0, len(items), batch):
        part = items[start : start + batch]
        lead_ids = {lead for _, lead, _ in part if lead is not None}
        await engine.prepare(NoRows(), sorted({p for p, _, _ in part}), sorted(lead_ids))
        for p, lead, item in part:
            if isinstance(item, Event) and lead is not None:
                result = apply(leads.get(lead, empty(lead)), item, FUNNEL)
                if isinstance(result, Applied):
                    leads[lead] = result.state
                    now = stream[p] = max(stream.get(p, item.time), item.time)
                    engine.lead_changed(p, result.state, now, not result.out_of_order)
            elif isinstance(item, datetime):
                stream[p] = max(stream.get(p, item), item)
            if p in stream:
                engine.advance(p, stream[p])
        keep(engine.drain())
        engine.committed()
    if finish and isinstance(engine, DeferredSlaEngine):
        keep(engine.finish())
    return rows, figures, facts, fired


def replayed(items: list[Item], batch: int) -> tuple[Result, Result]:
    live = asyncio.run(drive(SlaEngine(RULES, 1 << 62, derive=False), items, batch))
    return live, asyncio.run(drive(DeferredSlaEngine(RULES), items, batch))


def as_lead(event: Event, lead: str, shift: timedelta) -> Event:
    return event.model_copy(update={"subject": lead, "time": event.time + shift})


@st.composite
def streams(draw: st.DrawFn) -> list[Item]:
    """Three leads' histories (in order, or delivered with late and invalid events) shifted in
    time and interleaved on two partitions, with ticks; one lead may change partition."""
    per_lead: list[list[Item]] = []
    for n in range(3):
        lead = f"{LEAD}-{n}"
        shift = timedelta(minutes=draw(st.sampled_from([0, 30, 600, 2880])))
        journey, arrival = draw(deliveries())
        # In order, the replay engine settles the lead at the end; otherwise it hands the
        # lead to the live engine at its first late event.
        events = [as_lead(e, lead, shift) for e in (journey if draw(st.booleans()) else arrival)]
        moves_at = draw(st.integers(0, len(events))) if n == 0 else len(events)
        per_lead.append(
            [(n % 2 if i < moves_at else 1 - n % 2, lead, e) for i, e in enumerate(events)]
        )
    ticks = draw(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 60 * 24 * 20)), max_size=4))
    per_lead.append([(p, None, at(minutes)) for p, minutes in sorted(ticks, key=lambda t: t[1])])
    order = draw(st.permutations([n for n, items in enumerate(per_lead) for _ in items]))
    cursors = [0] * len(per_lead)
    out: list[Item] = []
    for n in order:
        out.append(per_lead[n][cursors[n]])
        cursors[n] += 1
    return out


@FAST
@given(streams(), st.sampled_from([1, 7, 1000]))
def test_the_replay_engine_ends_with_the_live_engines_rows_figures_facts_and_fact_count(
    items: list[Item], batch: int
) -> None:
    live, deferred = replayed(items, batch)
    assert deferred == live


def test_a_timer_stopped_by_an_event_behind_its_partitions_stream_time_keeps_its_breach() -> None:
    # Another lead moved the partition past lead A's deadline before A's (in-order) contact:
    # the live engine fired A's breach then, so the replay engine must report it too.
    a, b = f"{LEAD}-a", f"{LEAD}-b"
    items: list[Item] = [
        (0, a, created(a, at(0))),
        (0, a, moved(a, at(1), "lead", "mql")),
        (0, b, created(b, at(days=2))),
        (0, a, assigned(a, at(days=2, minutes=1), "rep-1")),
        (0, a, contacted(a, at(days=2, minutes=2))),
    ]
    live, deferred = replayed(items, 1000)
    assert deferred == live
    first_touch = [r for r in live[0].values() if r.timer.policy == "mql_first_touch"]
    assert first_touch
    assert "breached" in first_touch[0].emitted


@FAST
@given(streams(), st.sampled_from([1, 7, 1000]))
def test_the_final_values_are_the_sla_timer_values_of_the_final_rows_in_their_order(
    items: list[Item], batch: int
) -> None:
    rows, values = DeferredSlaEngine(RULES), DeferredSlaEngine(RULES)
    asyncio.run(drive(rows, items, batch, finish=False))
    asyncio.run(drive(values, items, batch, finish=False))
    write, final = rows.finish(), values.finish_values()
    assert final.values == [row_values(r, *write.figures[r.timer.key]) for r in write.rows]
    assert (final.facts, final.fired) == (write.facts, write.fired)
