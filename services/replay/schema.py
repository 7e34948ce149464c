"""Replay target schemas: a fresh PostgreSQL schema with the same tables as the live one.

The live read models live in the database's default schema (``public``); a replay writes
into its own schema of the same database, created here and migrated with the same ordered
SQL files, so ``--verify`` and ``leadledger diff`` can compare the two with plain SQL.
"""

from __future__ import annotations

import re
from datetime import datetime

import asyncpg

from services.store.migrate import migrate

#: The schema the live processor writes (the database default).
LIVE_SCHEMA = "public"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class BadSchemaName(ValueError):
    """A schema name that is not a plain lower-case identifier (or is the live schema)."""


def check_name(name: str, *, allow_live: bool = False) -> str:
    """``name`` if it is a safe identifier; the live schema only when ``allow_live``."""
    if name == "live":
        name = LIVE_SCHEMA
    if not _NAME.match(name) or name.startswith("pg_"):
        raise BadSchemaName(
            f"schema name {name!r} must be lower-case letters, digits and _, "
            "starting with a letter or _, at most 63 characters"
        )
    if name == LIVE_SCHEMA and not allow_live:
        raise BadSchemaName("a replay never writes into the live schema; pick another --into")
    return name


def default_name(now: datetime) -> str:
    """``replay_YYYYmmdd_HHMMSS`` for a replay started at ``now``."""
    return f"replay_{now:%Y%m%d_%H%M%S}"


async def schema_exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", name))


async def create_fresh(dsn: str, name: str, *, replace: bool) -> None:
    """Create schema ``name`` and run every migration in it; refuse an existing one unless
    ``replace`` (then it is dropped first)."""
    name = check_name(name)
    conn = await asyncpg.connect(dsn)
    try:
        if await schema_exists(conn, name):
            if not replace:
                raise SchemaExists(name)
            await conn.execute(f"DROP SCHEMA {name} CASCADE")
        await conn.execute(f"CREATE SCHEMA {name}")
    finally:
        await conn.close()
    conn = await connect_in(dsn, name)
    try:
        await migrate(conn)
    finally:
        await conn.close()


async def connect_in(dsn: str, schema: str) -> asyncpg.Connection:
    """A connection whose unqualified table names resolve in ``schema``."""
    return await asyncpg.connect(dsn, server_settings={"search_path": schema})


class SchemaExists(Exception):
    """The target schema exists already; the replay does not overwrite it unasked."""

    def __init__(self, name: str) -> None:
        super().__init__(f"schema {name!r} exists; pass --replace to drop and rebuild it")
        self.name = name
