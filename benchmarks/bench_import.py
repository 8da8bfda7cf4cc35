"""Benchmark: XES import of BPIC 2012 against a bare streaming parse of the same file.

The baseline is ``xml.etree.ElementTree.iterparse`` over the gzip file, clearing
each trace, storing nothing. Both run in this process, after a warm-up import of
a small log (so one-time library start-up is not charged to either side).

    .venv/bin/python benchmarks/bench_import.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import gzip
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import eventlab as el

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LOG = DATA / "bpic2012" / "bpic2012.xes.gz"


def bare_parse(path: Path) -> int:
    events = 0
    with gzip.open(path, "rb") as handle:
        for _, element in ET.iterparse(handle):
            tag = element.tag
            if tag.endswith("event"):
                events += 1
            elif tag.endswith("trace"):
                element.clear()
    return events


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one run instead of --repeat")
    args = parser.parse_args()
    if args.quick:
        args.repeat = 1
    el.import_log(el.connect(), DATA / "running-example" / "running-example.xes")  # warm-up
    for run in range(1, args.repeat + 1):
        base, count = timed(lambda: bare_parse(LOG))
        store = el.connect()
        spent, summary = timed(lambda store=store: el.import_log(store, LOG))
        assert summary.events == count == store.head()
        store.close()
        print(f"run {run}: bare iterparse {base:.2f}s, import {spent:.2f}s "
              f"({summary.events} events) -> ratio {spent / base:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
