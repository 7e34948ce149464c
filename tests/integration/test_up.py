"""The README's run command: `leadledger up` on the embedded default, then Ctrl-C; again
after a restart, when the empty broker gets the archived history back; and with two workers."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

from events.catalog import LeadCreated, LeadStageChanged
from events.codec import to_obj
from events.envelope import Event, make_event
from services.embedded.procs import free_port, pid_is_alive, stop_process

HANDOFF_COUNT = re.compile(
    r'^leadledger_handoff_latency_seconds_count\{action="\w+"\} (\S+)$', re.M
)


#: A development token of the default settings; it publishes for source "crm".
CRM = {"Authorization": "Bearer dev-token-crm", "Content-Type": "application/cloudevents+json"}


def handoff_observations(metrics_text: str) -> float:
    return sum(float(v) for v in HANDOFF_COUNT.findall(metrics_text))


def up_env(tmp_path: Path, api_port: int, web_port: int) -> dict[str, str]:
    """The environment of a ``leadledger up`` of a test: its own data, ports and short
    consumer-group timeouts."""
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
    return env


def ctrl_c_stops_every_child(up: subprocess.Popen[bytes], out_path: Path, children: int) -> None:
    """Ctrl-C ends ``up`` with 0, and every child it printed a pid for is gone soon after."""
    output = out_path.read_text()
    pids = [int(p) for p in re.findall(r"\(pid (\d+)", output)]
    assert len(pids) == children, output
    up.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert up.wait(timeout=60) == 0, out_path.read_text()
    deadline = time.monotonic() + 10
    while any(pid_is_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids if pid_is_alive(p)], out_path.read_text()


def test_up_demo_shows_handoff_latency_within_a_minute_and_ctrl_c_stops_every_child(
    tmp_path: Path,
) -> None:
    api_port, web_port = free_port(), free_port()
    env = up_env(tmp_path, api_port, web_port)
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
        # postgres, tansu, processor, api, simulator
        ctrl_c_stops_every_child(up, out_path, children=5)
    finally:
        stop_process(up, sig=signal.SIGINT, timeout=60)


def _start_up(
    env: dict[str, str], out_path: Path, cwd: Path, *args: str
) -> subprocess.Popen[bytes]:
    with out_path.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services", "up", *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
        )  # fmt: skip


def _wait_for_stage(
    client: httpx.Client, up: subprocess.Popen[bytes], lead: str, stage: str, out: Path
) -> None:
    deadline = time.monotonic() + 90
    seen = None
    while time.monotonic() < deadline and up.poll() is None:
        try:
            answer = client.get(f"/v1/leads/{lead}")
            if answer.status_code == 200:
                seen = answer.json()["current_stage"]
                if seen == stage:
                    return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{lead} is in {seen!r}, not {stage!r}:\n{out.read_text()}")


def _post(client: httpx.Client, events: list[Event]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = client.post("/v1/events", content=orjson.dumps([to_obj(e) for e in events]),
                                 headers=CRM)  # fmt: skip
            assert answer.status_code == 202, answer.text
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_up_after_a_restart_puts_the_archive_back_and_new_events_are_applied(
    tmp_path: Path,
) -> None:
    api_port = free_port()
    env = up_env(tmp_path, api_port, free_port())
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    leads = [f"RESTART-{n}" for n in range(3)]
    created = [
        make_event(LeadCreated(stage="lead"), id=f"{lead}-e0", subject=lead, source="crm", time=t0)
        for lead in leads
    ]
    moved = make_event(LeadStageChanged(from_stage="lead", to_stage="mql"), id="RESTART-0-e1",
                       subject=leads[0], source="crm", time=t0 + timedelta(hours=1))  # fmt: skip
    first, second = tmp_path / "up-1.out", tmp_path / "up-2.out"
    with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=5) as client:
        up = _start_up(env, first, tmp_path)
        try:
            _post(client, created)
            for lead in leads:
                _wait_for_stage(client, up, lead, "lead", first)
        finally:
            stop_process(up, sig=signal.SIGINT, timeout=60)
        assert up.returncode == 0, first.read_text()

        # The embedded broker comes back empty; the archive and checkpoints are still there.
        up = _start_up(env, second, tmp_path)
        try:
            _post(client, [moved])
            # Without the restore this record would land at an offset the checkpoint already
            # covers and be skipped as a redelivery.
            _wait_for_stage(client, up, leads[0], "mql", second)
            output = second.read_text()
            assert re.search(r"restored 3 events, 0 rejected records", output), output
        finally:
            stop_process(up, sig=signal.SIGINT, timeout=60)
        assert up.returncode == 0, second.read_text()


def _two_free_ports() -> int:
    """A port that is free, and the one after it too (the second worker's)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


def _assigned(client: httpx.Client, port: int) -> float:
    """The partitions a worker says it holds (0 while it is not serving metrics yet)."""
    try:
        text = client.get(f"http://127.0.0.1:{port}/metrics").text
    except httpx.TransportError:
        return 0.0
    found = ASSIGNED.search(text)
    return float(found.group(1)) if found else 0.0


ASSIGNED = re.compile(r"^leadledger_processor_assigned_partitions (\S+)$", re.M)


def test_up_with_two_workers_splits_the_partitions_and_applies_every_lead(
    tmp_path: Path,
) -> None:
    api_port, web_port = free_port(), _two_free_ports()
    env = up_env(tmp_path, api_port, web_port)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    leads = [f"PAIR-{n}" for n in range(8)]
    created = [
        make_event(LeadCreated(stage="lead"), id=f"{lead}-e0", subject=lead, source="crm", time=t0)
        for lead in leads
    ]
    out_path = tmp_path / "up.out"
    up = _start_up(env, out_path, tmp_path, "--workers", "2")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=5) as client:
            _post(client, created)
            for lead in leads:
                _wait_for_stage(client, up, lead, "lead", out_path)
            # One consumer group: once both have joined, each holds some of the 4 partitions.
            deadline = time.monotonic() + 60
            held = [0.0, 0.0]
            while time.monotonic() < deadline and up.poll() is None:
                held = [_assigned(client, web_port), _assigned(client, web_port + 1)]
                if all(held) and sum(held) == 4:
                    break
                time.sleep(0.5)
            output = out_path.read_text()
            assert all(held), (held, output)
            assert sum(held) == 4, (held, output)
        assert re.search(rf"processor-1 +http://127.0.0.1:{web_port}/metrics", output), output
        assert re.search(rf"processor-2 +http://127.0.0.1:{web_port + 1}/metrics", output), output
        ctrl_c_stops_every_child(up, out_path, children=5)  # postgres, tansu, 2 processors, api
    finally:
        stop_process(up, sig=signal.SIGINT, timeout=60)
