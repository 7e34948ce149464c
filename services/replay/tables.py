"""Reading registered projections out of a schema, for digests, ``--verify`` and ``diff``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg

from services.replay.digest import Row, TableDiff, TableDigest, compare, table_digest
from services.replay.projections import DIGEST_IGNORED, Projection


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


async def table_rows(
    conn: asyncpg.Connection, schema: str, table: str, columns: Sequence[str]
) -> list[Row]:
    """Every row of ``schema.table`` as text values of ``columns``."""
    if not columns:
        return []
    select = ", ".join(f'"{c}"::text' for c in columns)
    rows = await conn.fetch(f'SELECT {select} FROM "{schema}"."{table}"')
    return [tuple(r) for r in rows]


async def digest_schema(
    conn: asyncpg.Connection, schema: str, projections: Sequence[Projection]
) -> list[TableDigest]:
    """The digest of each projection's table in ``schema`` (a missing table digests empty)."""
    out = []
    for p in projections:
        columns = await compared_columns(conn, schema, p.table)
        out.append(table_digest(p.table, await table_rows(conn, schema, p.table, columns)))
    return out


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
        columns = [c for c in rcols if c in lcols] if lcols else rcols
        # A table missing on one side (an older schema) compares as empty.
        lrows = await table_rows(conn, lschema, p.table, columns) if lcols else []
        rrows = await table_rows(conn, right, p.table, columns) if rcols else []
        lefts.append(table_digest(p.table, lrows))
        rights.append(table_digest(p.table, rrows))
        if columns:
            diffs.append(compare(p.table, columns, p.key, lrows, rrows, limit))
        else:  # the table exists on neither side
            diffs.append(TableDiff(p.table, (), p.key))
    return lefts, rights, diffs
