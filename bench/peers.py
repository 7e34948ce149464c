"""leadledger's live processor against the raw aiokafka limit, a naive Faust agent and
quixstreams, on the same topic and the same fold, in one session.

    .venv/bin/python -m bench.peers [--events 200000] [--passes 3] [--skip quix,faust]

Each pass runs every reader in a process of its own, one after the other, over the same
seeded topic (4 partitions, ~204-byte events):

- ``raw``: aiokafka ``getmany`` + ``orjson.loads`` + the fold into a dict (the limit);
- ``faust``: a naive Faust agent, ``async for`` per event, the fold into a dict;
- ``quix``: quixstreams 3.28, the fold into RocksDB state with a changelog topic, measured
  until its last checkpoint (state + changelog + offsets) is flushed;
- ``leadledger``: the real ``leadledger processor`` with PostgreSQL, measured until the
  checkpoints in PostgreSQL cover the last record (read model and checkpoint committed),
  with no SLA policies (``bench/sla-none.yaml``: the same fold as the peers, plus the archive,
  stage history and handoff rows);
- ``leadledger+sla``: the same with the default SLA policies (timers, derived ``sla.*``
  events produced to Kafka, ``sla_timer`` rows): more work than any peer does;
- ``leadledger-x2``: ``leadledger`` with two workers in one consumer group, two partitions
  each: how far scaling out goes when both share the machine's cores with PostgreSQL.

It prints each reader's sustained events/s (min / median / max over the passes) and
leadledger's ratio to each, pass by pass and as the median of those ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Rate, Stack, logs_dir, machine, seeded_topic, stack, summary
from bench.processor import measure
from services.embedded.procs import spawn_logged, stop_process

HERE = Path(__file__).resolve().parent
QUIX_VENV = HERE / ".venv-quix"
NO_SLA = HERE / "sla-none.yaml"
READERS = ("raw", "faust", "quix", "leadledger", "leadledger+sla", "leadledger-x2")


def quix_python() -> Path:
    """The quixstreams venv's interpreter, created on first use (bench/README.md)."""
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {QUIX_VENV} for quixstreams (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(HERE / "requirements-quix.txt")],
            check=True,
        )
    return python


def run_raw(st: Stack, topic: str, n: int, work: Path) -> Rate:
    out = subprocess.run(
        [sys.executable, "-m", "bench.common", "raw", "--bootstrap", st.bootstrap,
         "--topic", topic, "--expected", str(n)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return Rate.from_json(out.stdout.splitlines()[-1])


def run_faust(st: Stack, topic: str, n: int, work: Path) -> Rate:
    result = work / f"faust-{time.time_ns()}.json"
    proc = spawn_logged(
        [sys.executable, "-m", "bench.peer_faust", st.bootstrap, topic, str(n), str(result),
         str(work / "faust-data")],
        work / "faust.log",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 900
        while not result.exists() or not result.stat().st_size:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Faust peer failed; see {work / 'faust.log'}")
            time.sleep(0.2)
        return Rate.from_json(result.read_bytes())
    finally:
        stop_process(proc, timeout=20)


def run_quix(st: Stack, topic: str, n: int, work: Path) -> Rate:
    out = subprocess.run(
        [str(quix_python()), "-W", "ignore", str(HERE / "peer_quix.py"), st.bootstrap, topic,
         str(n), str(work / f"quix-state-{time.time_ns()}")],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    return Rate.from_json(out.stdout.splitlines()[-1])


def run_leadledger(sla: bool, workers: int = 1) -> Callable[[Stack, str, int, Path], Rate]:
    def run(st: Stack, topic: str, n: int, work: Path) -> Rate:
        extra = {} if sla else {"sla_file": str(NO_SLA)}
        dsn = st.fresh_database()
        return asyncio.run(
            measure(st.bootstrap, dsn, topic, n, work, workers=workers, overrides=extra)
        )

    return run


RUNNERS: dict[str, Callable[[Stack, str, int, Path], Rate]] = {
    "raw": run_raw,
    "faust": run_faust,
    "quix": run_quix,
    "leadledger": run_leadledger(sla=False),
    "leadledger+sla": run_leadledger(sla=True),
    "leadledger-x2": run_leadledger(sla=False, workers=2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated readers to leave out")
    args = parser.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    readers = [r for r in READERS if r not in skip]
    print(machine())
    rates: dict[str, list[float]] = {r: [] for r in readers}
    with logs_dir("ll-bench-peers-") as work, stack() as st:
        topic, records = asyncio.run(seeded_topic(st.bootstrap, args.events))
        print(f"topic {topic}: {len(records):,} events, 4 partitions")
        for p in range(args.passes):
            for reader in readers:
                rate = RUNNERS[reader](st, topic, len(records), work)
                rates[reader].append(rate.per_second)
                print(
                    f"pass {p + 1} {reader:<15} {rate.per_second:>10,.0f} events/s "
                    f"({rate.events:,} events in {rate.seconds:.2f} s)",
                    flush=True,
                )
    print()
    for reader in readers:
        print(summary(reader, rates[reader]))
    print()
    for mine in ("leadledger", "leadledger+sla", "leadledger-x2"):
        if mine not in rates:
            continue
        for peer in readers:
            if peer.startswith("leadledger"):
                continue
            ratios = [a / b for a, b in zip(rates[mine], rates[peer], strict=True)]
            per_pass = ", ".join(f"{r:.1%}" for r in ratios)
            print(f"{mine} / {peer:<6} median {statistics.median(ratios):>7.1%}  ({per_pass})")


if __name__ == "__main__":
    main()
