"""CPU cost of the codec alone: decode the seeded benchmark values one by one and in batches
(``decode_many``), pseudonymize the decoded ``lead.created`` events as the processor does
(per event of the whole mix), and dump them back with ``to_obj``, timed with
``time.process_time()`` so other processes on the machine count less.

Run ``python -m bench.decode_cpu [--events N] [--repeat R] [--batch B]``; prints µs/event per
repetition and the best of them (the least disturbed run).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Sequence

import orjson

from bench.common import lead_events
from events.codec import decode, decode_many, to_json, to_obj
from events.envelope import Event
from events.funnel import load_funnel
from events.kinds import CREATED, KINDS
from projections.closed_loop.privacy import pseudonymize
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
    print(f"{label:<14} best {min(figures):6.2f} µs/event   runs {runs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000, help="values per decode_many call")
    args = parser.parse_args()
    values = [v for _, v in lead_events(args.events)]
    n = len(values)
    # As the worker runs (services/gc_policy.py): young collections must not dominate.
    tune_for_batches()
    decoded: list[Event] = []

    def run_decode() -> None:
        decoded[:] = [decode(v) for v in values]

    def run_many() -> None:
        out: list[object] = []
        for i in range(0, n, args.batch):
            out.extend(decode_many(values[i : i + args.batch]))
        decoded[:] = [e for e in out if isinstance(e, Event)]

    _show("decode", _per_event(run_decode, n, args.repeat))
    _show("decode_many", _per_event(run_many, n, args.repeat))
    rules, key = load_funnel(None).closed_loop.email, b"bench"
    created = [e for e in decoded if KINDS[type(e.data)] & CREATED]
    _show(
        "pseudonymize",
        _per_event(lambda: [pseudonymize(e, rules, key) for e in created], n, args.repeat),
    )
    _show("to_obj", _per_event(lambda: [to_obj(e) for e in decoded], n, args.repeat))
    # What the archive writes today (orjson of to_obj) against to_json.
    dumps = orjson.dumps
    _show("dumps(to_obj)", _per_event(lambda: [dumps(to_obj(e)) for e in decoded], n, args.repeat))
    _show("to_json", _per_event(lambda: [to_json(e) for e in decoded], n, args.repeat))


if __name__ == "__main__":
    main()
