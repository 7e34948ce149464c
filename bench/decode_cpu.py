"""CPU cost of the codec alone: decode the seeded benchmark values (and dump them back with
``to_obj``), timed with ``time.process_time()`` so other processes on the machine do not count.

Run ``python -m bench.decode_cpu [--events N] [--repeat R]``; prints µs/event per repetition
and the best of them (the least disturbed run).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Sequence

from bench.common import lead_events
from events.codec import decode, to_obj
from events.envelope import Event
from services.gc_policy import tune_for_batches


def _per_event(fn: Callable[[], object], n: int, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.process_time()
        fn()
        out.append((time.process_time() - t0) / n * 1e6)
    return out


def _show(label: str, figures: Sequence[float]) -> None:
    runs = " ".join(f"{f:.2f}" for f in figures)
    print(f"{label:<12} best {min(figures):6.2f} µs/event   runs {runs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    values = [v for _, v in lead_events(args.events)]
    n = len(values)
    # As the worker runs (services/gc_policy.py): young collections must not dominate.
    tune_for_batches()
    decoded: list[Event] = []

    def run_decode() -> None:
        decoded[:] = [decode(v) for v in values]

    _show("decode", _per_event(run_decode, n, args.repeat))
    _show("to_obj", _per_event(lambda: [to_obj(e) for e in decoded], n, args.repeat))


if __name__ == "__main__":
    main()
