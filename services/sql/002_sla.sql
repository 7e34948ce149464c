-- SLA read models. The processor writes them in the same transaction as the batch's lead
-- rows and partition checkpoints, so the emitted flags below always match what was produced
-- to the derived topic before that commit.

-- One row per timer: a policy's run on a lead, named by the event that started it (cycle).
CREATE TABLE sla_timer (
    lead_id          text        NOT NULL,
    policy           text        NOT NULL,
    cycle_id         text        NOT NULL,
    -- Partition of the lead's events: the processor rebuilds each partition's queue of
    -- pending thresholds from the rows with a next_fire_at.
    kafka_partition  integer     NOT NULL,
    started_at       timestamptz NOT NULL,
    warn_at          timestamptz NOT NULL,
    deadline         timestamptz NOT NULL,
    escalate_at      timestamptz[] NOT NULL,
    stopped_at       timestamptz,
    -- NULL while running; 'met' or 'cancelled' once stopped.
    outcome          text,
    stop_reason      text,
    stop_event_id    text,
    owner_id         text,
    team             text,
    assigned_at      timestamptz,
    limit_seconds    double precision NOT NULL,
    -- Counted (business) seconds from start to stop, once stopped.
    elapsed_seconds  double precision,
    -- ok | warning | breached while running (event time), met | cancelled when stopped.
    status           text        NOT NULL,
    -- Tags of the sla.* events produced for it: started, warning, breached, escalated-N, ...
    emitted          text[]      NOT NULL,
    next_fire_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lead_id, policy, cycle_id)
);
CREATE INDEX sla_timer_pending ON sla_timer (kafka_partition, next_fire_at)
    WHERE next_fire_at IS NOT NULL;
CREATE INDEX sla_timer_open ON sla_timer (deadline) WHERE outcome IS NULL;
CREATE INDEX sla_timer_started ON sla_timer (started_at);

-- Facts of the marketing-side volume SLA (projections/sla_volume.py), rewritten per lead.
CREATE TABLE sla_volume_fact (
    lead_id   text        NOT NULL,
    event_id  text        NOT NULL,
    kind      text        NOT NULL,  -- 'mql' or 'assignment'
    at        timestamptz NOT NULL,
    month     text        NOT NULL,  -- YYYY-MM in the volume target's time zone
    team      text,
    rep_id    text,
    PRIMARY KEY (lead_id, event_id, kind)
);
CREATE INDEX sla_volume_fact_month ON sla_volume_fact (month, kind);
