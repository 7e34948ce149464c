"""Every Prometheus metric leadledger exports, declared once.

Labels are bounded: stages and teams come from the funnel, event types from the catalog,
reasons from ``RejectReason``. Never a lead id, owner or campaign id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

#: 1 minute .. 7 days: handoffs are judged in minutes when healthy and in days when broken.
HANDOFF_BUCKETS = (
    MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR,
    DAY, 2 * DAY, 3 * DAY, 7 * DAY,
)  # fmt: skip
#: 1 minute .. 90 days: stages last from minutes (mql) to months (opportunity).
STAGE_BUCKETS = (
    MINUTE, 15 * MINUTE, HOUR, 4 * HOUR, DAY, 3 * DAY, 7 * DAY, 14 * DAY, 30 * DAY,
    60 * DAY, 90 * DAY,
)  # fmt: skip

HANDOFF_LATENCY = Histogram(
    "leadledger_handoff_latency_seconds",
    "Time from entering the handoff stage (MQL) to the first sales action, in event time.",
    ["action"],
    buckets=HANDOFF_BUCKETS,
)
HANDOFF_SYSTEM_DELAY = Histogram(
    "leadledger_handoff_system_delay_seconds",
    "Part of the handoff spent before the lead had an owner (routing, assignment).",
    buckets=HANDOFF_BUCKETS,
)
HANDOFF_HUMAN_DELAY = Histogram(
    "leadledger_handoff_human_delay_seconds",
    "Part of the handoff from assignment to the first sales action (rep response).",
    buckets=HANDOFF_BUCKETS,
)
STAGE_TRANSITIONS = Counter(
    "leadledger_stage_transitions_total",
    "Stage transitions applied to the read model, by from and to stage.",
    ["from_stage", "to_stage"],
)
TIME_IN_STAGE = Histogram(
    "leadledger_time_in_stage_seconds",
    "Time a lead spent in a stage, observed when it leaves the stage.",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
LEADS = Gauge(
    "leadledger_leads",
    "Leads currently in each stage, read from the lead_current read model.",
    ["stage"],
)
EVENTS_PROCESSED = Counter(
    "leadledger_events_processed_total",
    "Input records accepted into the read models, by event type.",
    ["type"],
)
EVENTS_REJECTED = Counter(
    "leadledger_events_rejected_total",
    "Inputs rejected, by reason and by the component (api or processor) that rejected them.",
    ["reason", "component"],
)
EVENTS_OUT_OF_ORDER = Counter(
    "leadledger_events_out_of_order_total",
    "Accepted events older than a later event of the same lead, placed by event time.",
    ["type"],
)
EVENT_TIME_LAG = Gauge(
    "leadledger_processor_event_time_lag_seconds",
    "Wall-clock age of the newest event time the processor has applied.",
)
NEWEST_EVENT_TIME = Gauge(
    "leadledger_processor_newest_event_timestamp_seconds",
    "Unix time of the newest event time the processor has applied.",
)
ASSIGNED_PARTITIONS = Gauge(
    "leadledger_processor_assigned_partitions",
    "Partitions of the events topic assigned to this worker by the consumer group.",
)
CONSUMER_LAG = Gauge(
    "leadledger_processor_consumer_lag_records",
    "Records on the events topic not yet applied, per assigned partition of this worker.",
    ["partition"],
)
BATCH_SIZE = Histogram(
    "leadledger_processor_batch_events",
    "Records per processed batch (one Postgres transaction each).",
    buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000),
)
BATCH_DURATION = Histogram(
    "leadledger_processor_batch_duration_seconds",
    "Wall time to decode, fold and commit one batch.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
HTTP_REQUESTS = Counter(
    "leadledger_http_requests_total",
    "HTTP API requests, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "leadledger_http_request_duration_seconds",
    "HTTP API request latency, by route template and method.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

# --- SLA (services/processor/sla_observe.py; the gauges from Postgres in the API process) ---
# policy labels come from the SLA config, team labels from its ``teams`` list (else "other").

SLA_BREACHES = Counter(
    "leadledger_sla_breaches_total",
    "SLA timers whose limit passed while running (sla.breached), in event time.",
    ["policy", "team"],
)
SLA_MET = Counter(
    "leadledger_sla_met_total",
    "SLA timers stopped by their stop condition within the limit (on-time sla.met).",
    ["policy", "team"],
)
SLA_EVENTS = Counter(
    "leadledger_sla_events_total",
    "Derived sla.* events produced to the derived topic, by type and policy.",
    ["type", "policy"],
)
TIME_TO_FIRST_TOUCH = Histogram(
    "leadledger_time_to_first_touch_seconds",
    "MQL to first sales action in the first-touch policy's clock (business) time, at sla.met.",
    ["team"],
    buckets=HANDOFF_BUCKETS,
)
SLA_OPEN_TIMERS = Gauge(
    "leadledger_sla_open_timers",
    "Running SLA timers by event-time status (ok, warning, breached), from sla_timer.",
    ["policy", "status"],
)
SLA_OVERDUE = Gauge(
    "leadledger_sla_overdue_timers",
    "Live only, wall clock: running SLA timers whose deadline is before now(). Not event time.",
    ["policy"],
)
TICKS = Counter(
    "leadledger_processor_ticks_total",
    "Tick records applied: stream-time advances of quiet partitions (not events).",
)

# --- closed loop (services/processor/closed_loop_observe.py) ---
# source and campaign labels come from the funnel's closed_loop allow-lists (else "other").

HANDOFFS_SUPPRESSED = Counter(
    "leadledger_handoffs_suppressed_total",
    "Re-handoffs of suppressed leads (handoff.suppressed), by lead source, campaign and action.",
    ["source", "campaign", "action"],
)
DUPLICATES_DETECTED = Counter(
    "leadledger_duplicates_detected_total",
    "Lead pairs found to share a normalized email (lead.duplicate_detected).",
)
