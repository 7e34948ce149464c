-- Read models of the lead projection. The processor rewrites a lead's rows in the same
-- transaction as the Kafka offset checkpoint of the batch that changed it.

CREATE TABLE event_archive (
    event_id        text PRIMARY KEY,
    lead_id         text        NOT NULL,
    event_type      text        NOT NULL,
    source          text        NOT NULL,
    event_time      timestamptz NOT NULL,
    schemaversion   integer     NOT NULL,
    payload         jsonb       NOT NULL,
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    archived_at     timestamptz NOT NULL DEFAULT now()
);
-- Folding a lead reloads its history in event-time order.
CREATE INDEX event_archive_lead_time ON event_archive (lead_id, event_time);

CREATE TABLE lead_current (
    lead_id             text PRIMARY KEY,
    current_stage       text,
    current_team        text,
    highest_stage       text,
    owner_id            text,
    owner_team          text,
    created_at          timestamptz,
    entered_current_at  timestamptz,
    first_event_at      timestamptz,
    last_event_at       timestamptz,
    event_count         integer NOT NULL,
    merged_into         text,
    handoff_started_at  timestamptz,
    handoff_action      text,
    handoff_latency_seconds double precision,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lead_current_stage ON lead_current (current_stage);

CREATE TABLE lead_stage_history (
    lead_id      text    NOT NULL,
    seq          integer NOT NULL,
    stage        text    NOT NULL,
    team         text    NOT NULL,
    entered_at   timestamptz NOT NULL,
    exited_at    timestamptz,
    seconds      double precision,
    from_stage   text,
    reason       text,
    entered_via  text    NOT NULL,
    PRIMARY KEY (lead_id, seq)
);
CREATE INDEX lead_stage_history_stage_entered ON lead_stage_history (stage, entered_at);

CREATE TABLE lead_handoff (
    lead_id              text    NOT NULL,
    seq                  integer NOT NULL,
    started_at           timestamptz NOT NULL,
    start_event_id       text    NOT NULL,
    assigned_at          timestamptz,
    action               text,
    action_at            timestamptz,
    action_event_id      text,
    latency_seconds      double precision,
    system_delay_seconds double precision,
    human_delay_seconds  double precision,
    PRIMARY KEY (lead_id, seq)
);

-- Inputs that were not accepted, kept beside the dead-letter topic so audits can find them.
CREATE TABLE rejected_event (
    kafka_topic     text    NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint  NOT NULL,
    lead_id         text,
    event_id        text,
    reason          text    NOT NULL,
    detail          text    NOT NULL,
    raw             bytea   NOT NULL,
    rejected_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX rejected_event_lead ON rejected_event (lead_id);

-- Last offset applied per consumer, topic and partition, plus that partition's stream time
-- (the largest event time seen), which late-event checks and SLA timers run on.
CREATE TABLE projection_checkpoint (
    consumer        text    NOT NULL,
    kafka_topic     text    NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint  NOT NULL,
    stream_time     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, kafka_topic, kafka_partition)
);
