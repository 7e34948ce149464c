-- Cheaper batch commits (issue 6).

-- A record without headers is archived with empty header arrays; the processor leaves the
-- two columns out of its COPY for such records (asyncpg encodes an empty array slower than
-- the other eleven values together), so the default must be that same empty array.
ALTER TABLE event_archive
    ALTER COLUMN kafka_header_keys SET DEFAULT '{}',
    ALTER COLUMN kafka_header_values SET DEFAULT '{}';

-- Room on each page for the new version of an updated row: an update that changes no
-- indexed column then stays on its page (HOT) and writes no index entries. Most updates of
-- these tables close a stay or a handoff (exited_at, seconds, action...), never a key.
-- Applies to pages written from now on.
ALTER TABLE lead_stage_history SET (fillfactor = 70);
ALTER TABLE lead_handoff SET (fillfactor = 70);

-- One row of lead_current, lead_stage_history and lead_handoff, as the processor sends the
-- rows it updates: one array of these instead of one array per column, which the driver
-- type-checks element by element. Field order: the store's LEAD_COLUMNS, STAGE_COLUMNS and
-- HANDOFF_COLUMNS (services/store/projection_store.py).
CREATE TYPE lead_current_row AS (
    lead_id                 text,
    current_stage           text,
    current_team            text,
    highest_stage           text,
    owner_id                text,
    owner_team              text,
    created_at              timestamptz,
    entered_current_at      timestamptz,
    first_event_at          timestamptz,
    last_event_at           timestamptz,
    event_count             integer,
    merged_into             text,
    handoff_started_at      timestamptz,
    handoff_action          text,
    handoff_latency_seconds double precision
);
CREATE TYPE lead_stage_row AS (
    lead_id     text,
    seq         integer,
    stage       text,
    team        text,
    entered_at  timestamptz,
    exited_at   timestamptz,
    seconds     double precision,
    from_stage  text,
    reason      text,
    entered_via text
);
CREATE TYPE lead_handoff_row AS (
    lead_id              text,
    seq                  integer,
    started_at           timestamptz,
    start_event_id       text,
    assigned_at          timestamptz,
    action               text,
    action_at            timestamptz,
    action_event_id      text,
    latency_seconds      double precision,
    system_delay_seconds double precision,
    human_delay_seconds  double precision
);
