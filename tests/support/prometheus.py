"""A real Prometheus server (Debian's package) for tests, owned and stopped by PID.

Its configuration is the deployment's own ``deploy/prometheus/prometheus.yml`` with only
what must differ on one machine replaced: compose DNS names become loopback ports, and
scrapes and rule evaluations run every second so a short test sees many samples.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from services.embedded.procs import free_port, spawn_logged, stop_process, wait_for_port
from tests.support.tools import ROOT, tool

DEPLOY_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"


def local_config(ports: Mapping[str, int], interval: str = "1s") -> dict[str, Any]:
    """The deployment config with every job's targets on 127.0.0.1 (``ports``: job -> port).

    Raises if the deployment has a job with no local port, so a new scrape job cannot be
    left out of the end-to-end test by accident.
    """
    config: dict[str, Any] = yaml.safe_load(DEPLOY_CONFIG.read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    if jobs != set(ports):
        raise ValueError(f"jobs in {DEPLOY_CONFIG}: {sorted(jobs)}; given ports: {sorted(ports)}")
    config["global"].update(scrape_interval=interval, evaluation_interval=interval)
    config["rule_files"] = [
        str(path)
        for pattern in config["rule_files"]
        for path in sorted(DEPLOY_CONFIG.parent.glob(pattern))
    ]
    for job in config["scrape_configs"]:
        for key in ("dns_sd_configs", "static_configs"):
            job.pop(key, None)
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    return config


@contextmanager
def running_prometheus(
    workdir: Path, ports: Mapping[str, int], own_job: str = "prometheus"
) -> Iterator[str]:
    """Start Prometheus scraping ``ports``; yield its base URL; stop it by PID afterwards.

    ``own_job`` is the deployment's self-scrape job: it gets the port Prometheus listens on.
    """
    port = free_port()
    config = local_config({**ports, own_job: port})
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    log = workdir / "prometheus.log"
    proc = spawn_logged(
        [
            tool("prometheus"),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ],
        log,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=30, proc=proc, log_path=log, what="prometheus")
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc)
        yield url
    finally:
        stop_process(proc, sig=signal.SIGTERM, timeout=20)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if client.get(f"{url}/-/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"prometheus at {url} did not become ready")


def query(client: httpx.Client, expr: str) -> list[dict[str, Any]]:
    """Instant query; raises AssertionError with Prometheus' message if it does not parse."""
    body = client.get("/api/v1/query", params={"query": expr}).json()
    assert body["status"] == "success", f"{expr}\n{body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result
