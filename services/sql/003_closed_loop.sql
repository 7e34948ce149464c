-- Closed loop: who holds which email key (a keyed HMAC, never the address), the duplicate
-- pairs found, and the re-handoffs of suppressed leads. Written by the processor in the same
-- transaction as the batch and its checkpoint; rows are facts, never updated.

CREATE TABLE lead_identity (
    email_key   text        NOT NULL,
    lead_id     text        NOT NULL,
    first_seen  timestamptz NOT NULL,
    event_id    text        NOT NULL,
    PRIMARY KEY (email_key, lead_id)
);
CREATE INDEX lead_identity_lead ON lead_identity (lead_id);

CREATE TABLE lead_duplicate (
    original_id           text        NOT NULL,
    duplicate_id          text        NOT NULL,
    email_key             text        NOT NULL,
    original_first_seen   timestamptz NOT NULL,
    duplicate_first_seen  timestamptz NOT NULL,
    derived_event_id      text        NOT NULL,
    PRIMARY KEY (original_id, duplicate_id)
);
CREATE INDEX lead_duplicate_duplicate ON lead_duplicate (duplicate_id);

CREATE TABLE handoff_suppression (
    lead_id          text        NOT NULL,
    event_id         text        NOT NULL,
    event_time       timestamptz NOT NULL,
    event_source     text        NOT NULL,
    to_stage         text        NOT NULL,
    action           text        NOT NULL,
    suppressed_by    text        NOT NULL,
    reason_code      text        NOT NULL,
    disqualified_at  timestamptz NOT NULL,
    lead_source      text,
    campaign_id      text,
    channel          text,
    PRIMARY KEY (lead_id, event_id)
);
CREATE INDEX handoff_suppression_time ON handoff_suppression (event_time);

-- The merged view of a survivor gathers the leads merged into it.
CREATE INDEX lead_current_merged_into ON lead_current (merged_into) WHERE merged_into IS NOT NULL;
