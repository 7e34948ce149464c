"""Prometheus config, alert rules and their promtool unit tests (deploy/prometheus)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from deploy.grafana.sla_limits import load_sla_limits
from deploy.queries import metric_names, rule_expressions
from services import metrics
from tests.support.tools import tool

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))
RUNBOOKS = ROOT / "docs" / "runbooks.md"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def _alerts() -> list[dict[str, Any]]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def test_promtool_check_rules_passes_without_a_lint_warning() -> None:
    done = _promtool("check", "rules", "--lint=all", "--lint-fatal", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    assert "WARNING" not in done.stdout + done.stderr


def test_promtool_check_config_accepts_the_compose_prometheus_config() -> None:
    done = _promtool("check", "config", "--lint=all", "--lint-fatal", str(PROM / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr


def test_promtool_test_rules_passes_for_every_alert_test_file() -> None:
    assert TEST_FILES
    done = _promtool("test", "rules", *map(str, TEST_FILES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stdout + done.stderr


def test_every_alert_has_a_case_that_fires_and_a_case_that_must_stay_silent() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - fires == set(), "alerts without a firing test"
    assert names - silent == set(), "alerts without a must-not-fire test"


def test_every_alert_has_a_summary_a_description_and_a_runbook_section_in_docs() -> None:
    anchors = {
        re.sub(r"[^a-z0-9]", "", m.lower())
        for m in re.findall(r"^#+\s+(.+)$", RUNBOOKS.read_text(), re.M)
    }
    for alert in _alerts():
        notes = alert["annotations"]
        assert notes["summary"], alert["alert"]
        assert notes["description"], alert["alert"]
        assert notes["runbook_url"] == f"docs/runbooks.md#{alert['alert'].lower()}"
        assert alert["alert"].lower() in anchors, f"no runbook section for {alert['alert']}"
        assert alert["labels"]["severity"] in {"warning", "critical"}


def test_alerts_query_only_metrics_the_service_exports() -> None:
    exported = {m._name for m in vars(metrics).values() if hasattr(m, "_name")}
    exported |= {"up"}
    for expr in rule_expressions(RULE_FILES):
        for name in metric_names(expr):
            base = re.sub(r"_(bucket|count|sum|total)$", "", name)
            assert base in exported, f"{name} in {expr!r} is not an exported metric"


def test_the_sla_alerts_use_the_first_touch_limit_of_the_sla_configuration() -> None:
    limit = load_sla_limits()["mql_first_touch"].limit
    # The breach rate reads the histogram bucket at the limit, so the limit must be a bucket.
    assert limit in metrics.HANDOFF_BUCKETS
    alerts = {a["alert"]: a["expr"] for a in _alerts()}
    assert f'le="{limit}"' in alerts["LeadledgerHandoffSlaBreachRateHigh"]
    assert re.search(rf">\s*{int(limit)}\s*$", alerts["LeadledgerHandoffP90AboveSla"].strip())
