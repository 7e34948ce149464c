"""``lead_stage_history`` in binary COPY format, built straight from the leads' stays.

The table has one row per event, so its COPY is the replay's largest after ``sla_timer``.
Through asyncpg it cost ~2.3 us a row (``copy_records_to_table`` on a row tuple per stay),
and through ``binary_copy.row_encoder`` on the same tuples a little more: the values are
mostly text. Here no row tuple is built: a lead's id is encoded once for all its stays, the
stage, team and previous stage (names from the funnel, a handful in all) once per
replay, and the sequence numbers once per position. The bytes are those of
``row_encoder(STAGE_ENCODERS)`` applied to ``projection_store.stage_rows`` (a unit test
compares them row by row); packed leads, whose rows are tuples already, go through that.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from projections.lead import LeadState
from services.replay import binary_copy as bc
from services.replay.memory import ReplayState

#: ``lead_stage_history``'s column types (001_read_models.sql), in ``STAGE_COLUMNS`` order
STAGE_ENCODERS: tuple[bc.Encoder, ...] = (
    bc.text, bc.int4, bc.text, bc.text, bc.timestamptz, bc.timestamptz, bc.float8, bc.text,
    bc.text, bc.text,
)  # fmt: skip

_COUNT = struct.pack(">h", len(STAGE_ENCODERS))
# Module names, not ``bc.`` attribute reads, in the loop below (one row per event).
_NULL, _EPOCH, _int8, _float8 = bc.NULL, bc.EPOCH, bc.pack_int8, bc.pack_float8


def stage_copy_rows(state: ReplayState) -> Iterator[bytes]:
    """Every ``lead_stage_history`` row of ``state`` as binary COPY bytes, in the order of
    ``ReplayState.stage_rows``."""
    yield from _encoded(state.leads.values())
    encode = bc.row_encoder(STAGE_ENCODERS)
    for p in state.packed.values():
        yield from map(encode, p.stages)


def _encoded(leads: Iterable[LeadState]) -> Iterator[bytes]:
    # Stage, team and previous stage are the funnel's names: few, so each is encoded once.
    # ``reason`` may be free text and ``entered_via`` names the event, so those are encoded
    # each time (a memo of them would grow by a row each).
    names: dict[str | None, bytes] = {None: _NULL}
    seqs: list[bytes] = []
    text, join = bc.text, b"".join
    for s in leads:
        head = _COUNT + text(s.lead_id)
        for i, sp in enumerate(s.view.stages):
            if i == len(seqs):
                seqs.append(bc.int4(i))
            stage, team, via, prev = sp.stage, sp.team, sp.entered_via, sp.from_stage
            d = sp.entered_at - _EPOCH
            exited, seconds, reason = sp.exited_at, sp.seconds, sp.reason
            if exited is None:
                ex = _NULL
            else:
                e = exited - _EPOCH
                ex = _int8(8, (e.days * 86400 + e.seconds) * 1000000 + e.microseconds)
            yield join((
                head, seqs[i],
                names.get(stage) or names.setdefault(stage, text(stage)),
                names.get(team) or names.setdefault(team, text(team)),
                _int8(8, (d.days * 86400 + d.seconds) * 1000000 + d.microseconds),
                ex,
                _NULL if seconds is None else _float8(8, seconds),
                names.get(prev) or names.setdefault(prev, text(prev)),  # type: ignore[arg-type]
                _NULL if reason is None else text(reason),
                text(via),
            ))  # fmt: skip
