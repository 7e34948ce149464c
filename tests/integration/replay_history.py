"""One seeded history of 20,000+ simulated leads for the replay tests, with ticks and a few
records the processor must reject, in publish (time) order, split at an as-of instant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from events.codec import encode
from events.tick import TICK_HEADERS, encode_tick
from services.simulator.journeys import Timeline
from services.simulator.world import SimConfig
from tests.unit.factories import created, moved

#: (key, value, partition or None, headers)
Item = tuple[bytes | None, bytes, int | None, list[tuple[str, bytes]] | None]
N_LEADS = 20_000
DAYS = 100


@dataclass(frozen=True, slots=True)
class History:
    first: list[Item]
    second: list[Item]
    as_of: datetime
    events: int
    bad: int


def build(now: datetime, partitions: int) -> History:
    """Simulated journeys over ``DAYS`` days up to an hour before ``now``, daily ticks, and
    four bad records, split at the as-of instant halfway."""
    start = now - timedelta(days=DAYS)
    lph = (N_LEADS * 1.03) / (DAYS * 24)
    timeline = Timeline(SimConfig(seed=41, lead_id_prefix="RP"), start, lph)
    events = timeline.until(now - timedelta(hours=1))
    timed: list[tuple[datetime, int, Item]] = [
        (e.time, 0, (e.key, encode(e), None, None)) for e in events
    ]
    day = datetime.combine(start.date(), datetime.min.time(), UTC) + timedelta(hours=23)
    while day < now - timedelta(hours=2):
        value = encode_tick(day, "test")
        timed += [(day, 1, (None, value, p, list(TICK_HEADERS))) for p in range(partitions)]
        day += timedelta(days=1)
    final = now - timedelta(minutes=30)
    timed += [
        (final, 1, (None, encode_tick(final, "test"), p, list(TICK_HEADERS)))
        for p in range(partitions)
    ]
    as_of = datetime.combine((start + timedelta(days=DAYS // 2)).date(), datetime.min.time(),
                             UTC) + timedelta(hours=12)  # fmt: skip
    early = as_of - timedelta(days=3)
    lead = "RP-bad-1"
    dup = events[0]
    bad: list[tuple[datetime, int, Item]] = [
        (early, 2, (b"RP-bad-0", b"{not json", None, None)),
        (early, 2, (lead.encode(), encode(created(lead, early, "mql", id="bad-1a")), None, None)),
        # mql -> customer skips the funnel: rejected with a reason, the lead stays in mql.
        (early, 2, (lead.encode(), encode(moved(lead, early, "mql", "customer", id="bad-1b")),
                    None, None)),
        (dup.time, 2, (dup.key, encode(dup), None, None)),  # a redelivered duplicate
    ]  # fmt: skip
    timed += bad
    timed.sort(key=lambda t: (t[0], t[1]))
    first = [item for when, _, item in timed if when <= as_of]
    second = [item for when, _, item in timed if when > as_of]
    return History(first, second, as_of, len(events) + 2, 2)
