"""Benchmark: each single case filter on BPIC 2012 (262,200 events, 13,087 cases).

For every criterion it times choosing the kept cases (``Filter.stream_ids``)
and a filtered ``analytics.variants``; the baseline, measured in the same run,
is ``analytics.variants`` of the whole log. Target: any single filter < 100 ms.

    .venv/bin/python benchmarks/bench_filters.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import eventlab as el
from eventlab import analytics

LOG = Path(__file__).resolve().parents[1] / "data" / "bpic2012" / "bpic2012.xes.gz"

FILTERS = {
    "time (contained)": el.Filter(time=("2011-11-01", "2012-01-01")),
    "starts_with": el.Filter(starts_with="A_SUBMITTED"),
    "ends_with": el.Filter(ends_with=["A_DECLINED", "A_CANCELLED"]),
    "min_events": el.Filter(min_events=10),
    "max_events": el.Filter(max_events=5),
    "variants_top": el.Filter(variants_top=5),
    "streams": el.Filter(streams=["173688", "173691", "173694"]),
    "where (SQL)": el.Filter(where="type = 'O_ACCEPTED'"),
}


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    store = el.connect()
    el.import_log(store, LOG)
    whole = best_of(args.repeat, lambda: analytics.variants(store))
    print(f"baseline: variants of the whole log {whole * 1000:.0f} ms (median of "
          f"{args.repeat})")
    for name, f in FILTERS.items():
        chosen = best_of(args.repeat, lambda f=f: f.stream_ids(store))
        narrowed = best_of(args.repeat, lambda f=f: analytics.variants(store, filter=f))
        kept = len(f.stream_ids(store))
        verdict = "ok" if chosen < 0.1 else "OVER"
        print(f"{name:17s} {kept:6d} cases  choose {chosen * 1000:5.0f} ms [{verdict} < 100 ms]"
              f"  variants {narrowed * 1000:5.0f} ms = {narrowed / whole:.2f}x the baseline")
    store.close()


if __name__ == "__main__":
    main()
