"""Bad input and crashes: every record is counted, dead letters carry reasons, nothing doubles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

from events.catalog import LeadAssigned, LeadStageChanged
from events.codec import encode, to_obj
from events.envelope import make_event
from services.embedded.postgres import EmbeddedPostgres
from services.settings import Settings
from tests.integration.conftest import unique_suffix
from tests.integration.helpers import (
    ProcessorHandle,
    consume_all,
    fetch,
    processor,
    publish,
    scalar,
    wait_until,
)
from tests.integration.journey import full_journey

M = timedelta(minutes=1)


def metric_value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


async def count(dsn: str, table: str) -> int:
    return int(await scalar(dsn, f"SELECT count(*) FROM {table}") or 0)


async def test_each_kind_of_bad_record_is_counted_and_dead_lettered_and_the_worker_goes_on(
    fresh_topics: Settings, tmp_path: Path
) -> None:
    s = fresh_topics
    lead = "L-faults"
    t0 = datetime.now(UTC) - timedelta(days=10)
    journey = full_journey(lead, t0)
    created, _touch, to_mql, _assigned, contacted, to_sal = journey[:6]
    late_assignment = make_event(
        LeadAssigned(owner_id="rep-9", team="sdr-amer"),
        id="late-assign", subject=lead, source="crm", time=t0 + 12 * M,
    )  # fmt: skip
    too_late = make_event(
        LeadStageChanged(from_stage="lead", to_stage="nurture"),
        id="too-late", subject=lead, source="crm", time=t0 - timedelta(days=40),
    )  # fmt: skip
    disallowed = make_event(
        LeadStageChanged(from_stage="lead", to_stage="customer"),
        id="disallowed", subject=lead, source="crm", time=t0 + 20 * M,
    )  # fmt: skip
    no_key = make_event(
        LeadAssigned(owner_id="rep-2", team="sdr-emea"),
        id="no-key", subject=lead, source="crm", time=t0 + 15 * M,
    )  # fmt: skip
    unknown_type = orjson.dumps(to_obj(created) | {"id": "unknown-type", "type": "lead.teleported"})
    bad = [
        (lead.encode(), encode(to_mql)),  # duplicate id
        (lead.encode(), encode(too_late)),
        (lead.encode(), encode(disallowed)),
        (lead.encode(), b'{"id": "broken", "type": '),  # malformed JSON
        (lead.encode(), unknown_type),
        (None, encode(no_key)),
    ]
    await publish(s.kafka_bootstrap, s.events_topic, [created, to_mql, contacted])
    await publish(s.kafka_bootstrap, s.events_topic, bad, headers=[("origin", b"crm-sync")])
    # Arrives after the contact it precedes in event time: placed by time, not arrival.
    await publish(s.kafka_bootstrap, s.events_topic, [late_assignment, to_sal])
    with processor(s, tmp_path) as proc:
        await wait_until(
            lambda: count(s.database_url, "rejected_event"), lambda n: n == 6,
            what="6 rejected records", watch=proc,
        )  # fmt: skip
        await wait_until(
            lambda: count(s.database_url, "event_archive"), lambda n: n == 5,
            what="5 accepted events", watch=proc,
        )  # fmt: skip
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{proc.web_port}/metrics")).text
        assert proc.alive, proc.log_tail()

    reasons = ["duplicate", "too_late", "disallowed_transition", "malformed_json",
               "unknown_type", "missing_key"]  # fmt: skip
    for reason in reasons:
        sample = f'leadledger_events_rejected_total{{component="processor",reason="{reason}"}}'
        assert metric_value(text, sample) == 1, reason
    assert metric_value(text, 'leadledger_events_out_of_order_total{type="lead.assigned"}') == 1
    assert (
        sum(
            metric_value(text, f'leadledger_events_processed_total{{type="{t}"}}')
            for t in ("lead.created", "lead.stage_changed", "lead.contacted", "lead.assigned")
        )
        == 5
    )

    dead = await consume_all(s.kafka_bootstrap, s.rejected_topic, expected=6)
    assert len(dead) == 6
    by_reason = {dict(r.headers)["ll_reason"].decode(): r for r in dead}
    assert sorted(by_reason) == sorted(reasons)
    for (key, value), reason in zip(bad, reasons, strict=True):
        record = by_reason[reason]
        assert record.value == value, "dead letters keep the original bytes"
        assert record.key == key
        headers = dict(record.headers)
        assert headers["origin"] == b"crm-sync", "dead letters keep the original headers"
        assert headers["ll_source_topic"].decode() == s.events_topic
        assert int(headers["ll_source_offset"]) >= 0
        assert headers["ll_detail"]

    row = (await fetch(s.database_url, "SELECT * FROM lead_current WHERE lead_id=$1", lead))[0]
    assert row["current_stage"] == "sal", "the good event after the bad ones was applied"
    handoff = (await fetch(s.database_url, "SELECT * FROM lead_handoff WHERE lead_id=$1", lead))[0]
    assert handoff["system_delay_seconds"] == 2 * 60, "the late assignment is placed by time"
    assert handoff["human_delay_seconds"] == 28 * 60


def many_journeys(n: int) -> list[tuple[bytes | None, bytes]]:
    t0 = datetime.now(UTC) - timedelta(days=20)
    records: list[tuple[bytes | None, bytes]] = []
    for i in range(n):
        lead = f"L-{i:05d}"
        for event in full_journey(lead, t0 + i * M):
            records.append((event.key, encode(event)))
        if i % 50 == 0:
            records.append((lead.encode(), b"not json"))
    return records


READ_MODEL_QUERIES = {
    "lead_current": "SELECT * FROM lead_current ORDER BY lead_id",
    "lead_stage_history": "SELECT * FROM lead_stage_history ORDER BY lead_id, seq",
    "lead_handoff": "SELECT * FROM lead_handoff ORDER BY lead_id, seq",
    "event_archive": "SELECT event_id, lead_id, event_type, payload, kafka_partition,"
    " kafka_offset FROM event_archive ORDER BY event_id",
    "rejected_event": "SELECT * FROM rejected_event ORDER BY kafka_partition, kafka_offset",
}
VOLATILE = {"updated_at", "archived_at", "rejected_at"}


async def snapshot(dsn: str) -> dict[str, list[dict[str, object]]]:
    out = {}
    for table, sql in READ_MODEL_QUERIES.items():
        rows = await fetch(dsn, sql)
        out[table] = [{k: v for k, v in dict(r).items() if k not in VOLATILE} for r in rows]
    return out


async def test_a_processor_killed_mid_stream_ends_identical_to_an_uninterrupted_run(
    fresh_topics: Settings, embedded_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    s = fresh_topics
    records = many_journeys(300)
    total_good = sum(1 for _, v in records if v != b"not json")
    await publish(s.kafka_bootstrap, s.events_topic, records)
    other_db = f"test_{unique_suffix()}"
    embedded_pg.create_database(other_db)
    try:
        calm = s.model_copy(
            update={"database_url": embedded_pg.dsn_for(other_db), "processor_id": "calm"}
        )
        crashy = s.model_copy(update={"processor_id": "crashy"})
        # Small batches make the run long enough to be killed in the middle of it.
        victim = ProcessorHandle(crashy, tmp_path, batch_max_events=40)
        with processor(calm, tmp_path):
            victim.start()
            try:
                done = await wait_until(
                    lambda: count(s.database_url, "event_archive"),
                    lambda n: n > total_good // 5, what="a fifth of the events", watch=victim,
                )  # fmt: skip
                victim.kill()
                assert done < total_good, "the kill must land mid-stream"
                victim.start()
                for dsn in (s.database_url, calm.database_url):
                    await wait_until(
                        lambda dsn=dsn: count(dsn, "event_archive"),  # type: ignore[misc]
                        lambda n: n == total_good, seconds=180, what="every event",
                    )  # fmt: skip
                    await wait_until(
                        lambda dsn=dsn: count(dsn, "rejected_event"),  # type: ignore[misc]
                        lambda n: n == 6, what="every dead letter",
                    )  # fmt: skip
            finally:
                victim.stop()
        crashed, uninterrupted = await snapshot(s.database_url), await snapshot(calm.database_url)
        assert len(crashed["lead_current"]) == 300
        for table in READ_MODEL_QUERIES:
            assert crashed[table] == uninterrupted[table], table
    finally:
        embedded_pg.drop_database(other_db)
