"""The read models a replay rebuilds, registered explicitly in one table.

Each entry says which table it is, which columns the replay COPYs, how to get those rows
from the replay's final state, and how ``--verify`` and ``leadledger diff`` identify a row.
A projection added later (a new read model with its migration) is one more line in
``PROJECTIONS``, plus what fills it in ``ReplayState``.

Digests and comparisons read every column of the table except ``DIGEST_IGNORED``: bookkeeping
times (when a row was written says nothing about the history) and positions in the Kafka log
(the same history republished with another partition count must give the same digest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from services.replay import binary_copy as bc
from services.replay.memory import ReplayState
from services.replay.stage_copy import STAGE_ENCODERS, stage_copy_rows
from services.store import closed_loop_rows, sla_rows
from services.store.projection_store import (
    HANDOFF_COLUMNS,
    LEAD_COLUMNS,
    REJECTED_COLUMNS,
    STAGE_COLUMNS,
    rejected_row,
)

Rows = Callable[[ReplayState], Iterable[tuple[Any, ...]]]

#: Left out of digests and row comparisons (see the module doc).
DIGEST_IGNORED = frozenset({
    "updated_at", "archived_at", "rejected_at", "kafka_topic", "kafka_partition",
    "kafka_offset", "kafka_timestamp_ms", "kafka_key", "kafka_header_keys",
    "kafka_header_values",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Projection:
    """One read model: its table, the columns a replay writes, and its row identity."""

    table: str
    columns: tuple[str, ...]
    rows: Rows
    #: what names a row in a diff ("lead L-1 changed"); need not be unique
    key: tuple[str, ...]
    #: per column, its binary COPY encoder (``services.replay.binary_copy``), for a table the
    #: replay encodes itself; None: asyncpg's ``copy_records_to_table`` encodes the rows
    encoders: Callable[[], tuple[bc.Encoder, ...]] | None = None
    #: the rows as the binary COPY bytes of ``encoders``, built straight from the state (the
    #: write uses it instead of ``rows`` and ``encoders``; ``rows`` stays for digests)
    encoded: Callable[[ReplayState], Iterable[bytes]] | None = None


def _leads(state: ReplayState) -> Iterable[tuple[Any, ...]]:
    return state.lead_rows()


def _stages(state: ReplayState) -> Iterable[tuple[Any, ...]]:
    return state.stage_rows()


def _handoffs(state: ReplayState) -> Iterable[tuple[Any, ...]]:
    return state.handoff_rows()


def _timers(state: ReplayState) -> Iterable[tuple[Any, ...]]:
    figures = state.figures
    yield from (sla_rows.row_values(r, *figures[k]) for k, r in state.timers.items())
    yield from state.timer_values


def _facts(state: ReplayState) -> Iterable[tuple[Any, ...]]:
    return (sla_rows.fact_values(f) for facts in state.facts.values() for f in facts)


def _rejected(state: ReplayState) -> Iterable[tuple[Any, ...]]:
    return (rejected_row(x) for x in state.rejected)


def _identities(state: ReplayState) -> Iterable[tuple[Any, ...]]:
    return (closed_loop_rows.identity_row(h) for hs in state.identities.values()
            for h in hs.values())  # fmt: skip


def _duplicates(state: ReplayState) -> Iterable[tuple[Any, ...]]:
    return (closed_loop_rows.duplicate_row(p) for p in state.pairs.values())


def _suppressions(state: ReplayState) -> Iterable[tuple[Any, ...]]:
    return (closed_loop_rows.suppression_row(x) for x in state.suppressed.values())


def _credits(state: ReplayState) -> Iterable[tuple[Any, ...]]:
    return state.credits


def _lead_encoders() -> tuple[bc.Encoder, ...]:
    """``lead_current``'s column types (001_read_models.sql), in ``LEAD_COLUMNS`` order."""
    t, ts = bc.text, bc.timestamptz
    # Stages, teams and the handoff action are the funnel's names: each encoded once.
    stage, team, action = bc.TextMemo(), bc.TextMemo(), bc.TextMemo()
    return (t, stage, team, stage, t, team, ts, ts, ts, ts, bc.int4, t, ts, action, bc.float8)


def _timer_encoders() -> tuple[bc.Encoder, ...]:
    """``sla_timer``'s column types (002_sla.sql), in ``sla_rows.COLUMNS`` order."""
    t, ts = bc.text, bc.timestamptz
    # Policy, outcome and status are names from the configuration: each encoded once.
    policy, outcome, status = bc.TextMemo(), bc.TextMemo(), bc.TextMemo()
    return (
        t, policy, t, bc.int4, ts, ts, ts, bc.timestamptz_array, ts, outcome, t, t, t, t, ts,
        bc.float8, bc.float8, status, bc.text_array_memo(), ts,
    )  # fmt: skip


CREDIT_COLUMNS = (
    "model", "model_version", "deal_id", "lead_id", "touch_event_id", "campaign_id", "channel",
    "positions", "status", "currency", "share", "amount",
)  # fmt: skip

PROJECTIONS: tuple[Projection, ...] = (
    # lead_current's six timestamps cost asyncpg's encoder more than binary_copy's (measured
    # at 200,000 events: 0.16 -> 0.125 s of CPU); the stage history is built straight into
    # COPY bytes (services.replay.stage_copy); lead_handoff encodes as fast either way.
    Projection("lead_current", LEAD_COLUMNS, _leads, ("lead_id",), _lead_encoders),
    Projection("lead_stage_history", STAGE_COLUMNS, _stages, ("lead_id", "seq"),
               lambda: STAGE_ENCODERS, stage_copy_rows),
    Projection("lead_handoff", HANDOFF_COLUMNS, _handoffs, ("lead_id", "seq")),
    Projection("sla_timer", sla_rows.COLUMNS, _timers, ("lead_id", "policy", "cycle_id"),
               _timer_encoders),
    Projection("sla_volume_fact", sla_rows.FACT_COLUMNS, _facts, ("lead_id", "event_id", "kind")),
    Projection("rejected_event", REJECTED_COLUMNS, _rejected, ("lead_id", "event_id", "reason")),
    Projection("lead_identity", closed_loop_rows.IDENTITY_COLUMNS, _identities,
               ("email_key", "lead_id")),
    Projection("lead_duplicate", closed_loop_rows.DUPLICATE_COLUMNS, _duplicates,
               ("original_id", "duplicate_id")),
    Projection("handoff_suppression", closed_loop_rows.SUPPRESSION_COLUMNS, _suppressions,
               ("lead_id", "event_id")),
    Projection("attribution_credit", CREDIT_COLUMNS, _credits,
               ("model", "deal_id", "touch_event_id")),
)  # fmt: skip

#: Projections the live processor maintains, which ``--verify`` compares. Credit is
#: recomputed by the live reports instead of stored (see 005_replay.sql).
VERIFIED: tuple[Projection, ...] = tuple(p for p in PROJECTIONS if p.table != "attribution_credit")


def by_table(name: str) -> Projection:
    """The registered projection of ``name``; KeyError lists the known ones."""
    for p in PROJECTIONS:
        if p.table == name:
            return p
    raise KeyError(f"no projection {name!r}; known: {', '.join(p.table for p in PROJECTIONS)}")
