"""Benchmark: eventlab against pm4py, end to end on BPIC 2012 (262,200 events).

eventlab: ``el.import_log`` into a fresh in-memory DuckDB store (``el.connect()``),
then ``el.analytics.directly_follows`` and ``el.analytics.variants``. pm4py:
``pm4py.read_xes``, ``pm4py.discover_dfg`` and ``pm4py.get_variants``, as a user
calls them. Rounds alternate (eventlab, pm4py, eventlab, ...); each round checks
that both give the same answers (every directly-follows edge with its count,
every variant with its count) before any time or ratio is printed, and stops
with the differences when they do not.

Both order a case's events by time, ties in the file's order: pm4py sorts the
events by case and timestamp when it discovers the graph and the variants,
eventlab appends each case's events in time order at import. Both read the
times as absolute moments (UTC), so the offsets written in the file do not
change the order.

The baseline is pm4py as pinned in ``pm4py-baseline.txt``, whose ``read_xes``
parses with lxml. pm4py can also read through an optional Rust package
(``r4pm``), which the baseline does not install: measured on the same machine,
it reads BPIC 2012 several times faster than the default reader.

pm4py is AGPL, so it is never a dependency of eventlab: it lives in its own
environment, ``.venv-pm4py``, which this script's runner makes and uses:

    benchmarks/pm4py-env.sh [--repeat 3] [--log path/to/log.xes.gz]

Progress bars are off on both sides, and a small log is read once by each side
first, so one-time library start-up is charged to neither.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("PM4PY_SHOW_PROGRESS_BAR", "False")   # read when pm4py is imported
os.environ.setdefault("TQDM_DISABLE", "1")                  # eventlab's import bar

try:
    import pm4py
except ImportError:
    print("bench_pm4py: pm4py is not installed in this environment, so this benchmark is "
          "skipped. pm4py (AGPL) is kept out of eventlab's environments; run it with "
          "benchmarks/pm4py-env.sh, which makes .venv-pm4py with pm4py and eventlab.")
    sys.exit(0)

import eventlab as el

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LOG = DATA / "bpic2012" / "bpic2012.xes.gz"
WARM_UP = ROOT / "data" / "running-example" / "running-example.xes"
EDGES, VARIANTS = 125, 4366         # what BPIC 2012 holds

Steps = dict[str, float]
Answers = tuple[dict[tuple[str, str], int], dict[tuple[str, ...], int]]


def timed(steps: Steps, name: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = fn()
    steps[name] = time.perf_counter() - start
    return result


def run_eventlab(path: Path) -> tuple[Steps, Answers]:
    steps: Steps = {}
    store = timed(steps, "import", lambda: _import(path))
    edges = timed(steps, "dfg", lambda: el.analytics.directly_follows(store))
    variants = timed(steps, "variants", lambda: el.analytics.variants(store))
    store.close()
    dfg = {(s, t): int(n) for s, t, n in zip(edges["source"], edges["target"], edges["count"],
                                             strict=True)}
    kinds = {tuple(v): int(n) for v, n in zip(variants["variant"], variants["count"],
                                              strict=True)}
    return steps, (dfg, kinds)


def _import(path: Path) -> Any:
    store = el.connect()
    el.import_log(store, path)
    return store


def run_pm4py(path: Path) -> tuple[Steps, Answers]:
    steps: Steps = {}
    log = timed(steps, "import", lambda: pm4py.read_xes(str(path)))
    dfg, _, _ = timed(steps, "dfg", lambda: pm4py.discover_dfg(log))
    variants = timed(steps, "variants", lambda: pm4py.get_variants(log))
    kinds = {tuple(v): n if isinstance(n, int) else len(n) for v, n in variants.items()}
    return steps, ({tuple(edge): int(n) for edge, n in dfg.items()}, kinds)


def check_same(ours: Answers, theirs: Answers, path: Path) -> None:
    """Stop, naming the differences, unless both sides found the same edges and variants."""
    problems = []
    for what, mine, other in (("directly-follows edges", ours[0], theirs[0]),
                              ("variants", ours[1], theirs[1])):
        if mine != other:
            only_ours = [k for k in mine if k not in other][:3]
            only_theirs = [k for k in other if k not in mine][:3]
            counts = [(k, mine[k], other[k]) for k in mine if k in other and mine[k] != other[k]]
            problems.append(f"{what}: eventlab {len(mine)}, pm4py {len(other)}; only eventlab: "
                            f"{only_ours}; only pm4py: {only_theirs}; counts differ: {counts[:3]}")
    if path == LOG and not problems and (len(ours[0]), len(ours[1])) != (EDGES, VARIANTS):
        problems.append(f"expected {EDGES} edges and {VARIANTS} variants, both found "
                        f"{len(ours[0])} and {len(ours[1])}")
    if problems:
        sys.exit("bench_pm4py: the answers differ, so no ratio is given:\n  "
                 + "\n  ".join(problems))


def describe(steps: Steps) -> str:
    return (f"import {steps['import']:6.2f}s  dfg {steps['dfg']:5.2f}s  "
            f"variants {steps['variants']:5.2f}s  total {sum(steps.values()):6.2f}s")


def medians(rounds: list[Steps]) -> Steps:
    return {step: statistics.median(r[step] for r in rounds) for step in rounds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each side (default 3)")
    parser.add_argument("--log", type=Path, default=LOG, help="the XES log (default BPIC 2012)")
    args = parser.parse_args()
    print(f"eventlab against pm4py {pm4py.__version__} on {args.log.name}, "
          f"{args.repeat} rounds each, alternating")
    run_eventlab(WARM_UP)
    run_pm4py(WARM_UP)
    ours: list[Steps] = []
    theirs: list[Steps] = []
    for number in range(1, args.repeat + 1):
        gc.collect()
        mine, our_answers = run_eventlab(args.log)
        gc.collect()
        other, their_answers = run_pm4py(args.log)
        check_same(our_answers, their_answers, args.log)
        ours.append(mine)
        theirs.append(other)
        print(f"round {number}: edges {len(our_answers[0])}, variants {len(our_answers[1])}, "
              "the same on both sides")
        print(f"  eventlab  {describe(mine)}")
        print(f"  pm4py     {describe(other)}")
        print(f"  ratio (pm4py / eventlab): {sum(other.values()) / sum(mine.values()):.2f}x")
    ours_median, theirs_median = medians(ours), medians(theirs)
    total = sum(ours_median.values())
    print(f"medians of {args.repeat} rounds:")
    print(f"  eventlab  {describe(ours_median)}")
    print(f"  pm4py     {describe(theirs_median)}")
    for step in ("import", "dfg", "variants"):
        print(f"  {step:8s} pm4py / eventlab {theirs_median[step] / ours_median[step]:6.2f}x")
    print(f"  eventlab's time: import {ours_median['import'] / total:.0%}, analytics "
          f"{(ours_median['dfg'] + ours_median['variants']) / total:.0%}")
    ratio = (statistics.median(sum(r.values()) for r in theirs)
             / statistics.median(sum(r.values()) for r in ours))
    print(f"  ratio (pm4py / eventlab, medians of the totals): {ratio:.2f}x  (target >= 3)")


if __name__ == "__main__":
    main()
