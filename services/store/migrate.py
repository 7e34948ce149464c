"""Ordered SQL migrations from ``services/sql``, applied once each, under an advisory lock."""

from __future__ import annotations

from importlib import resources

import asyncpg

#: Arbitrary constant: every leadledger process that migrates takes this same lock.
_LOCK_KEY = 0x1EAD1ED6E


def _migrations() -> list[tuple[str, str]]:
    folder = resources.files("services").joinpath("sql")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name, folder.joinpath(name).read_text(encoding="utf-8")) for name in names]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not yet applied; returns their names. Safe to run concurrently."""
    applied: list[str] = []
    async with conn.transaction():
        # Processors and the API may start together; the lock serialises their migrations.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migration ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migration")}
        for name, sql in _migrations():
            if name in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migration (name) VALUES ($1)", name)
            applied.append(name)
    return applied
