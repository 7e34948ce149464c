"""Digests and row comparison done in PostgreSQL (``services.replay.tables``) agree with the
in-memory definitions (``services.replay.digest``) on rows that are awkward to compare."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

from services.replay import tables
from services.replay.digest import compare, table_digest
from services.replay.projections import Projection

T = Projection(table="t", columns=(), rows=lambda state: [], key=("k",))
LEFT = [
    ("a", "1", 1), ("a", "1", 1), ("b", None, 2), (None, "x", 3), ("q\"uote", "s p", 4),
    ("a ", "é", 5), ("c", "same", 6), ("d", "gone", 7),
]  # fmt: skip
RIGHT = [
    ("a", "1", 1), ("b", "now", 2), (None, "x", 3), (None, "y", 3), ("q\"uote", "s p", 4),
    ("a ", "e", 5), ("c", "same", 6), ("e", "new", 8),
]  # fmt: skip


async def _fill(conn: asyncpg.Connection, schema: str, rows: Sequence[tuple[object, ...]]) -> None:
    await conn.execute(f"CREATE SCHEMA {schema}")
    # updated_at is bookkeeping, left out of digests and comparisons (DIGEST_IGNORED).
    await conn.execute(f"CREATE TABLE {schema}.t (k text, v text, n int,"
                       " updated_at timestamptz DEFAULT clock_timestamp())")  # fmt: skip
    await conn.executemany(f"INSERT INTO {schema}.t (k, v, n) VALUES ($1, $2, $3)", rows)


def _text(rows: Sequence[tuple[object, ...]]) -> list[tuple[str | None, ...]]:
    return [tuple(None if v is None else str(v) for v in r) for r in rows]


@pytest.fixture
async def conn(fresh_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(fresh_dsn)
    yield connection
    await connection.close()


async def test_the_database_comparison_equals_the_in_memory_one_on_awkward_rows(
    conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tables, "CHUNK", 3)  # several cursor fetches per table
    await _fill(conn, "l", LEFT)
    await _fill(conn, "r", RIGHT)
    lefts, rights, diffs = await tables.compare_schemas(conn, "l", "r", [T], limit=3)
    expected = compare("t", ("k", "v", "n"), ("k",), _text(LEFT), _text(RIGHT), limit=3)
    assert diffs == [expected]
    # changed b and "a "; removed a (one of its two copies) and d; added None and e
    assert (expected.changed, expected.removed, expected.added) == (2, 2, 2)
    assert len(expected.changes) == 3
    assert lefts == [table_digest("t", _text(LEFT))]
    assert rights == [table_digest("t", _text(RIGHT))]
    assert await tables.digest_schema(conn, "l", [T]) == lefts


async def test_equal_tables_compare_equal_whatever_their_bookkeeping_columns(
    conn: asyncpg.Connection,
) -> None:
    await _fill(conn, "l", LEFT)
    await _fill(conn, "r", list(reversed(LEFT)))
    lefts, rights, diffs = await tables.compare_schemas(conn, "l", "r", [T])
    assert lefts == rights
    assert diffs[0].equal
    # Equal digests skip PostgreSQL's comparison: the result is what it would have given.
    columns = ["k", "v", "n"]
    assert diffs == [await tables.diff_tables(conn, "t", columns, T.key, "l", "r", 20)]


async def test_a_table_missing_on_one_side_compares_as_empty(conn: asyncpg.Connection) -> None:
    await _fill(conn, "l", LEFT)
    await conn.execute("CREATE SCHEMA r")
    lefts, rights, diffs = await tables.compare_schemas(conn, "l", "r", [T])
    assert rights == [table_digest("t", [])]
    assert lefts == [table_digest("t", _text(LEFT))]
    assert diffs == [compare("t", ("k", "v", "n"), ("k",), _text(LEFT), [])]
    _, _, back = await tables.compare_schemas(conn, "r", "l", [T])
    assert (back[0].added, back[0].removed) == (diffs[0].removed, 0)


async def test_tables_compare_one_after_another_inside_an_open_transaction(
    conn: asyncpg.Connection,
) -> None:
    await _fill(conn, "l", LEFT)
    await _fill(conn, "r", RIGHT)
    async with conn.transaction():
        _, _, diffs = await tables.compare_schemas(conn, "l", "r", [T, T])
    assert diffs[0] == diffs[1]
    assert not diffs[0].equal
