"""``leadledger up`` in embedded mode: put the archived history back into the fresh broker.

The embedded Tansu keeps nothing across a restart, while PostgreSQL keeps the read models,
their checkpoints and the event archive. Left alone, the processor would meet an empty topic
whose new records land at offsets its checkpoints already cover, and skip them as
redelivered. So before the processor starts, a history the checkpoints speak of is
republished at its original offsets (``services.replay.restore``), and the processor
carries on where it stopped.
"""

from __future__ import annotations

import asyncpg
from rich.console import Console

from services.cli_replay import events_progress
from services.progress_bar import bar_callback
from services.replay.restore import RestoreResult, TopicNotEmpty, restore, topic_size
from services.settings import Settings


async def checkpointed_records(dsn: str, consumer: str, topic: str) -> int:
    """How many offsets of ``topic`` the processor has committed (0 on a fresh database)."""
    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SELECT to_regclass('projection_checkpoint')") is None:
            return 0
        done = await conn.fetchval(
            "SELECT coalesce(sum(kafka_offset + 1), 0) FROM projection_checkpoint"
            " WHERE consumer = $1 AND kafka_topic = $2",
            consumer,
            topic,
        )
        return int(done)
    finally:
        await conn.close()


async def restore_history(
    settings: Settings, dsn: str, bootstrap: str, console: Console
) -> RestoreResult | None:
    """Republish the archive when the processor has committed offsets the topic lacks.
    None when there is nothing to restore (a first start, or the topic already has them)."""
    topic = settings.events_topic
    committed = await checkpointed_records(dsn, settings.processor_id, topic)
    if committed == 0:
        return None
    held = sum((await topic_size(bootstrap, topic) or {}).values())
    if held >= committed:
        return None
    console.print(f"  the broker is empty; restoring {committed:,} offsets from the archive")
    with events_progress() as bar:
        task = bar.add_task(f"restore archive -> {topic}", total=None, rate="-")
        try:
            return await restore(dsn, bootstrap, topic, settings.processor_id,
                                 settings.partitions, progress=bar_callback(bar, task))  # fmt: skip
        except TopicNotEmpty as exc:
            # Someone published before us: restoring now would shift offsets. Say so loudly;
            # the processor will skip the records below its checkpoints.
            console.print(f"[red]not restored:[/red] {exc}")
            return None
