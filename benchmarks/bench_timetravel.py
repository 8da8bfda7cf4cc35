"""Time-travel benchmark: ``state_at`` anywhere in a 100,000-event stream.

Run on demand: ``python benchmarks/bench_timetravel.py [--quick]``. Measured
in one run on one machine:

* the first ``state_at`` (reads the stream, folds it, keeps a state every 64
  versions), against a plain rehydration of the same stream (``load_events`` +
  ``Account.fold``) as the baseline;
* then ``state_at`` at random versions (a slider being scrubbed): the median
  must stay under 20 ms; also as a ratio of the plain rehydration;
* stepping one version forward (the play button), and ``state_at(at=...)``.

``--quick`` uses a 20,000-event stream.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import eventlab as el
from eventlab.examples.bank import Account, Deposited, Opened, Withdrew

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def build(store, n: int) -> None:
    rng = random.Random(1)
    events = [el.NewEvent(Opened("ada"), recorded_at=T0)]
    for i in range(1, n):
        event = Deposited(float(rng.randint(1, 50))) if rng.random() < 0.7 else Withdrew(1.0)
        events.append(el.NewEvent(event, recorded_at=T0 + timedelta(seconds=i)))
    for start in range(0, n, 10_000):
        store.append("acc-1", events[start:start + 10_000])


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 20,000-event stream")
    args = parser.parse_args()
    n = 20_000 if args.quick else 100_000
    store = el.connect()
    build(store, n)
    account = Account()

    start = time.perf_counter()
    expected = account.fold(store.load_events("acc-1"))
    plain = time.perf_counter() - start
    start = time.perf_counter()
    first = el.state_at(store, account, "acc-1", version=n // 2)
    cold = time.perf_counter() - start
    assert el.state_at(store, account, "acc-1") == expected

    rng = random.Random(2)
    samples = []
    for version in (rng.randint(0, n) for _ in range(300)):
        start = time.perf_counter()
        state = el.state_at(store, Account(), "acc-1", version=version)
        samples.append(time.perf_counter() - start)
        assert state.transactions == max(version - 1, 0)
    steps = []
    for version in range(n // 3, n // 3 + 300):
        start = time.perf_counter()
        el.state_at(store, account, "acc-1", version=version)
        steps.append(time.perf_counter() - start)
    moments = []
    for _ in range(100):
        at = T0 + timedelta(seconds=rng.uniform(0, n))
        start = time.perf_counter()
        el.state_at(store, account, "acc-1", at=at)
        moments.append(time.perf_counter() - start)
    assert first.transactions == n // 2 - 1

    median = statistics.median(samples)
    print(f"stream of {n:,} events")
    print(f"  plain rehydration (load_events + fold): {ms(plain)}")
    print(f"  first state_at (builds the timeline):   {ms(cold)}  "
          f"({cold / plain:.2f}x the plain rehydration)")
    print(f"  state_at at random versions: median {ms(median)}, "
          f"p95 {ms(sorted(samples)[int(len(samples) * 0.95)])}; "
          f"{plain / median:,.0f}x faster than rehydrating  "
          f"(target median < 20 ms)  [{'ok' if median < 0.020 else 'MISSED'}]")
    print(f"  stepping one version forward: median {ms(statistics.median(steps))}")
    print(f"  state_at(at=datetime): median {ms(statistics.median(moments))}")
    store.close()


if __name__ == "__main__":
    main()
