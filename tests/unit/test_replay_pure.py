"""The pure parts of replay: digests, row comparison, the as-of cut, schema names."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.codec import encode
from events.tick import TICK_HEADERS, encode_tick
from projections.sla import Timer
from projections.sla_emit import TimerRow
from services.processor.ports import BatchWrite
from services.processor.records import Checkpoint, Record
from services.processor.sla_engine import SlaWrite
from services.replay.cut import AsOfCut, record_time
from services.replay.digest import (
    DiffSample,
    changed_columns,
    compare,
    encode_row,
    kind_counts,
    overall_digest,
    table_digest,
)
from services.replay.engine import no_cycle_collection
from services.replay.memory import MemoryStore
from services.replay.schema import BadSchemaName, check_name, default_name
from services.replay.sources import ArchiveSource
from tests.unit.factories import created

T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)


def rec(
    partition: int, offset: int, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()
) -> Record:
    return Record("t", partition, offset, b"L-1", value, 0, headers)


def event_at(minutes: int, partition: int = 0, offset: int = 0) -> Record:
    return rec(partition, offset, encode(created("L-1", T0 + timedelta(minutes=minutes))))


def test_a_table_digest_does_not_depend_on_row_order() -> None:
    rows = [("a", "1"), ("b", None), ("c", "3")]
    assert table_digest("t", rows) == table_digest("t", list(reversed(rows)))


def test_a_table_digest_changes_with_any_value_and_tells_null_from_the_text_null() -> None:
    base = table_digest("t", [("a", None)])
    assert table_digest("t", [("a", "NULL")]).digest != base.digest
    assert table_digest("t", [("a", "")]).digest != base.digest


def test_the_overall_digest_covers_names_and_counts_in_any_table_order() -> None:
    a, b = table_digest("a", [("1",)]), table_digest("b", [])
    assert overall_digest([a, b]) == overall_digest([b, a])
    assert overall_digest([a, b]) != overall_digest([a, table_digest("c", [])])


def test_compare_reports_changed_added_and_removed_rows_by_key() -> None:
    cols = ("lead_id", "stage", "owner")
    live = [("L-1", "mql", "ann"), ("L-2", "sql", None), ("L-3", "lead", None)]
    rebuilt = [("L-1", "mql", "bob"), ("L-3", "lead", None), ("L-4", "mql", None)]
    diff = compare("lead_current", cols, ("lead_id",), live, rebuilt)
    assert (diff.changed, diff.removed, diff.added) == (1, 1, 1)
    kinds = {c.key: c.kind for c in diff.changes}
    assert kinds == {("L-1",): "changed", ("L-2",): "removed", ("L-4",): "added"}
    change = next(c for c in diff.changes if c.kind == "changed")
    assert changed_columns(cols, change.before[0], change.after[0]) == ["owner"]


def test_compare_counts_duplicate_rows_as_a_multiset() -> None:
    diff = compare("t", ("k", "v"), ("k",), [("a", "1"), ("a", "1")], [("a", "1")])
    assert not diff.equal
    assert diff.changes[0].before == (("a", "1"),)


def test_compare_lists_at_most_limit_changes_but_counts_all() -> None:
    live = [(str(i), "x") for i in range(50)]
    diff = compare("t", ("k", "v"), ("k",), live, [], limit=5)
    assert diff.removed == 50
    assert len(diff.changes) == 5


def test_equal_tables_compare_equal() -> None:
    rows = [("a", "1"), ("b", "2")]
    assert compare("t", ("k", "v"), ("k",), rows, list(reversed(rows))).equal


def test_the_cut_stops_a_partition_at_its_first_record_after_the_instant() -> None:
    cut = AsOfCut(T0)
    kept = cut.keep([event_at(-5, 0, 0), event_at(5, 0, 1), event_at(-1, 0, 2), event_at(0, 1, 0)])
    # Partition 0 stops at offset 1, so its late offset 2 is out; an event at T itself is in.
    assert [(r.partition, r.offset) for r in kept] == [(0, 0), (1, 0)]
    assert cut.dropped == 2
    assert cut.keep([event_at(-10, 0, 3)]) == []


def test_the_cut_applies_to_ticks_by_the_time_they_claim() -> None:
    cut = AsOfCut(T0)
    early = rec(0, 0, encode_tick(T0 - timedelta(hours=1), "t"), tuple(TICK_HEADERS))
    late = rec(1, 0, encode_tick(T0 + timedelta(hours=1), "t"), tuple(TICK_HEADERS))
    assert cut.keep([early, late]) == [early]


def test_records_without_a_readable_time_stay_in_before_the_cut() -> None:
    garbage = rec(0, 0, b"{not json")
    naive = rec(0, 1, b'{"time": "2026-10-01T13:00:00"}')
    assert record_time(garbage) is None
    assert record_time(naive) is None
    assert AsOfCut(T0).keep([garbage, naive]) == [garbage, naive]


def test_replay_schema_names_are_plain_identifiers_and_never_the_live_schema() -> None:
    assert check_name("sandbox") == "sandbox"
    assert default_name(T0) == "replay_20261001_120000"
    for bad in ("public", "live", "Sandbox", "a-b", "pg_x", "x; drop table y"):
        with pytest.raises(BadSchemaName):
            check_name(bad)
    assert check_name("live", allow_live=True) == "public"


def _row(lead: str, policy: str, partition: int, stopped: bool) -> TimerRow:
    timer = Timer(
        lead_id=lead, policy=policy, cycle=f"{lead}-c", started_at=T0,
        warn_at=T0 + timedelta(minutes=45), deadline=T0 + timedelta(hours=1), escalate_at=(),
        stopped_at=T0 if stopped else None, outcome="met" if stopped else None,
        stop_reason=None, stop_event_id=None, owner_id=None, team=None, assigned_at=None,
    )  # fmt: skip
    return TimerRow(timer, partition, frozenset({"started"}))


async def test_the_replay_store_gives_back_committed_timer_rows_per_lead_and_partition() -> None:
    store = MemoryStore()
    rows = [_row("L-1", "a", 0, False), _row("L-1", "b", 0, True), _row("L-2", "a", 1, False)]
    sla = SlaWrite(rows=rows, figures={r.timer.key: (3600.0, None) for r in rows}, fired=4)
    await store.commit(BatchWrite("t", [], [], [], {0: Checkpoint(9, T0)}, sla), {0: None})
    got = await store.load_timers(["L-1", "L-3"])
    assert set(got) == {"L-1"}
    assert sorted(r.timer.policy for r in got["L-1"]) == ["a", "b"]
    pending = await store.load_pending([0])
    assert [(r.timer.lead_id, r.timer.policy) for r in pending] == [("L-1", "a")]
    assert await store.load_checkpoints("t", [0, 1]) == {0: Checkpoint(9, T0)}
    assert store.state.derived == 4


def test_the_cycle_collector_is_paused_during_a_replay_and_back_after_it_even_on_error() -> None:
    assert gc.isenabled()
    seen = []

    def broken_replay() -> None:
        with no_cycle_collection():
            seen.append(gc.isenabled())
            raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError):
        broken_replay()
    assert seen == [False]
    assert gc.isenabled()


def test_a_replay_started_with_the_collector_off_leaves_it_off() -> None:
    gc.disable()
    try:
        with no_cycle_collection():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@given(st.permutations(list(range(12))))
def test_the_diff_sample_keeps_the_same_first_keys_whatever_order_rows_stream_in(
    order: list[int],
) -> None:
    rows = [(i % 2, (f"k{i % 6}", str(i))) for i in range(12)]
    sample = DiffSample([0], limit=3)
    for i in order:
        sample.add(*rows[i])
    changes = sample.changes()
    assert [c.key for c in changes] == [("k0",), ("k1",), ("k2",)]
    assert changes[0].before == (("k0", "0"), ("k0", "6"))
    assert changes[1].after == (("k1", "1"), ("k1", "7"))


def test_kind_counts_name_a_key_on_both_sides_changed() -> None:
    keys = [(("a",), 0), (("a",), 1), (("b",), 0), (("b",), 0), (("c",), 1)]
    assert kind_counts(keys) == (1, 1, 1)


def test_an_encoded_row_holds_little_more_memory_than_its_bytes() -> None:
    row = ("L-000001", "3", "mql", "marketing", "2026-10-01 12:00:00+00", None)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [encode_row(row) for _ in range(1000)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # orjson's own output would hold its ~4 KB working buffer per row (events/json_bytes.py).
    assert held < 1000 * (len(kept[0]) + 200)


def test_a_canonical_archive_record_holds_little_more_memory_than_its_value() -> None:
    source = ArchiveSource("postgresql://unused", "lead-events", "test", 100, canonical=True)
    row = {
        "payload": '{"type": "lead.created", "id": "e-1", "subject": "L-000001"}',
        "raw": None, "hk": None, "hv": None, "key": b"L-000001", "p": 0, "o": 7, "ts": 1,
    }  # fmt: skip
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [source._record(row) for _ in range(1000)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept[0].value == b'{"id":"e-1","subject":"L-000001","type":"lead.created"}'
    # The Record, its key and value: a few hundred bytes, not orjson's 4 KB buffer each.
    assert held < 1000 * 600
