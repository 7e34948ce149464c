-- A batch commit in one statement (issue 6).
--
-- The processor used to send a batch as ~16 statements (fence, COPYs, updates, upserts,
-- checkpoint), each a round trip and a fixed cost that small batches paid per event. It now
-- sends every row set as one array argument of commit_batch, inside its transaction; the
-- function does what those statements did, in the same order, and returns what a fence
-- found instead of raising, so the client maps it to the same exceptions as before.
--
-- Row types: one field per column, in the order of the store's column tuples
-- (services/store/projection_store.py, sla_rows.py, closed_loop_rows.py). The types of 006
-- serve lead_current, lead_stage_history and lead_handoff.

CREATE TYPE event_archive_row AS (
    event_id            text,
    lead_id             text,
    event_type          text,
    source              text,
    event_time          timestamptz,
    schemaversion       integer,
    payload             jsonb,
    kafka_topic         text,
    kafka_partition     integer,
    kafka_offset        bigint,
    kafka_timestamp_ms  bigint,
    -- NULL for a record without headers: stored as the column default, an empty array
    -- (the driver encodes an empty array slower than the other fields together).
    kafka_header_keys   text[],
    kafka_header_values bytea[]
);
CREATE TYPE rejected_event_row AS (
    kafka_topic         text,
    kafka_partition     integer,
    kafka_offset        bigint,
    lead_id             text,
    event_id            text,
    reason              text,
    detail              text,
    raw                 bytea,
    kafka_key           bytea,
    kafka_timestamp_ms  bigint,
    kafka_header_keys   text[],
    kafka_header_values bytea[]
);
CREATE TYPE sla_timer_row AS (
    lead_id         text,
    policy          text,
    cycle_id        text,
    kafka_partition integer,
    started_at      timestamptz,
    warn_at         timestamptz,
    deadline        timestamptz,
    escalate_at     timestamptz[],
    stopped_at      timestamptz,
    outcome         text,
    stop_reason     text,
    stop_event_id   text,
    owner_id        text,
    team            text,
    assigned_at     timestamptz,
    limit_seconds   double precision,
    elapsed_seconds double precision,
    status          text,
    emitted         text[],
    next_fire_at    timestamptz
);
CREATE TYPE sla_volume_fact_row AS (
    lead_id  text,
    event_id text,
    kind     text,
    at       timestamptz,
    month    text,
    team     text,
    rep_id   text
);
CREATE TYPE lead_identity_row AS (
    email_key  text,
    lead_id    text,
    first_seen timestamptz,
    event_id   text
);
CREATE TYPE lead_duplicate_row AS (
    original_id          text,
    duplicate_id         text,
    email_key            text,
    original_first_seen  timestamptz,
    duplicate_first_seen timestamptz,
    derived_event_id     text
);
CREATE TYPE handoff_suppression_row AS (
    lead_id         text,
    event_id        text,
    event_time      timestamptz,
    event_source    text,
    to_stage        text,
    action          text,
    suppressed_by   text,
    reason_code     text,
    disqualified_at timestamptz,
    lead_source     text,
    campaign_id     text,
    channel         text
);

-- Returns NULL once everything is written; otherwise nothing is written and the result says
-- why: 'moved:<detail>' when a partition's stored offset is not the expected one (another
-- worker committed it), 'taken:<detail>' when another lead took an email key meanwhile.
-- The caller then rolls the transaction back.
CREATE FUNCTION commit_batch(
    p_consumer          text,
    p_topic             text,
    -- the checkpoint fence: the offsets the batch was staged on (NULL: no row yet)
    p_fence_partitions  integer[],
    p_fence_offsets     bigint[],
    -- the closed loop's fence: the email keys it writes holders of, and the holders
    -- (key, lead) it compared against
    p_email_keys        text[],
    p_seen_keys         text[],
    p_seen_leads        text[],
    p_archive           event_archive_row[],
    p_lead_update       lead_current_row[],
    p_lead_insert       lead_current_row[],
    p_lead_upsert       lead_current_row[],
    p_stage_cut_ids     text[],
    p_stage_cut_seqs    integer[],
    p_stage_update      lead_stage_row[],
    p_stage_insert      lead_stage_row[],
    p_handoff_cut_ids   text[],
    p_handoff_cut_seqs  integer[],
    p_handoff_update    lead_handoff_row[],
    p_handoff_insert    lead_handoff_row[],
    p_timers            sla_timer_row[],
    p_fact_leads        text[],
    p_facts             sla_volume_fact_row[],
    p_identities        lead_identity_row[],
    p_duplicates        lead_duplicate_row[],
    p_suppressions      handoff_suppression_row[],
    p_rejected          rejected_event_row[],
    p_partitions        integer[],
    p_offsets           bigint[],
    p_stream_times      timestamptz[]
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    found_text text;
BEGIN
    -- Row locks, in partition order, serialise two workers that both believe they own a
    -- partition (a rebalance in flight); the loser sees an offset it did not expect.
    WITH locked AS (
        SELECT c.kafka_partition, c.kafka_offset
        FROM projection_checkpoint c JOIN unnest(p_fence_partitions) AS f (p)
            ON c.consumer = p_consumer AND c.kafka_topic = p_topic AND c.kafka_partition = f.p
        ORDER BY c.kafka_partition FOR UPDATE OF c
    )
    SELECT format('partition %s: %s != %s', e.p, coalesce(l.kafka_offset::text, 'None'),
                  coalesce(e.o::text, 'None'))
    INTO found_text
    FROM unnest(p_fence_partitions, p_fence_offsets) AS e (p, o)
    LEFT JOIN locked l ON l.kafka_partition = e.p
    WHERE l.kafka_offset IS DISTINCT FROM e.o
    ORDER BY e.p LIMIT 1;
    IF found_text IS NOT NULL THEN
        RETURN 'moved:' || found_text;
    END IF;

    IF cardinality(p_email_keys) > 0 THEN
        -- Two workers may create leads with one email on two partitions at once. Per-key
        -- locks, in the sorted order of p_email_keys (so no deadlock), serialise them; the
        -- second then finds a holder it did not compare against and redoes its batch.
        PERFORM pg_advisory_xact_lock(hashtextextended(k, 7))
        FROM unnest(p_email_keys) WITH ORDINALITY AS u (k, n) ORDER BY n;
        -- A set operation (hashed), not a join the cached plan may turn into a scan of
        -- the whole table: the holders of these keys less those the attempt compared against.
        SELECT format('lead %s took email key %s... meanwhile', x.lead_id, left(x.email_key, 12))
        INTO found_text
        FROM (SELECT email_key, lead_id FROM lead_identity WHERE email_key = ANY (p_email_keys)
              EXCEPT ALL
              SELECT * FROM unnest(p_seen_keys, p_seen_leads)) AS x
        LIMIT 1;
        IF found_text IS NOT NULL THEN
            RETURN 'taken:' || found_text;
        END IF;
    END IF;

    IF cardinality(p_archive) > 0 THEN
        INSERT INTO event_archive (event_id, lead_id, event_type, source, event_time,
            schemaversion, payload, kafka_topic, kafka_partition, kafka_offset,
            kafka_timestamp_ms, kafka_header_keys, kafka_header_values)
        SELECT a.event_id, a.lead_id, a.event_type, a.source, a.event_time, a.schemaversion,
            a.payload, a.kafka_topic, a.kafka_partition, a.kafka_offset, a.kafka_timestamp_ms,
            coalesce(a.kafka_header_keys, '{}'), coalesce(a.kafka_header_values, '{}')
        FROM unnest(p_archive) AS a;
    END IF;

    -- A committed lead with events has its row: update it; without events it has none:
    -- insert; without a known committed state it may have either: upsert.
    IF cardinality(p_lead_update) > 0 THEN
        UPDATE lead_current t SET current_stage = d.current_stage,
            current_team = d.current_team, highest_stage = d.highest_stage,
            owner_id = d.owner_id, owner_team = d.owner_team, created_at = d.created_at,
            entered_current_at = d.entered_current_at, first_event_at = d.first_event_at,
            last_event_at = d.last_event_at, event_count = d.event_count,
            merged_into = d.merged_into, handoff_started_at = d.handoff_started_at,
            handoff_action = d.handoff_action,
            handoff_latency_seconds = d.handoff_latency_seconds, updated_at = now()
        FROM unnest(p_lead_update) AS d WHERE t.lead_id = d.lead_id;
    END IF;
    IF cardinality(p_lead_insert) > 0 THEN
        INSERT INTO lead_current (lead_id, current_stage, current_team, highest_stage,
            owner_id, owner_team, created_at, entered_current_at, first_event_at,
            last_event_at, event_count, merged_into, handoff_started_at, handoff_action,
            handoff_latency_seconds)
        SELECT * FROM unnest(p_lead_insert);
    END IF;
    IF cardinality(p_lead_upsert) > 0 THEN
        INSERT INTO lead_current (lead_id, current_stage, current_team, highest_stage,
            owner_id, owner_team, created_at, entered_current_at, first_event_at,
            last_event_at, event_count, merged_into, handoff_started_at, handoff_action,
            handoff_latency_seconds)
        SELECT * FROM unnest(p_lead_upsert)
        ON CONFLICT (lead_id) DO UPDATE SET current_stage = EXCLUDED.current_stage,
            current_team = EXCLUDED.current_team, highest_stage = EXCLUDED.highest_stage,
            owner_id = EXCLUDED.owner_id, owner_team = EXCLUDED.owner_team,
            created_at = EXCLUDED.created_at, entered_current_at = EXCLUDED.entered_current_at,
            first_event_at = EXCLUDED.first_event_at, last_event_at = EXCLUDED.last_event_at,
            event_count = EXCLUDED.event_count, merged_into = EXCLUDED.merged_into,
            handoff_started_at = EXCLUDED.handoff_started_at,
            handoff_action = EXCLUDED.handoff_action,
            handoff_latency_seconds = EXCLUDED.handoff_latency_seconds, updated_at = now();
    END IF;

    -- Stage and handoff rows: cut, update by (lead_id, seq), insert (see Delta).
    IF cardinality(p_stage_cut_ids) > 0 THEN
        DELETE FROM lead_stage_history t USING unnest(p_stage_cut_ids, p_stage_cut_seqs)
            AS d (lead_id, seq)
        WHERE t.lead_id = d.lead_id AND t.seq >= d.seq;
    END IF;
    IF cardinality(p_stage_update) > 0 THEN
        UPDATE lead_stage_history t SET stage = d.stage, team = d.team,
            entered_at = d.entered_at, exited_at = d.exited_at, seconds = d.seconds,
            from_stage = d.from_stage, reason = d.reason, entered_via = d.entered_via
        FROM unnest(p_stage_update) AS d WHERE t.lead_id = d.lead_id AND t.seq = d.seq;
    END IF;
    IF cardinality(p_stage_insert) > 0 THEN
        INSERT INTO lead_stage_history (lead_id, seq, stage, team, entered_at, exited_at,
            seconds, from_stage, reason, entered_via)
        SELECT * FROM unnest(p_stage_insert);
    END IF;
    IF cardinality(p_handoff_cut_ids) > 0 THEN
        DELETE FROM lead_handoff t USING unnest(p_handoff_cut_ids, p_handoff_cut_seqs)
            AS d (lead_id, seq)
        WHERE t.lead_id = d.lead_id AND t.seq >= d.seq;
    END IF;
    IF cardinality(p_handoff_update) > 0 THEN
        UPDATE lead_handoff t SET started_at = d.started_at,
            start_event_id = d.start_event_id, assigned_at = d.assigned_at,
            action = d.action, action_at = d.action_at, action_event_id = d.action_event_id,
            latency_seconds = d.latency_seconds,
            system_delay_seconds = d.system_delay_seconds,
            human_delay_seconds = d.human_delay_seconds
        FROM unnest(p_handoff_update) AS d WHERE t.lead_id = d.lead_id AND t.seq = d.seq;
    END IF;
    IF cardinality(p_handoff_insert) > 0 THEN
        INSERT INTO lead_handoff (lead_id, seq, started_at, start_event_id, assigned_at,
            action, action_at, action_event_id, latency_seconds, system_delay_seconds,
            human_delay_seconds)
        SELECT * FROM unnest(p_handoff_insert);
    END IF;

    -- SLA: upsert the changed timers, replace the changed leads' volume facts.
    IF cardinality(p_timers) > 0 THEN
        INSERT INTO sla_timer (lead_id, policy, cycle_id, kafka_partition, started_at,
            warn_at, deadline, escalate_at, stopped_at, outcome, stop_reason, stop_event_id,
            owner_id, team, assigned_at, limit_seconds, elapsed_seconds, status, emitted,
            next_fire_at)
        SELECT * FROM unnest(p_timers)
        ON CONFLICT (lead_id, policy, cycle_id) DO UPDATE SET
            kafka_partition = EXCLUDED.kafka_partition, started_at = EXCLUDED.started_at,
            warn_at = EXCLUDED.warn_at, deadline = EXCLUDED.deadline,
            escalate_at = EXCLUDED.escalate_at, stopped_at = EXCLUDED.stopped_at,
            outcome = EXCLUDED.outcome, stop_reason = EXCLUDED.stop_reason,
            stop_event_id = EXCLUDED.stop_event_id, owner_id = EXCLUDED.owner_id,
            team = EXCLUDED.team, assigned_at = EXCLUDED.assigned_at,
            limit_seconds = EXCLUDED.limit_seconds,
            elapsed_seconds = EXCLUDED.elapsed_seconds, status = EXCLUDED.status,
            emitted = EXCLUDED.emitted, next_fire_at = EXCLUDED.next_fire_at,
            updated_at = now();
    END IF;
    IF cardinality(p_fact_leads) > 0 THEN
        DELETE FROM sla_volume_fact WHERE lead_id = ANY (p_fact_leads);
    END IF;
    IF cardinality(p_facts) > 0 THEN
        INSERT INTO sla_volume_fact (lead_id, event_id, kind, at, month, team, rep_id)
        SELECT * FROM unnest(p_facts);
    END IF;

    -- Closed loop: facts, never updated (the first row of a key stands).
    IF cardinality(p_identities) > 0 THEN
        INSERT INTO lead_identity (email_key, lead_id, first_seen, event_id)
        SELECT * FROM unnest(p_identities) ON CONFLICT DO NOTHING;
    END IF;
    IF cardinality(p_duplicates) > 0 THEN
        INSERT INTO lead_duplicate (original_id, duplicate_id, email_key,
            original_first_seen, duplicate_first_seen, derived_event_id)
        SELECT * FROM unnest(p_duplicates) ON CONFLICT DO NOTHING;
    END IF;
    IF cardinality(p_suppressions) > 0 THEN
        INSERT INTO handoff_suppression (lead_id, event_id, event_time, event_source,
            to_stage, action, suppressed_by, reason_code, disqualified_at, lead_source,
            campaign_id, channel)
        SELECT * FROM unnest(p_suppressions) ON CONFLICT DO NOTHING;
    END IF;

    IF cardinality(p_rejected) > 0 THEN
        INSERT INTO rejected_event (kafka_topic, kafka_partition, kafka_offset, lead_id,
            event_id, reason, detail, raw, kafka_key, kafka_timestamp_ms, kafka_header_keys,
            kafka_header_values)
        SELECT * FROM unnest(p_rejected) ON CONFLICT DO NOTHING;
    END IF;

    INSERT INTO projection_checkpoint (consumer, kafka_topic, kafka_partition, kafka_offset,
        stream_time)
    SELECT p_consumer, p_topic, * FROM unnest(p_partitions, p_offsets, p_stream_times)
    ON CONFLICT (consumer, kafka_topic, kafka_partition)
    DO UPDATE SET kafka_offset = EXCLUDED.kafka_offset, stream_time = EXCLUDED.stream_time,
        updated_at = now();
    RETURN NULL;
END
$$;
