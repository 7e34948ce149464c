"""The README's run command: `leadledger up --demo` on the embedded default, then Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from services.embedded.procs import free_port, pid_is_alive, stop_process

HANDOFF_COUNT = re.compile(
    r'^leadledger_handoff_latency_seconds_count\{action="\w+"\} (\S+)$', re.M
)


def handoff_observations(metrics_text: str) -> float:
    return sum(float(v) for v in HANDOFF_COUNT.findall(metrics_text))


def test_up_demo_shows_handoff_latency_within_a_minute_and_ctrl_c_stops_every_child(
    tmp_path: Path,
) -> None:
    api_port, web_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        LEADLEDGER_DATA_DIR=str(tmp_path / "data"),
        LEADLEDGER_API_PORT=str(api_port),
        LEADLEDGER_PROCESSOR_WEB_PORT=str(web_port),
        LEADLEDGER_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
        LEADLEDGER_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/leadledger",
        LEADLEDGER_BROKER_SESSION_TIMEOUT_SECONDS="4",
        LEADLEDGER_BROKER_REBALANCE_TIMEOUT_SECONDS="8",
    )
    out_path = tmp_path / "up.out"
    with out_path.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "services", "up", "--demo"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    try:
        started = time.monotonic()
        observed = 0.0
        with httpx.Client(timeout=5) as client:
            while time.monotonic() - started < 60 and up.poll() is None:
                try:
                    text = client.get(f"http://127.0.0.1:{web_port}/metrics").text
                    observed = handoff_observations(text)
                except httpx.TransportError:
                    pass
                if observed > 0:
                    break
                time.sleep(1)
            output = out_path.read_text()
            assert observed > 0, f"no handoff latency within a minute:\n{output}"
            lead = re.search(r"/v1/leads/(\S+)", output)
            assert lead is not None, output
            answer = client.get(f"http://127.0.0.1:{api_port}/v1/leads/{lead.group(1)}")
            assert answer.status_code == 200, answer.text
            assert answer.json()["lead_id"] == lead.group(1)
        children = [int(p) for p in re.findall(r"\(pid (\d+)", output)]
        assert len(children) == 5, output  # postgres, tansu, processor, api, simulator
        up.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert up.wait(timeout=60) == 0, out_path.read_text()
        deadline = time.monotonic() + 10
        while any(pid_is_alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in children if pid_is_alive(p)], out_path.read_text()
    finally:
        stop_process(up, sig=signal.SIGINT, timeout=60)
