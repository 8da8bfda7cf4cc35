"""Time-travel benchmark: ``state_at`` anywhere in a long stream, and what the timeline holds.

Run on demand: ``python benchmarks/bench_timetravel.py [--quick | --million]
[--db PATH]``. One stream of ``Account`` events in DuckDB (100,000 events by
default; ``--quick`` 20,000; ``--million`` 1,000,000, whose build takes a few
minutes: ``--db`` keeps it in a file and reuses it on the next run). Measured
in one run on one machine:

* the baseline: a plain rehydration, ``Account().fold(store.load_events(...))``,
  and, to show what no reader can avoid, the fold alone over events already in
  memory;
* the first ``state_at`` on a fresh timeline (reads, decodes and folds the whole
  stream once, keeping checkpoints): target <= 2 s on 1M events. It and the
  baseline run ``--repeat`` times (3), the median counts: on a shared machine
  one run can be off by half;
* the memory the timeline holds once built: Python allocations traced by
  ``tracemalloc`` (numpy's arrays included) still held after the build, and
  their peak during it, in a second build (tracing slows allocation, so it is
  never timed); Arrow's own pool peak and the process RSS growth beside them;
  the baseline is what ``load_events`` holds. Target <= 300 MB;
* a step forward (``state_at(v + 1)`` after ``state_at(v)``), a step back, and
  random jumps: target < 50 ms each (the worst one counts); a widget-like step
  (``state_at`` + ``changes`` + ``event``) and ``state_at(at=datetime)`` beside.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

import eventlab as el
from eventlab.examples.bank import Account, Deposited, Opened, Withdrew
from eventlab.timetravel import Timeline, timeline

T0 = datetime(2024, 1, 1, tzinfo=UTC)
STREAM = "acc-1"
MB = 1024 * 1024


def build(store: Any, n: int) -> None:
    rng = random.Random(1)
    for start in range(0, n, 50_000):
        events = []
        for i in range(start, min(start + 50_000, n)):
            event = (Opened("ada") if i == 0 else Deposited(float(rng.randint(1, 50)))
                     if rng.random() < 0.7 else Withdrew(1.0))
            events.append(el.NewEvent(event, recorded_at=T0 + timedelta(seconds=i)))
        store.append(STREAM, events)


def open_store(n: int, path: str | None) -> Any:
    if path is None:
        store = el.connect()
    else:
        store = el.connect(path)
        if store.stream_version(STREAM) not in (0, n):
            store.close()
            raise SystemExit(f"{path} holds a stream of another length; remove it first")
    if store.stream_version(STREAM) == 0:
        start = time.perf_counter()
        build(store, n)
        print(f"  (built the stream in {time.perf_counter() - start:.0f} s)")
    return store


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def traced(fn: Callable[[], Any]) -> tuple[int, int, Any]:
    """Bytes ``fn``'s result still holds, and the peak while it ran (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    result = fn()
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held - base, peak - base, result


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f} ms"


def spread(label: str, samples: list[float], target: float | None = None) -> None:
    ordered = sorted(samples)
    worst = ordered[-1]
    verdict = "" if target is None else (
        f"  (target < {target * 1e3:.0f} ms: {'ok' if worst < target else 'MISSED'})")
    print(f"  {label:<34} median {ms(statistics.median(ordered))}, "
          f"p95 {ms(ordered[int(len(ordered) * 0.95)])}, worst {ms(worst)}{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a 20,000-event stream")
    size.add_argument("--million", action="store_true", help="a 1,000,000-event stream")
    parser.add_argument("--db", help="a DuckDB file to build the stream into, or reuse")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the baseline and of the first call (median shown)")
    args = parser.parse_args()
    n = 20_000 if args.quick else 1_000_000 if args.million else 100_000
    print(f"stream of {n:,} events")
    store = open_store(n, args.db)
    account = Account()

    runs = [timed(lambda: account.fold(store.load_events(STREAM))) for _ in range(args.repeat)]
    plain, expected = statistics.median(r[0] for r in runs), runs[0][1]
    loaded = store.load_events(STREAM)
    fold_only = statistics.median(timed(lambda: account.fold(loaded))[0]
                                  for _ in range(args.repeat))
    loaded.clear()
    print(f"  baseline: plain rehydration (load_events + fold): {ms(plain)}")
    print(f"            of which the fold alone (events in memory): {ms(fold_only)}")

    rss_before = rss()
    firsts = []
    for run in range(args.repeat):   # el.state_at, then as if for the first time again
        seconds, state = timed(
            (lambda: el.state_at(store, account, STREAM, version=n // 2)) if run == 0 else
            (lambda: Timeline(store, account, STREAM).state_at(n // 2)))
        firsts.append(seconds)
        if run == 0:
            rss_after = rss()
    line = timeline(store, account, STREAM)
    first = statistics.median(firsts)
    assert state.transactions == n // 2 - 1 and line.state_at() == expected
    print(f"  first state_at (builds the timeline): {ms(first)}  "
          f"({first / plain:.2f}x the baseline; target <= 2 s on 1M events: "
          f"{'ok' if first <= 2 else 'MISSED'}{'' if n == 1_000_000 else ', not 1M here'})")
    print(f"    each run: {', '.join(ms(f).strip() for f in firsts)}; {line!r}")

    held, peak, again = traced(lambda: Timeline(store, account, STREAM))
    assert again.state_at() == expected
    base_held, base_peak, kept = traced(lambda: store.load_events(STREAM))
    del kept, again
    arrow_peak = pa.default_memory_pool().max_memory()
    print(f"  memory the timeline holds (tracemalloc): {held / MB:7.1f} MB "
          f"(target <= 300 MB: {'ok' if held <= 300 * MB else 'MISSED'}); "
          f"peak while building {peak / MB:.1f} MB")
    print(f"    baseline: load_events holds {base_held / MB:.1f} MB "
          f"(peak {base_peak / MB:.1f} MB): the timeline holds "
          f"{held / base_held:.3f}x that")
    print(f"    beside: Arrow pool peak {arrow_peak / MB:.1f} MB; process RSS grew "
          f"{(rss_after - rss_before) / MB:.1f} MB over the first state_at")

    rng = random.Random(2)
    jumps, forward, back, widget, moments = [], [], [], [], []
    for version in (rng.randint(0, n) for _ in range(300)):
        seconds, state = timed(lambda v=version: el.state_at(store, account, STREAM,
                                                             version=v))
        jumps.append(seconds)
        assert state.transactions == max(version - 1, 0)
    start = rng.randint(1, n - 400)
    el.state_at(store, account, STREAM, version=start)
    for version in range(start + 1, start + 301):
        seconds, state = timed(lambda v=version: el.state_at(store, account, STREAM,
                                                             version=v))
        forward.append(seconds)
        assert state.transactions == version - 1
    for version in range(start + 299, start - 1, -1):
        back.append(timed(lambda v=version: el.state_at(store, account, STREAM,
                                                        version=v))[0])
    for version in range(start, start + 200):
        widget.append(timed(lambda v=version: (line.state_at(v), line.changes(v),
                                               line.event(v)))[0])
    for _ in range(100):
        at = T0 + timedelta(seconds=rng.uniform(0, n))
        moments.append(timed(lambda at=at: el.state_at(store, account, STREAM, at=at))[0])

    spread("random jumps:", jumps, 0.050)
    spread("step forward (state_at(v + 1)):", forward, 0.050)
    spread("step back (state_at(v - 1)):", back, 0.050)
    spread("state_at + changes + event:", widget)
    spread("state_at(at=datetime):", moments)
    print(f"    a random jump is {plain / statistics.median(jumps):,.0f}x faster than "
          "the baseline rehydration (medians)")
    store.close()


if __name__ == "__main__":
    main()
