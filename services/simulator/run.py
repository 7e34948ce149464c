"""The simulator's I/O side: publish a ``Timeline`` to Kafka on a fast-forwarding clock.

The simulated clock starts ``backfill`` in the past and runs ``speedup`` times faster than the
wall clock until it reaches the present, then follows it. Event times therefore never lie in
the future (the processor rejects those), and a newcomer sees days of realistic handoff
latencies within minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from events.codec import encode
from events.envelope import Event
from events.tick import TICK_HEADERS, encode_tick
from services.simulator.journeys import SimConfig, Timeline

__all__ = ["EVENTS_PER_LEAD", "default_leads_per_hour", "run_simulator", "utc_now"]

log = logging.getLogger(__name__)

#: Rough average events per lead over a whole journey (measured over many seeds: ~9).
#: Early in a backfill most journeys are young and emit less, so a lower figure is used to
#: size arrivals: the publish rate then stays near, but mostly under, the cap.
EVENTS_PER_LEAD = 6.0
#: Seconds between clock polls: at the default speedup 600 one tick is a simulated minute.
_TICK = 0.1
#: Seconds between progress log lines.
_LOG_EVERY = 10.0


def utc_now() -> datetime:
    """The wall clock, timezone-aware in UTC."""
    return datetime.now(UTC)


def default_leads_per_hour(rate: float, speedup: float) -> float:
    """Lead arrivals (per simulated hour) that roughly fill ``rate`` events/s at ``speedup``."""
    return max(rate * 3600.0 / (speedup * EVENTS_PER_LEAD), 0.1)


def _record(event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    headers = [
        ("ce_type", event.type.encode()),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
    ]
    return event.key, encode(event), headers


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, waking early when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.0))


async def run_simulator(
    bootstrap: str,
    topic: str,
    *,
    rate: float = 50.0,
    speedup: float = 600.0,
    seed: int = 7,
    backfill: timedelta = timedelta(days=2),
    stop: asyncio.Event | None = None,
    max_events: int | None = None,
    now: Callable[[], datetime] = utc_now,
    leads_per_hour: float | None = None,
    lead_id_prefix: str = "L",
    tick_every: float | None = None,
) -> int:
    """Publish simulated lead events to ``topic`` until ``stop`` is set or ``max_events``.

    ``rate`` caps publishing in events per wall-clock second; ``leads_per_hour`` (simulated
    time) defaults to ``default_leads_per_hour(rate, speedup)``. Records are keyed by lead id,
    valued with the canonical codec bytes, and carry ``ce_type``/``ce_id``/``ce_source``
    headers. Returns the number of events the broker acknowledged.

    With ``tick_every`` (wall seconds), it also publishes a tick record to every partition at
    most that often, at the simulated time, once every event up to that time is published:
    the simulated clock is the truth about event time, so the SLA timers of a backfill fire
    at simulated, not wall-clock, deadlines (``leadledger up --demo`` relies on it).
    """
    if rate <= 0 or speedup <= 0:
        raise ValueError("rate and speedup must be positive")
    if backfill < timedelta(0):
        raise ValueError("backfill must not be negative")
    stop = stop if stop is not None else asyncio.Event()
    lph = leads_per_hour if leads_per_hour is not None else default_leads_per_hour(rate, speedup)
    wall_start = now()
    sim_start = wall_start - backfill
    timeline = Timeline(SimConfig(seed=seed, lead_id_prefix=lead_id_prefix), sim_start, lph)
    log.info(
        "simulator: seed %d, %.1f leads/simulated hour, from %s at %gx, at most %g events/s",
        seed,
        lph,
        sim_start.isoformat(),
        speedup,
        rate,
    )

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await producer.start()
    partitions = sorted(await producer.partitions_for(topic)) if tick_every else []
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    pending: deque[Event] = deque()
    published, sim_t, caught_up = 0, sim_start, False
    # Token bucket: at most one tick's worth of burst, so an idle spell is not followed by a
    # flood that exceeds the cap.
    capacity = max(1.0, rate * _TICK)
    tokens, last_fill = capacity, loop.time()
    next_log = loop.time() + _LOG_EVERY
    try:
        while not stop.is_set() and (max_events is None or published < max_events):
            wall = now()
            # Never past the wall clock (no future events), and never backwards.
            sim_t = max(sim_t, min(sim_start + (wall - wall_start) * speedup, wall))
            if not caught_up and sim_t >= wall:
                caught_up = True
                log.info("simulator: caught up with the wall clock; now running in real time")
            # Refill only when drained: a throttled run publishes in time order, in chunks.
            if not pending:
                pending.extend(timeline.until(sim_t))

            tick = loop.time()
            tokens = min(capacity, tokens + (tick - last_fill) * rate)
            last_fill = tick
            n = min(len(pending), int(tokens))
            if max_events is not None:
                n = min(n, max_events - published)
            if n:
                batch = [pending.popleft() for _ in range(n)]
                futures = []
                for event in batch:
                    key, value, headers = _record(event)
                    futures.append(
                        await producer.send(topic, value=value, key=key, headers=headers)
                    )
                await asyncio.gather(*futures)
                published += n
                tokens -= n
            if partitions and not pending and tick_every and loop.time() >= next_tick:
                next_tick = loop.time() + tick_every
                value = encode_tick(sim_t, "leadledger/simulator")
                await asyncio.gather(*[
                    await producer.send(topic, value, partition=p, headers=list(TICK_HEADERS))
                    for p in partitions
                ])  # fmt: skip

            if loop.time() >= next_log:
                next_log = loop.time() + _LOG_EVERY
                log.info(
                    "simulator: %d events published, %d leads, simulated time %s",
                    published,
                    timeline.leads_started,
                    sim_t.isoformat(timespec="seconds"),
                )
            if pending and tokens >= 1:
                await asyncio.sleep(0)  # more to send right away; still yield to the loop
            elif pending:
                await _pause(stop, min(_TICK, (1 - tokens) / rate))
            else:
                await _pause(stop, _TICK)
    finally:
        await producer.stop()
    log.info("simulator: stopped after %d events", published)
    return published
