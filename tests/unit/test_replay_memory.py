"""The replay's in-memory store: packed leads, the lazy timer index, and the COPY count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from projections.lead import fold
from projections.sla import Timer
from projections.sla_emit import TimerRow
from services.processor.ports import BatchWrite
from services.processor.records import Checkpoint, Record
from services.processor.sla_engine import SlaWrite
from services.replay.memory import MemoryStore, PackedLead
from services.replay.writer import _copied
from tests.unit.factories import FUNNEL, at, created, moved, touched

T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)


def _row(lead: str, policy: str) -> TimerRow:
    timer = Timer(
        lead_id=lead, policy=policy, cycle=f"{lead}-c", started_at=T0,
        warn_at=T0 + timedelta(minutes=45), deadline=T0 + timedelta(hours=1), escalate_at=(),
        stopped_at=None, outcome=None, stop_reason=None, stop_event_id=None, owner_id=None,
        team=None, assigned_at=None,
    )  # fmt: skip
    return TimerRow(timer, 0, frozenset({"started"}))


def _batch(offset: int, rows: list[TimerRow]) -> BatchWrite:
    sla = SlaWrite(rows=rows, figures={r.timer.key: (3600.0, None) for r in rows})
    return BatchWrite("t", [], [], [], {0: Checkpoint(offset, T0)}, sla)


def test_a_packed_lead_gives_back_its_history_even_with_newlines_inside_its_events() -> None:
    # The packed events are joined by a newline: one inside a value must not split them.
    history = [
        touched("L-1", at(0)),
        created("L-1", at(1)),
        moved("L-1", at(2), "lead", "mql", reason="line one\nline two\r\n"),
    ]
    state = fold("L-1", history, FUNNEL)
    packed = PackedLead.of(state)
    assert packed.history() == list(state.events)
    assert packed.unpack("L-1", FUNNEL) == state


async def test_timer_rows_committed_after_the_first_question_are_found_by_lead() -> None:
    store = MemoryStore()
    await store.commit(_batch(0, [_row("L-1", "a")]), {0: None})
    first = await store.load_timers(["L-1", "L-2"])
    assert [r.timer.policy for r in first["L-1"]] == ["a"]
    assert "L-2" not in first
    # The index now exists and must follow later commits (a new row and a changed one).
    changed = TimerRow(_row("L-1", "a").timer, 0, frozenset({"started", "warned"}))
    await store.commit(_batch(1, [changed, _row("L-1", "b"), _row("L-2", "a")]), {0: 0})
    later = await store.load_timers(["L-1", "L-2"])
    assert sorted((r.timer.policy, sorted(r.emitted)) for r in later["L-1"]) == [
        ("a", ["started", "warned"]),
        ("b", ["started"]),
    ]
    assert [r.timer.policy for r in later["L-2"]] == ["a"]
    assert len(store.state.timers) == 3


async def test_a_store_built_over_existing_state_indexes_its_timers() -> None:
    seeded = MemoryStore()
    await seeded.commit(_batch(0, [_row("L-1", "a"), _row("L-2", "a")]), {0: None})
    again = MemoryStore(seeded.state)
    assert sorted(await again.load_timers(["L-1", "L-2"])) == ["L-1", "L-2"]


async def test_existing_ids_are_the_accepted_ones_among_those_asked() -> None:
    store = MemoryStore()
    event = created("L-1", at(1))
    record = Record("t", 0, 0, b"L-1", b"{}", 0)
    await store.commit(BatchWrite("t", [(record, event)], [], [], {0: Checkpoint(0, T0)}), {})
    assert await store.existing_ids([event.id, "other"]) == {event.id}
    assert await store.existing_ids([]) == set()
    assert store.state.accepted == 1


def test_the_row_count_of_a_copy_is_read_from_its_command_tag() -> None:
    assert _copied("COPY 0") == 0
    assert _copied("COPY 200004") == 200_004
    with pytest.raises(ValueError, match="unexpected COPY status"):
        _copied("INSERT 0 1")


async def test_the_leads_committed_least_recently_are_the_ones_packed() -> None:
    store = MemoryStore(keep_leads=2)
    leads = {lid: fold(lid, [created(lid, at(i))], FUNNEL) for i, lid in enumerate("ABC")}

    async def commit(offset: int, *lead_ids: str) -> None:
        batch = BatchWrite("t", [], [leads[x] for x in lead_ids], [], {0: Checkpoint(offset, T0)})
        await store.commit(batch, {})

    await commit(0, "A", "B")
    await commit(1, "A")  # B is now the least recently committed
    await commit(2, "C")
    assert list(store.state.leads) == ["A", "C"]
    assert list(store.state.packed) == ["B"]
    await commit(3, "B")  # unpacked by the pipeline, committed again: A goes
    assert list(store.state.leads) == ["C", "B"]
    assert list(store.state.packed) == ["A"]
