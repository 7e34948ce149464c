"""The replay's shortcuts in binary COPY encoding write the bytes of the plain encoders."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

from services.replay import binary_copy as bc
from services.replay.projections import by_table


def test_a_memoised_text_column_writes_each_value_as_text_writes_it() -> None:
    memo = bc.TextMemo()
    encode = bc.row_encoder([bc.text, memo, memo])
    plain = bc.row_encoder([bc.text, bc.text, bc.text])
    rows = [("L-1", "mql", None), ("L-2", "mql", "sql"), ("L-3", "ü", "mql"), ("L-4", "", "")]
    assert [encode(r) for r in rows] == [plain(r) for r in rows]
    assert set(memo.seen) == {"mql", "sql", "ü", ""}
    assert memo("sql") == bc.text("sql")


def test_an_empty_timestamp_array_is_the_array_of_no_elements() -> None:
    body = struct.pack(">iii", 0, 0, 1184)
    assert bc.timestamptz_array(()) == bc.timestamptz_array([]) == struct.pack(">i", 12) + body
    at = datetime(2026, 1, 2, tzinfo=UTC)
    one = struct.pack(">iiiii", 1, 0, 1184, 1, 1) + bc.timestamptz(at)
    assert bc.timestamptz_array([at]) == struct.pack(">i", len(one)) + one


def test_the_lead_and_timer_tables_memoise_only_name_columns() -> None:
    for table, names in (
        ("lead_current", {"current_stage", "current_team", "highest_stage", "owner_team",
                          "handoff_action"}),
        ("sla_timer", {"policy", "outcome", "status"}),
    ):  # fmt: skip
        p = by_table(table)
        assert p.encoders is not None
        encoders = p.encoders()
        memoised = {
            c for c, e in zip(p.columns, encoders, strict=True) if isinstance(e, bc.TextMemo)
        }
        assert memoised == names
