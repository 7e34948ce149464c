"""Replay target schemas: a fresh PostgreSQL schema with the same tables as the live one.

The live read models live in the database's default schema (``public``); a replay writes
into its own schema of the same database, created here and migrated with the same ordered
SQL files, so ``--verify`` and ``leadledger diff`` can compare the two with plain SQL.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg

from services.store.migrate import migrate

#: The schema the live processor writes (the database default).
LIVE_SCHEMA = "public"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: prefix of the schemas replays are built in (``building``); never a target name
_STAGING = "ll_build_"
#: first key of the advisory locks that mark a staging schema as being built
_LOCK_SPACE = 0x11B1


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
    if name.startswith(_STAGING):
        raise BadSchemaName(f"schema names starting with {_STAGING} are the replay's own")
    if name == LIVE_SCHEMA and not allow_live:
        raise BadSchemaName("a replay never writes into the live schema; pick another --into")
    return name


def default_name(now: datetime) -> str:
    """``replay_YYYYmmdd_HHMMSS`` for a replay started at ``now``."""
    return f"replay_{now:%Y%m%d_%H%M%S}"


async def schema_exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", name))


async def check_target(dsn: str, name: str, *, replace: bool) -> str:
    """``name`` (checked) if a replay may build it: refuse an existing schema unless
    ``replace``. Run before the fold, so a refused replay reads nothing."""
    name = check_name(name)
    conn = await asyncpg.connect(dsn)
    try:
        if not replace and await schema_exists(conn, name):
            raise SchemaExists(name)
    finally:
        await conn.close()
    return name


@asynccontextmanager
async def building(dsn: str, name: str, *, replace: bool) -> AsyncIterator[str]:
    """A staging schema, migrated, to write the replay into; it becomes ``name`` when the
    block ends without error and is dropped when it fails.

    Built aside and renamed, the target changes at once or not at all: a replay that fails
    midway leaves no half-written schema, and with ``replace`` the previous ``name`` stays
    readable, as it was, until the new one is complete. One transaction drops the old schema
    and renames the new one in its place.

    The building connection holds an advisory lock named after its staging schema for as long
    as it lives. A process killed outright leaves its staging schema behind, but not the lock
    (the server drops it with the session): the next replay drops every staging schema whose
    lock is free, and leaves those another replay is still building.
    """
    name = check_name(name)
    staging = f"{_STAGING}{secrets.token_hex(6)}"
    conn = await asyncpg.connect(dsn)
    try:
        await _drop_abandoned(conn)
        await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", _LOCK_SPACE, staging)
        await conn.execute(f"CREATE SCHEMA {staging}")
        try:
            # Migrated on this same connection: the statements after it name their schemas.
            await conn.execute(f"SET search_path TO {staging}")
            await migrate(conn)
            yield staging
            async with conn.transaction():
                if await schema_exists(conn, name):
                    if not replace:
                        # Created by someone else while this replay ran.
                        raise SchemaExists(name)
                    await conn.execute(f"DROP SCHEMA {name} CASCADE")
                await conn.execute(f"ALTER SCHEMA {staging} RENAME TO {name}")
        except BaseException:
            # The replay's own error is the one to see: a failed clean-up (the server gone)
            # leaves the staging schema, as a killed process does.
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await conn.execute(f"DROP SCHEMA IF EXISTS {staging} CASCADE")
            raise
    finally:
        await conn.close()


async def _drop_abandoned(conn: asyncpg.Connection) -> None:
    """Drop the staging schemas no live session is building (see ``building``)."""
    names = [r["nspname"] for r in await conn.fetch(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", _STAGING)]  # fmt: skip
    for staging in names:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", _LOCK_SPACE,
                               staging):  # fmt: skip
            try:
                quoted = staging.replace('"', '""')  # a name from the catalog, quoted as is
                await conn.execute(f'DROP SCHEMA IF EXISTS "{quoted}" CASCADE')
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_SPACE,
                                   staging)  # fmt: skip


async def connect_in(dsn: str, schema: str) -> asyncpg.Connection:
    """A connection whose unqualified table names resolve in ``schema``."""
    return await asyncpg.connect(dsn, server_settings={"search_path": schema})


class SchemaExists(Exception):
    """The target schema exists already; the replay does not overwrite it unasked."""

    def __init__(self, name: str) -> None:
        super().__init__(f"schema {name!r} exists; pass --replace to rebuild it")
        self.name = name
