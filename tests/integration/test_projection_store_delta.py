"""The store's delta writes leave exactly the rows a full rewrite of every changed lead does.

Events of a few leads arrive in a shuffled order (late events split stays, a late move before
``lead.created`` makes its stay and handoff disappear) and in batches of random sizes. After
each commit through the delta path the tables must hold the rows of the folded states; at the
end, a full rewrite of every lead must not change one row.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import asyncpg

from events.envelope import Event
from projections.lead import Applied, LeadState, apply, empty
from services.processor.ports import BatchWrite
from services.processor.records import Checkpoint, Record
from services.store.migrate import migrate
from services.store.projection_store import (
    LEAD_COLUMNS,
    PostgresProjectionStore,
    handoff_rows,
    lead_row,
    stage_rows,
)
from tests.unit.factories import (
    FUNNEL,
    assigned,
    at,
    contacted,
    created,
    disqualified,
    moved,
    recycled,
    touched,
)


def _pool(lead: str) -> list[Event]:
    """A lead's events, some of which sort before others whatever order they arrive in."""
    return [
        created(lead, at(5), "mql"),
        contacted(lead, at(6)),
        moved(lead, at(1), "lead", "mql"),
        moved(lead, at(2), "mql", "sal"),
        moved(lead, at(8), "mql", "sal"),
        assigned(lead, at(7)),
        touched(lead, at(3)),
        moved(lead, at(9), "sal", "sql"),
        disqualified(lead, at(12), "sql", "no_budget"),
        recycled(lead, at(14), "disqualified"),
        moved(lead, at(16), "recycled", "mql"),
        contacted(lead, at(18), "rep-2"),
        created(lead, at(0.5), "lead", id=f"{lead}/early-created"),
    ]


async def _table(conn: asyncpg.Connection, table: str) -> list[tuple[Any, ...]]:
    rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY lead_id, seq")
    return [tuple(r.values()) for r in rows]


async def _snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    cols = ", ".join(LEAD_COLUMNS)
    leads = await conn.fetch(f"SELECT {cols} FROM lead_current ORDER BY lead_id")
    return {
        "lead_current": [tuple(r.values()) for r in leads],
        "lead_stage_history": await _table(conn, "lead_stage_history"),
        "lead_handoff": await _table(conn, "lead_handoff"),
    }


def _expected(states: Sequence[LeadState]) -> dict[str, list[tuple[Any, ...]]]:
    ordered = sorted(states, key=lambda s: s.lead_id)
    return {
        "lead_current": [lead_row(s) for s in ordered],
        "lead_stage_history": stage_rows(ordered),
        "lead_handoff": handoff_rows(ordered),
    }


async def test_delta_writes_leave_the_rows_a_full_rewrite_leaves(fresh_dsn: str) -> None:
    conn = await asyncpg.connect(fresh_dsn)
    await migrate(conn)
    pool = await asyncpg.create_pool(fresh_dsn, min_size=1, max_size=2)
    store = PostgresProjectionStore(pool, "delta-test")
    states: dict[str, LeadState] = {}
    offset = -1
    shrunk = split = 0
    try:
        for seed in range(12):
            rng = random.Random(seed)
            leads = [f"L{seed}-{n}" for n in range(3)]
            arrivals = [e for lead in leads for e in _pool(lead) if rng.random() < 0.85]
            rng.shuffle(arrivals)
            while arrivals:
                size = rng.randint(1, 6)
                batch, arrivals = arrivals[:size], arrivals[size:]
                before = {e.subject: states.get(e.subject, empty(e.subject)) for e in batch}
                changed: dict[str, LeadState] = {}
                accepted: list[tuple[Record, Event]] = []
                for event in batch:
                    result = apply(states.get(event.subject, empty(event.subject)), event, FUNNEL)
                    if isinstance(result, Applied):
                        old = states.get(event.subject, empty(event.subject)).view
                        new = result.state.view
                        shrunk += len(new.stages) < len(old.stages)
                        shrunk += len(new.handoffs) < len(old.handoffs)
                        split += result.out_of_order
                        states[event.subject] = changed[event.subject] = result.state
                        offset += 1
                        accepted.append((Record("t", 0, offset, None, b"", 0), event))
                if not accepted:
                    continue
                # One lead per batch goes without a ``before`` entry: the full-rewrite path.
                if rng.random() < 0.3:
                    before.pop(rng.choice(list(changed)), None)
                await store.commit(
                    BatchWrite(
                        "t",
                        accepted,
                        list(changed.values()),
                        [],
                        {0: Checkpoint(offset, None)},
                        before=before,
                    ),
                    {0: offset - len(accepted) if offset >= len(accepted) else None},
                )
                assert await _snapshot(conn) == _expected(list(states.values()))
        # The scenarios did exercise late splits and disappearing stays and handoffs.
        assert shrunk > 0
        assert split > 0
        delta = await _snapshot(conn)
        await store.commit(
            BatchWrite("t", [], list(states.values()), [], {0: Checkpoint(offset + 1, None)}),
            {0: offset},
        )
        assert await _snapshot(conn) == delta
    finally:
        await pool.close()
        await conn.close()
