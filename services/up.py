"""``leadledger up``: the whole service on one machine, every process owned and stopped by PID.

Order matters: PostgreSQL and the broker first, then topics (created explicitly so Faust
never meets auto-created topics with the wrong partition count), then, in embedded mode, the
archived history back into the fresh broker (``services.up_restore``), then the processor,
the API and, for ``--demo``, the simulator.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from rich.console import Console

from services import run_async
from services.embedded.postgres import EmbeddedPostgres
from services.embedded.procs import spawn_logged, stop_process, wait_for_port
from services.embedded.tansu import TansuBroker
from services.embedded.topics import ensure_topics, leadledger_topics
from services.settings import Settings
from services.up_restore import restore_history

console = Console()


def _port(address: str, default: int) -> int:
    return urlsplit(address if "://" in address else f"//{address}").port or default


@contextmanager
def _child(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Iterator[None]:
    proc = spawn_logged(args, log_dir / f"{name}.log", env=env)
    console.print(f"  started {name} (pid {proc.pid}), log: {log_dir / f'{name}.log'}")
    _CHILDREN[name] = proc
    try:
        yield
    finally:
        stop_process(proc, sig=signal.SIGTERM, timeout=15)
        _CHILDREN.pop(name, None)


_CHILDREN: dict[str, subprocess.Popen[bytes]] = {}


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def run_stack(
    settings: Settings, *, demo: bool, rate: float, speedup: float, workers: int = 1
) -> int:
    """Run until Ctrl-C or SIGTERM, or until a child process dies; returns the exit code.

    ``workers``: processor processes, one consumer group: they split the events topic's
    partitions (more than the partitions would idle), the Nth serving its metrics on the
    processor web port + N - 1."""
    data_dir = settings.data_dir.absolute()
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    signal.signal(signal.SIGTERM, _raise_stop)
    # Ctrl-C explicitly too: started as a background job of a non-interactive shell (CI, a
    # script), Python inherits an ignored SIGINT and would otherwise never stop on it.
    signal.signal(signal.SIGINT, _raise_stop)
    with ExitStack() as stack:
        try:
            if settings.embedded:
                console.print("[bold]starting embedded PostgreSQL and Tansu[/bold]")
                pg = EmbeddedPostgres(data_dir / "postgres", _port(settings.database_url, 15432))
                pg.start()
                stack.callback(pg.stop)
                broker = TansuBroker(log_dir, _port(settings.kafka_bootstrap, 19092))
                broker.start()
                stack.callback(broker.stop)
                env["LEADLEDGER_DATABASE_URL"] = pg.dsn
                env["LEADLEDGER_KAFKA_BOOTSTRAP"] = broker.bootstrap
                console.print(f"  PostgreSQL {pg.dsn} (pid {pg.pid}, data {pg.data_dir})")
                console.print(f"  Kafka (Tansu) {broker.bootstrap} (pid {broker.pid})")
            bootstrap = env.get("LEADLEDGER_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
            asyncio.run(ensure_topics(bootstrap, leadledger_topics(settings)))
            console.print(f"  topics ready: {', '.join(leadledger_topics(settings))}")
            if settings.embedded:
                restored = run_async.run(restore_history(settings, pg.dsn, bootstrap, console))
                if restored is not None:
                    console.print(f"  restored {restored.events:,} events, {restored.rejected:,}"
                                  f" rejected records and {restored.ticks:,} ticks")  # fmt: skip
            exe = [sys.executable, "-m", "services"]
            if demo:
                # The simulator backfills days of event time at high speed and ticks its own
                # simulated clock; wall-clock ticks would breach every backfilled MQL at once.
                env.setdefault("LEADLEDGER_TICK_INTERVAL_SECONDS", "0")
            processors = _workers(settings, workers)
            for name, port in processors:
                worker_env = {**env, "LEADLEDGER_PROCESSOR_WEB_PORT": str(port)}
                stack.enter_context(_child(name, [*exe, "processor"], worker_env, log_dir))
            stack.enter_context(_child("api", [*exe, "api"], env, log_dir))
            wait_for_port("127.0.0.1", settings.api_port, timeout=60)
            example = None
            if demo:
                # PostgreSQL keeps earlier demos; a fresh seed and lead prefix per run keeps
                # their ids apart, so a second demo is not rejected as duplicates.
                seed = int(time.time()) % 1_000_000
                example = f"D{seed}-000001"
                args = ["simulate", "--rate", str(rate), "--speedup", str(speedup)]
                args += ["--seed", str(seed), "--lead-prefix", f"D{seed}", "--tick-every", "1"]
                stack.enter_context(_child("simulator", [*exe, *args], env, log_dir))
            _print_urls(settings, example, processors)
            return _watch()
        except (KeyboardInterrupt, _Stop):
            console.print("\n[bold]stopping[/bold] (children first, then PostgreSQL and Tansu)")
            return 0


def _workers(settings: Settings, workers: int) -> list[tuple[str, int]]:
    """(log name, web port) of each processor worker: ``processor`` alone, else numbered."""
    base = settings.processor_web_port
    if workers == 1:
        return [("processor", base)]
    return [(f"processor-{n + 1}", base + n) for n in range(workers)]


def _print_urls(
    settings: Settings, example_lead: str | None, processors: list[tuple[str, int]]
) -> None:
    api = f"http://{settings.api_host}:{settings.api_port}"
    console.print("[bold green]leadledger is up[/bold green]")
    console.print(f"  HTTP API        {api}  (OpenAPI: {api}/docs)")
    console.print(f"  API metrics     {api}/metrics")
    for name, port in processors:
        console.print(f"  {name:<15} http://127.0.0.1:{port}/metrics")
    if example_lead:
        console.print(f"  demo lead       {api}/v1/leads/{example_lead}")
    console.print("  Ctrl-C stops everything.")


def _watch() -> int:
    while True:
        for name, proc in list(_CHILDREN.items()):
            code = proc.poll()
            if code is not None and not (name == "simulator" and code == 0):
                console.print(f"[red]{name} exited with code {code}; stopping[/red]")
                return 1
        time.sleep(0.5)
