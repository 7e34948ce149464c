"""Reading registered projections out of a schema, for digests, ``--verify`` and ``diff``.

Nothing here holds a whole table in memory, on either side: rows stream through a
server-side cursor, a digest keeps only each row's encoded bytes (it must sort them), and a
comparison lets PostgreSQL find the differing rows (``EXCEPT ALL``, which spills to disk past
``work_mem``) and brings back only the counts and the first ``limit`` differing keys. At a
million events the tables are millions of rows; read whole, both sides at once, they took
gigabytes.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Mapping, Sequence

import asyncpg

from services.replay.digest import (
    DiffSample,
    TableDiff,
    TableDigest,
    encode_row,
    encoded_digest,
)
from services.replay.projections import DIGEST_IGNORED, Projection

#: rows per cursor fetch
CHUNK = 10_000
_CALLS = itertools.count()


async def compared_columns(conn: asyncpg.Connection, schema: str, table: str) -> list[str]:
    """The table's columns in ``schema``, in table order, without the ignored ones; empty when
    the table does not exist there."""
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        schema,
        table,
    )
    return [r["column_name"] for r in rows if r["column_name"] not in DIGEST_IGNORED]


def _select(columns: Sequence[str]) -> str:
    # As PostgreSQL prints them, so that a timestamp, a double or an array compares exactly
    # as stored (services.replay.digest).
    return ", ".join(f'"{c}"::text AS "{c}"' for c in columns)


def _names(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


async def _chunks(conn: asyncpg.Connection, sql: str) -> AsyncIterator[list[asyncpg.Record]]:
    """The query's rows, ``CHUNK`` at a time (a cursor needs a transaction)."""
    async with conn.transaction():
        cursor = await conn.cursor(sql)
        while rows := await cursor.fetch(CHUNK):
            yield rows


async def table_digest_of(
    conn: asyncpg.Connection, schema: str, table: str, columns: Sequence[str]
) -> TableDigest:
    """The digest of ``schema.table`` over ``columns`` (no columns: the table is missing, and
    digests empty)."""
    encoded: list[bytes] = []
    if columns:
        sql = f'SELECT {_select(columns)} FROM "{schema}"."{table}"'
        async for rows in _chunks(conn, sql):
            encoded.extend(encode_row(r) for r in rows)
    return encoded_digest(table, encoded)


async def digest_schema(
    conn: asyncpg.Connection, schema: str, projections: Sequence[Projection]
) -> list[TableDigest]:
    """The digest of each projection's table in ``schema`` (a missing table digests empty)."""
    out = []
    for p in projections:
        columns = await compared_columns(conn, schema, p.table)
        out.append(await table_digest_of(conn, schema, p.table, columns))
    return out


async def diff_tables(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    left: str | None,
    right: str | None,
    limit: int,
) -> TableDiff:
    """``services.replay.digest.compare`` of ``left.table`` and ``right.table`` (a schema of
    None: the table is missing there, and compares as empty), done in PostgreSQL."""
    _check_key(table, columns, key)
    sel, cols, keys = _select(columns), _names(columns), _names(key)
    sources = [f'SELECT {sel} FROM "{s}"."{table}"' if s else None for s in (left, right)]
    n = next(_CALLS)
    only = (f"leadledger_only_left_{n}", f"leadledger_only_right_{n}")
    async with conn.transaction():
        for side, (mine, other) in enumerate((sources, sources[::-1])):
            # The temporary tables go with the transaction, on error too. Named afresh per
            # call: inside a caller's transaction this one is a savepoint, whose release
            # drops nothing, and an earlier call's cursor may still hold its tables.
            query = mine if other is None else f"{mine} EXCEPT ALL {other}"
            if mine is None:  # typed as the other side, and empty
                query = "SELECT " + ", ".join(f'NULL::text AS "{c}"' for c in columns)
                query += " WHERE false"
            await conn.execute(f"CREATE TEMP TABLE {only[side]} ON COMMIT DROP AS {query}")
        # Sides as bits, as in digest.kind_counts: 3 = on both (changed), 1 left, 2 right.
        changed, removed, added = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE s = 3), count(*) FILTER (WHERE s = 1),"
            " count(*) FILTER (WHERE s = 2) FROM (SELECT bit_or(side) AS s FROM"
            f" (SELECT {keys}, 1 AS side FROM {only[0]}"
            f" UNION ALL SELECT {keys}, 2 FROM {only[1]}) AS u GROUP BY {keys}) AS g"
        )
        sample = DiffSample([list(columns).index(k) for k in key], limit)
        if changed or removed or added:
            both = f"SELECT 0, {cols} FROM {only[0]} UNION ALL SELECT 1, {cols} FROM {only[1]}"
            async for rows in _chunks(conn, both):
                for r in rows:
                    sample.add(r[0], tuple(r)[1:])
    return TableDiff(table, tuple(columns), tuple(key), changed, removed, added, sample.changes())


def _check_key(table: str, columns: Sequence[str], key: Sequence[str]) -> None:
    missing = [k for k in key if k not in columns]
    if missing or not key:
        raise ValueError(f"{table}: key columns {missing or key} are not compared columns")


async def compare_schemas(
    conn: asyncpg.Connection,
    left: str,
    right: str,
    projections: Sequence[Projection],
    limit: int = 20,
    left_overrides: Mapping[str, str] | None = None,
) -> tuple[list[TableDigest], list[TableDigest], list[TableDiff]]:
    """Digests of both schemas and the row differences, table by table. ``left_overrides``:
    table -> the schema to read that table from on the left instead."""
    lefts, rights, diffs = [], [], []
    overrides = left_overrides or {}
    for p in projections:
        lschema = overrides.get(p.table, left)
        lcols = await compared_columns(conn, lschema, p.table)
        rcols = await compared_columns(conn, right, p.table)
        # A table missing on one side (an older schema) compares as empty.
        columns = [c for c in rcols if c in lcols] if lcols and rcols else lcols or rcols
        ldigest = await table_digest_of(conn, lschema, p.table, columns if lcols else [])
        rdigest = await table_digest_of(conn, right, p.table, columns if rcols else [])
        lefts.append(ldigest)
        rights.append(rdigest)
        if ldigest.digest == rdigest.digest and lcols and rcols:
            # SHA-256 over each side's sorted rows, every row's every compared column: equal
            # digests are equal rows (the digest is the row-by-row check). Reading both
            # tables again for EXCEPT ALL would only confirm it, at twice the cost.
            _check_key(p.table, columns, p.key)
            diffs.append(TableDiff(p.table, tuple(columns), p.key))
        elif columns:
            diffs.append(await diff_tables(conn, p.table, columns, p.key,
                                           lschema if lcols else None,
                                           right if rcols else None, limit))  # fmt: skip
        else:  # the table exists on neither side
            diffs.append(TableDiff(p.table, (), p.key))
    return lefts, rights, diffs
