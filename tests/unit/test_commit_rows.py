"""The rows ``PostgresProjectionStore`` sends ``commit_batch`` (007), without a database."""

from __future__ import annotations

import orjson
import pytest

from events.codec import encode, to_obj
from events.envelope import Event
from services.processor.records import Record
from services.store.projection_store import ARCHIVE_COLUMNS, archive_row

from .factories import one_of_each


def _record(headers: tuple[tuple[str, bytes], ...] = ()) -> Record:
    return Record("leads", 1, 7, b"L1", b"{}", 1_700_000_000_000, headers)


@pytest.mark.parametrize("event", one_of_each(), ids=lambda e: e.type)
def test_the_archived_payload_is_the_same_json_value_as_the_canonical_encoding(
    event: Event,
) -> None:
    # jsonb keeps the parsed value (key order and spacing go, but 1 and 1.0 stay apart), so
    # the payload must parse to exactly what the canonical bytes parse to.
    odd = event.model_copy(update={"id": '\u00e9\x1f"\\ \U0001f600', "dataschema": None})
    for e in (event, odd):
        payload = archive_row(_record(), e)[ARCHIVE_COLUMNS.index("payload")]
        assert orjson.dumps(orjson.loads(payload), option=orjson.OPT_SORT_KEYS) == encode(e)
        assert orjson.loads(payload) == to_obj(e)


def test_a_record_without_headers_leaves_the_header_columns_to_their_default() -> None:
    row = archive_row(_record(), one_of_each()[0])
    assert len(row) == len(ARCHIVE_COLUMNS)
    assert row[-2:] == (None, None)


def test_a_record_with_headers_archives_their_keys_and_values_in_order() -> None:
    row = archive_row(_record((("b", b"2"), ("a", b"1"))), one_of_each()[0])
    assert row[-2:] == (["b", "a"], [b"2", b"1"])
