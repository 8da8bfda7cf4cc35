"""Benchmark: ``store.to_df()`` of 1,000,000 events against a raw DuckDB read.

The baseline is ``select * from eventlab_events`` through ``to_arrow_table().to_pandas()``
on the same store. Each side runs in its own subprocess so its peak memory
(``ru_maxrss``, less the process's size before the call) is its own.

    .venv/bin/python benchmarks/bench_frames.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = """
import json, resource, sys, time
import eventlab as el
store = el.connect(sys.argv[1], read_only=True)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if sys.argv[2] == "raw":
    df = store.connection.sql("select * from eventlab_events").to_arrow_table().to_pandas()
else:
    df = store.to_df()
spent = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": spent, "rows": len(df), "columns": len(df.columns),
                  "peak_mb": peak / 1024, "extra_mb": (peak - before) / 1024}))
"""


def build(path: Path, events: int) -> None:
    import numpy as np
    import pandas as pd

    import eventlab as el

    rng = np.random.default_rng(1)
    kinds = rng.integers(0, 3, events)
    amounts = rng.integers(1, 500, events)
    data = [
        f'{{"amount":{a},"currency":"EUR"}}' if k == 0 else
        f'{{"amount":{a}.5,"reason":"atm","place":{{"city":"Delft","code":{a}}}}}' if k == 1
        else f'{{"owner":"user-{a}","tier":{k}}}'
        for k, a in zip(kinds.tolist(), amounts.tolist(), strict=True)]
    frame = pd.DataFrame({
        "stream_id": [f"account-{i % 50_000}" for i in range(events)],
        "type": np.array(["Deposited", "Withdrew", "Opened"])[kinds],
        "data": data,
        "recorded_at": pd.date_range("2024-01-01", periods=events, freq="s", tz="UTC")})
    with el.connect(path) as store:
        store.append_batch(frame)


def measure(path: Path, which: str) -> dict:
    done = subprocess.run([sys.executable, "-c", WORKER, str(path), which],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 events, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.events = 100_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        start = time.perf_counter()
        build(path, args.events)
        print(f"built {args.events:,} events in {time.perf_counter() - start:.1f}s "
              f"(one append_batch)")
        measure(path, "raw")                        # warm the file cache
        raw, flat = measure(path, "raw"), measure(path, "to_df")
    print(f"raw DuckDB to_pandas: {raw['seconds']:.2f}s, {raw['columns']} columns, "
          f"peak {raw['peak_mb']:.0f} MB")
    print(f"store.to_df():        {flat['seconds']:.2f}s, {flat['columns']} columns, "
          f"peak {flat['peak_mb']:.0f} MB (+{flat['extra_mb']:.0f} MB during the call)")
    print(f"ratio to_df / raw: {flat['seconds'] / raw['seconds']:.2f} (target <= 3); "
          f"peak under 1 GB: {flat['peak_mb'] < 1024}")


if __name__ == "__main__":
    main()
