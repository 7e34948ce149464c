"""The stage history's COPY bytes are the binary encoding of its rows, row for row."""

from __future__ import annotations

from services.replay.binary_copy import row_encoder
from services.replay.stage_copy import STAGE_ENCODERS, stage_copy_rows
from tests.unit.test_replay_packing import fold


def test_each_stage_row_is_encoded_as_the_row_encoder_encodes_its_tuple() -> None:
    encode = row_encoder(STAGE_ENCODERS)
    for keep_leads in (1 << 62, 2):  # every lead unpacked; most of them packed
        state = fold(keep_leads=keep_leads, batch_size=3).state
        rows = list(state.stage_rows())
        assert any(r[5] is None for r in rows)
        assert any(r[5] is not None for r in rows)
        assert any(r[7] is None for r in rows)
        assert any(r[7] is not None for r in rows)
        assert [encode(r) for r in rows] == list(stage_copy_rows(state))


def test_free_text_reasons_and_names_seen_on_many_rows_encode_as_their_own_values() -> None:
    encode = row_encoder(STAGE_ENCODERS)
    state = fold(keep_leads=1 << 62, batch_size=5).state
    rows = list(state.stage_rows())
    assert len({r[8] for r in rows if r[8] is not None}) > 1, "several reasons"
    assert len({r[2] for r in rows}) < len(rows), "stage names repeat across rows"
    assert len({r[9] for r in rows}) == len(rows), "each stay entered by its own event"
    assert [encode(r) for r in rows] == list(stage_copy_rows(state))
