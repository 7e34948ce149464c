"""The drain loop's conversion of aiokafka's records into the processor's Records."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from services.processor.faust_batches import _records
from services.processor.records import Record


def consumer_record(
    offset: int,
    value: bytes | None,
    headers: tuple[tuple[str, bytes | None], ...] = (),
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        "events", 2, offset, 1_700_000_000_123, 0, b"L-1", value, None, 3, 5, headers
    )


def test_a_fetched_record_keeps_its_coordinates_key_value_and_broker_timestamp() -> None:
    (record,) = _records("events", 2, [consumer_record(41, b"hello")])
    assert record == Record("events", 2, 41, b"L-1", b"hello", 1_700_000_000_123, ())


def test_a_tombstone_value_becomes_empty_bytes_and_a_header_without_value_an_empty_one() -> None:
    (record,) = _records("events", 2, [consumer_record(7, None, (("a", b"1"), ("b", None)))])
    assert record.value == b""
    assert record.headers == (("a", b"1"), ("b", b""))


def test_a_partition_fetch_is_converted_in_offset_order() -> None:
    records = _records("events", 2, [consumer_record(o, b"v") for o in (3, 4, 5)])
    assert [r.offset for r in records] == [3, 4, 5]
