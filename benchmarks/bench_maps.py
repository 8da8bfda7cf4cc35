"""Benchmark: the process map and the dotted chart of BPIC 2012 (262,200 events), each
timed from the store to PNG bytes, against reading the whole log with ``store.to_arrow()``.

Targets: the process map in under 2 s, the dotted chart in under 3 s (data,
layout, drawing and the PNG together). The log is imported once into an
in-memory DuckDB store first (not timed); ``--db`` uses a DuckDB file that
already holds it instead.

    .venv/bin/python benchmarks/bench_maps.py [--repeat 3] [--db bpic.duckdb]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import eventlab as el
from eventlab.notebook import plot_dotted_chart, process_map
from eventlab.notebook.render import figure_png

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LOG = DATA / "bpic2012" / "bpic2012.xes.gz"
TARGETS = {"process map": 2.0, "dotted chart": 3.0}


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    spent = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        spent.append(time.perf_counter() - start)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run instead of --repeat")
    parser.add_argument("--db", type=Path, help="a DuckDB file already holding BPIC 2012")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    if args.db:
        store = el.connect(args.db, read_only=True)
    else:
        store = el.connect()
        el.import_log(store, LOG)
    print(f"BPIC 2012: {store.head():,} events in {len(store.stream_ids()):,} cases")
    figure_png(process_map(store))                        # warm-up: fonts, caches
    base = timed(lambda: store.to_arrow(), repeat)
    print(f"baseline store.to_arrow(): best {min(base):.2f} s, "
          f"median {statistics.median(base):.2f} s")
    jobs = {"process map": lambda: figure_png(process_map(store)),
            "dotted chart": lambda: figure_png(plot_dotted_chart(store))}
    for name, job in jobs.items():
        spent = timed(job, repeat)
        best, target = min(spent), TARGETS[name]
        print(f"{name}: best {best:.2f} s, median {statistics.median(spent):.2f} s "
              f"({best / min(base):.1f}x the baseline; target < {target:.0f} s: "
              f"{'met' if best < target else 'MISSED'})")
    store.close()


if __name__ == "__main__":
    main()
