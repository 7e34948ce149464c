"""End to end: a real Prometheus scrapes `leadledger up --demo`, and every dashboard panel,
template variable and alert rule is run against what it scraped.

The queries are read from deploy/grafana/dashboards/*.json and deploy/prometheus/rules/*.yml,
never listed here. A few bad and late inputs are sent on purpose, as upstream systems do,
so the rejection and out-of-order series exist.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from deploy.queries import (
    POSTGRES,
    PROMETHEUS,
    dashboard_targets,
    dashboard_variables,
    rule_expressions,
    substitute,
    with_bool_comparisons,
)
from deploy.render_dashboards import render_dashboards
from services.embedded.procs import free_port, stop_process, wait_for_port
from tests.support.prometheus import query, running_prometheus
from tests.support.tools import ROOT, tool

DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
READER_SQL = ROOT / "deploy" / "postgres" / "grafana-reader.sql"
JOBS = {"leadledger-api", "leadledger-processor", "prometheus"}
#: Grafana's values for a 1 s scrape interval and a few minutes' range; team and stage "All".
VARIABLES = {
    "team": ".*",
    "stage": ".*",
    "sales_team": ".*",
    "__rate_interval": "15s",
    "__interval": "1s",
    "__range": "10m",
}
#: Set to a folder (e.g. docs/dashboards) to keep the rendered PNGs there.
PNG_DIR = os.environ.get("LEADLEDGER_DASHBOARD_PNG_DIR")
#: Seconds of scraping before the checks; longer runs draw fuller pictures for the docs.
OBSERVE_SECONDS = float(os.environ.get("LEADLEDGER_OBSERVE_SECONDS", "20"))


@dataclass(frozen=True)
class Observed:
    prometheus: str
    api: str
    processor: str
    database_url: str
    kafka: str
    started: datetime


def _event(
    event_id: str, type_: str, lead: str, at: datetime, data: dict[str, str], version: int = 1
) -> dict[str, object]:
    return {
        "specversion": "1.0", "id": event_id, "source": "crm", "type": type_, "subject": lead,
        "time": at.isoformat().replace("+00:00", "Z"), "schemaversion": version, "data": data,
    }  # fmt: skip


def _send_inputs(api: str, kafka: str) -> None:
    """What upstream systems do on a bad day: a late event, an invalid one, raw garbage."""
    now = datetime.now(UTC)
    headers = {"Authorization": "Bearer dev-token-crm"}
    created = _event("obs-1", "lead.created", "OBS-1", now, {"stage": "lead"})
    late = _event("obs-2", "touchpoint.recorded", "OBS-1", now - timedelta(hours=1),
                  {"campaign_id": "c-1", "channel": "web", "touch_type": "form_fill"})  # fmt: skip
    invalid = _event("obs-3", "lead.created", "OBS-2", now, {"stage": "no-such-stage"})
    with httpx.Client(base_url=api, headers=headers, timeout=10) as client:
        assert client.post("/v1/events", json=created).status_code == 202
        assert client.post("/v1/events", json=late).status_code == 202
        assert 400 <= client.post("/v1/events", json=invalid).status_code < 500
        client.get("/v1/leads/OBS-1")
        # The closed loop: an MQL disqualified for a suppressing reason comes back to MQL,
        # so the suppressed re-handoff panel has a series.
        loop = [
            _event("obs-4", "lead.created", "OBS-4", now, {"stage": "mql", "lead_source": "web"}),
            _event("obs-5", "lead.disqualified", "OBS-4", now + timedelta(minutes=1),
                   {"from_stage": "mql", "reason_code": "poor_fit"}),
            _event("obs-6", "lead.recycled", "OBS-4", now + timedelta(minutes=2),
                   {"from_stage": "disqualified", "reason": "retry"}),
            _event("obs-7", "lead.stage_changed", "OBS-4", now + timedelta(minutes=3),
                   {"from_stage": "recycled", "to_stage": "mql"}, version=2),
        ]  # fmt: skip
        for event in loop:
            assert client.post("/v1/events", json=event).status_code == 202

    async def garbage() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False)
        await producer.start()
        try:
            await producer.send_and_wait("leadledger.events", b"{not json", key=b"OBS-3")
        finally:
            await producer.stop()

    asyncio.run(garbage())


def _traffic(api: str, tick: int) -> None:
    """A trickle of ordinary API use, so the HTTP panels have rates to show."""
    headers = {"Authorization": "Bearer dev-token-crm"}
    with httpx.Client(base_url=api, headers=headers, timeout=10) as client:
        client.get("/v1/leads/OBS-1")
        if tick % 5 == 0:
            at = datetime.now(UTC)
            data = {"campaign_id": "c-1", "channel": "web", "touch_type": "ad_click"}
            client.post("/v1/events", json=_event(f"obs-t{tick}", "touchpoint.recorded",
                                                  "OBS-1", at, data))  # fmt: skip


def _ready(client: httpx.Client) -> bool:
    checks = [
        'min(up{job=~"leadledger-.*|prometheus"}) == 1',
        "sum(leadledger_handoff_latency_seconds_count) > 0",
        'sum(leadledger_events_rejected_total{component="processor"}) > 0',
        'sum(leadledger_events_rejected_total{component="api"}) > 0',
        "sum(leadledger_events_out_of_order_total) > 0",
    ]
    return all(query(client, check) for check in checks)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    """The demo stack on free ports, scraped every second by Prometheus until data is in."""
    tmp = tmp_path_factory.mktemp("observability")
    api_port, web_port, kafka_port = free_port(), free_port(), free_port()
    database_url = f"postgresql://postgres@127.0.0.1:{free_port()}/leadledger"
    env = dict(os.environ)
    env.update(
        LEADLEDGER_DATA_DIR=str(tmp / "data"),
        LEADLEDGER_API_PORT=str(api_port),
        LEADLEDGER_PROCESSOR_WEB_PORT=str(web_port),
        LEADLEDGER_KAFKA_BOOTSTRAP=f"127.0.0.1:{kafka_port}",
        LEADLEDGER_DATABASE_URL=database_url,
        LEADLEDGER_BROKER_SESSION_TIMEOUT_SECONDS="4",
        LEADLEDGER_BROKER_REBALANCE_TIMEOUT_SECONDS="8",
    )
    started = datetime.now(UTC)
    with ExitStack() as stack, (tmp / "up.out").open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "services", "up", "--demo"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
        )  # fmt: skip
        stack.callback(stop_process, up, sig=signal.SIGINT, timeout=60)
        # The ports belong to up's children, so up itself is not passed as their owner.
        for port in (api_port, web_port):
            wait_for_port("127.0.0.1", port, timeout=90, log_path=tmp / "up.out")
        assert up.poll() is None, (tmp / "up.out").read_text()
        ports = {"leadledger-api": api_port, "leadledger-processor": web_port}
        prometheus = stack.enter_context(running_prometheus(tmp / "prometheus", ports))
        api = f"http://127.0.0.1:{api_port}"
        _send_inputs(api, f"127.0.0.1:{kafka_port}")
        deadline = time.monotonic() + 120
        tick = 0
        with httpx.Client(base_url=prometheus, timeout=10) as client:
            while not _ready(client):
                assert up.poll() is None, (tmp / "up.out").read_text()
                assert time.monotonic() < deadline, "no complete data within 2 minutes"
                _traffic(api, tick := tick + 1)
                time.sleep(1)
        # Enough samples for every rate window; bounded, and only to our own loopback API.
        observe_until = time.monotonic() + OBSERVE_SECONDS
        while time.monotonic() < observe_until:
            _traffic(api, tick := tick + 1)
            time.sleep(1)
        yield Observed(prometheus, api, f"http://127.0.0.1:{web_port}", database_url,
                       f"127.0.0.1:{kafka_port}", started)  # fmt: skip


def test_every_scrape_target_of_the_deployment_config_is_up(observed: Observed) -> None:
    with httpx.Client(base_url=observed.prometheus, timeout=10) as client:
        active = client.get("/api/v1/targets").json()["data"]["activeTargets"]
    assert {t["labels"]["job"] for t in active} == JOBS
    assert [t["scrapeUrl"] for t in active if t["health"] != "up"] == []


def test_every_dashboard_and_alert_expression_returns_series_from_real_scrapes(
    observed: Observed,
) -> None:
    exprs = {
        f"{t.dashboard} / {t.panel}": substitute(t.query, VARIABLES)
        for path in DASHBOARDS
        for t in dashboard_targets(path)
        if t.datasource == PROMETHEUS
    }
    exprs |= {
        f"{v.dashboard} / ${v.name}": substitute(v.promql, VARIABLES)
        for path in DASHBOARDS
        for v in dashboard_variables(path)
        if v.promql
    }
    # Alert conditions return nothing while healthy; "> bool" keeps their series.
    exprs |= {f"rule: {e}": with_bool_comparisons(e) for e in rule_expressions(RULES)}
    assert len(exprs) > 30
    with httpx.Client(base_url=observed.prometheus, timeout=10) as client:
        empty = [name for name, expr in exprs.items() if not query(client, expr)]
    assert empty == [], "expressions without a series"


def test_dashboard_expressions_parse_for_every_team_choice(observed: Observed) -> None:
    teams = {"marketing": "subscriber|lead|mql|nurture|recycled", "sales": "sal|sql|customer"}
    with httpx.Client(base_url=observed.prometheus, timeout=10) as client:
        for team in teams.values():
            for path in DASHBOARDS:
                for t in dashboard_targets(path):
                    if t.datasource == PROMETHEUS:
                        query(client, substitute(t.query, {**VARIABLES, "team": team}))


async def test_every_dashboard_sql_query_runs_on_the_read_models_as_the_grafana_reader(
    observed: Observed,
) -> None:
    admin = await asyncpg.connect(observed.database_url)
    try:
        await admin.execute(READER_SQL.read_text().replace(":'reader_password'", "'reader'"))
    finally:
        await admin.close()
    reader_url = observed.database_url.replace("postgres@", "grafana_reader:reader@")
    end = datetime.now(UTC)
    reader = await asyncpg.connect(reader_url)
    try:
        for path in DASHBOARDS:
            for t in dashboard_targets(path):
                if t.datasource != POSTGRES:
                    continue
                sql = substitute(t.query, VARIABLES, start=end - timedelta(days=7), end=end)
                rows = await reader.fetch(sql)
                assert rows, f"{t.dashboard} / {t.panel} returned no rows"
        with pytest.raises(asyncpg.PostgresError):
            await reader.execute("DELETE FROM lead_current")
    finally:
        await reader.close()


def test_every_alert_rule_is_evaluated_by_prometheus_without_error(observed: Observed) -> None:
    with httpx.Client(base_url=observed.prometheus, timeout=10) as client:
        groups = client.get("/api/v1/rules").json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(rule_expressions(RULES))
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


def test_promtool_check_metrics_finds_no_problem_in_either_scrape(observed: Observed) -> None:
    for url in (f"{observed.api}/metrics", f"{observed.processor}/metrics"):
        text = httpx.get(url, timeout=10).text
        done = subprocess.run(
            [tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{url}: {done.stdout}{done.stderr}"
        assert done.stdout + done.stderr == "", url


def test_each_dashboard_row_renders_to_a_png_from_real_query_range_data(
    observed: Observed, tmp_path: Path
) -> None:
    out = Path(PNG_DIR) if PNG_DIR else tmp_path / "png"
    end = datetime.now(UTC)
    written = render_dashboards(
        observed.prometheus, out, window=(observed.started, end), variables=VARIABLES,
        database_url=observed.database_url, sql_window=(end - timedelta(days=3), end),
    )  # fmt: skip
    rows = {(p.name, t.row) for p in DASHBOARDS for t in dashboard_targets(p)}
    assert len(written) == len(rows)
    assert all(path.stat().st_size > 10_000 for path in written)
