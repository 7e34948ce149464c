-- Replay and archive restore (issue 4).

-- Enough of each Kafka record to republish it as it was (leadledger archive restore): the
-- broker timestamp (intake checks compare event time with it), the raw key and the headers.
-- NULL in rows archived before this migration; restore then falls back to archived_at and
-- the lead id.
ALTER TABLE event_archive
    ADD COLUMN kafka_timestamp_ms  bigint,
    ADD COLUMN kafka_header_keys   text[],
    ADD COLUMN kafka_header_values bytea[];
ALTER TABLE rejected_event
    ADD COLUMN kafka_key           bytea,
    ADD COLUMN kafka_timestamp_ms  bigint,
    ADD COLUMN kafka_header_keys   text[],
    ADD COLUMN kafka_header_values bytea[];
-- Replay and restore read the archive in per-partition offset order.
CREATE INDEX event_archive_position ON event_archive (kafka_topic, kafka_partition, kafka_offset);

-- Attribution credit per deal, model and touch, as a replay computed it (leadledger replay
-- --attribution, leadledger diff). Only replay schemas fill it; the live reports recompute
-- credit from the archive every time.
CREATE TABLE attribution_credit (
    model          text    NOT NULL,  -- model name
    model_version  integer NOT NULL,
    deal_id        text    NOT NULL,
    lead_id        text    NOT NULL,
    -- '' for the unattributed remainder of a deal no touch preceded
    touch_event_id text    NOT NULL,
    campaign_id    text,
    channel        text,
    positions      text    NOT NULL,
    status         text    NOT NULL,  -- won | open | lost
    currency       text    NOT NULL,
    share          numeric NOT NULL,
    amount         numeric NOT NULL,
    PRIMARY KEY (model, deal_id, touch_event_id)
);

-- What a replay schema was built from (one row, written by the replay): the as-of time of its
-- credit, so ``leadledger diff`` computes the live credit at the same instant.
CREATE TABLE replay_run (
    source        text        NOT NULL,
    as_of         timestamptz,
    credit_as_of  timestamptz,
    records       bigint      NOT NULL,
    written_at    timestamptz NOT NULL DEFAULT now()
);
