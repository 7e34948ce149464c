"""The Pipeline health dashboard: events, rejections, lag, the HTTP API and processes."""

from __future__ import annotations

from deploy.grafana import panels as p

API_ROUTES = 'route!~"/metrics|/healthz"'
APP_JOBS = 'job=~"leadledger-.*"'


def pipeline_dashboard() -> p.Json:
    rejected = "sum(rate(leadledger_events_rejected_total[$__rate_interval]))"
    processed = "sum(rate(leadledger_events_processed_total[$__rate_interval]))"
    requests = f"sum(rate(leadledger_http_requests_total{{{API_ROUTES}}}[{p.RATE}]))"

    def api_ratio(status: str) -> str:
        return (f'(sum(rate(leadledger_http_requests_total{{status=~"{status}",{API_ROUTES}}}'
                f"[{p.RATE}])) or vector(0)) / {requests}")  # fmt: skip

    ratio_lines = p.thresholds(("green", None), ("red", 0.05))
    rows = [
        p.row(
            "Events",
            [
                p.panel(
                    "timeseries",
                    "Events processed by type",
                    [
                        p.prom(
                            f"sum by (type) (rate(leadledger_events_processed_total[{p.RATE}]))",
                            "{{type}}",
                        )
                    ],
                    unit="ops",
                    width=8,
                ),
                p.panel(
                    "timeseries",
                    "Events rejected by reason",
                    [
                        p.prom(
                            "sum by (reason, component) (rate(leadledger_events_rejected_total"
                            "[$__rate_interval]))",
                            "{{component}}: {{reason}}",
                        )
                    ],
                    unit="ops",
                    width=8,
                ),
                p.panel(
                    "timeseries",
                    "Rejected share of input",
                    [
                        p.prom(
                            f"({rejected} or vector(0))"
                            f" / ({processed} + ({rejected} or vector(0)))",
                            "rejected",
                        )
                    ],
                    unit="percentunit",
                    width=8,
                    threshold_steps=ratio_lines,
                ),
            ],
        ),
        p.row(
            "Lag",
            [
                p.panel(
                    "timeseries",
                    "Event-time lag",
                    [
                        p.prom(
                            "max(leadledger_processor_event_time_lag_seconds)",
                            "newest applied event age",
                        )
                    ],
                    unit="s",
                    threshold_steps=p.thresholds(("green", None), ("red", 900)),
                    description="Wall-clock age of the newest applied event time. It also grows "
                    "when upstream is quiet; consumer lag tells the two apart.",
                ),
                p.panel(
                    "timeseries",
                    "Consumer lag per partition",
                    [
                        p.prom(
                            "sum by (partition) (leadledger_processor_consumer_lag_records)",
                            "partition {{partition}}",
                        )
                    ],
                    unit="short",
                    description="Records on the events topic not yet applied, per partition.",
                ),
            ],
        ),
        p.row(
            "HTTP API",
            [
                p.panel(
                    "timeseries",
                    "Requests by route and status",
                    [
                        p.prom(
                            "sum by (route, status) "
                            f"(rate(leadledger_http_requests_total[{p.RATE}]))",
                            "{{route}} {{status}}",
                        )
                    ],
                    unit="reqps",
                    width=8,
                ),
                p.panel(
                    "timeseries",
                    "Error ratio",
                    [
                        p.prom(api_ratio("5.."), "5xx"),
                        p.prom(api_ratio("4.."), "4xx"),
                    ],
                    unit="percentunit",
                    width=8,
                    threshold_steps=ratio_lines,
                    description="Scrapes and health checks excluded.",
                ),
                p.panel(
                    "timeseries",
                    "Latency p50 / p99 by route",
                    [
                        p.prom(
                            p.quantile(q, "leadledger_http_request_duration_seconds", "route, "),
                            f"p{round(q * 100)} {{{{route}}}}",
                        )
                        for q in (0.5, 0.99)
                    ],
                    unit="s",
                    width=8,
                ),
            ],
        ),
        p.row(
            "Processes",
            [
                p.panel(
                    "stat",
                    "Targets up",
                    [p.prom("up", "{{job}} {{instance}}", instant=True)],
                    unit="none",
                    width=6,
                    threshold_steps=p.thresholds(("red", None), ("green", 1)),
                ),
                p.panel(
                    "timeseries",
                    "CPU",
                    [
                        p.prom(
                            f"rate(process_cpu_seconds_total{{{APP_JOBS}}}[{p.RATE}])",
                            "{{job}} {{instance}}",
                        )
                    ],
                    unit="percentunit",
                    width=9,
                    description="CPU seconds per second: 100% is one full core.",
                ),
                p.panel(
                    "timeseries",
                    "Resident memory",
                    [
                        p.prom(
                            f"process_resident_memory_bytes{{{APP_JOBS}}}", "{{job}} {{instance}}"
                        )
                    ],
                    unit="bytes",
                    width=9,
                ),
            ],
        ),
    ]
    return p.dashboard(
        "leadledger-pipeline", "leadledger / Pipeline health",
        "Events in and rejected, lag, the HTTP API, and process resources.",
        rows, time_from="now-1h",
    )  # fmt: skip
