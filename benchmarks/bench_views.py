"""Notebook view benchmarks: how long the views hold the kernel.

Run on demand: ``python benchmarks/bench_views.py [--quick]``. Figures are
measured in one run on one machine, each with a ratio against a baseline from
the same run:

* opening ``TimeTravel`` on a 100,000-event stream (cold: nothing cached),
  against reading the same stream with ``store.read_stream`` (budget: 2 s);
* one slider step (forward, back, and a random jump), Python time from setting
  ``.version`` to the rendered HTML, against one bare ``Timeline.state_at``
  call (budget: 50 ms);
* one ``ProjectionChart`` frame (fold + matplotlib PNG), against drawing the
  same figure without the chart around it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import eventlab as el
from eventlab.examples.bank import Account, Deposited, Opened, Withdrew
from eventlab.notebook import ProjectionChart, TimeTravel
from eventlab.notebook.render import ChartFigure, figure_png
from eventlab.timetravel import Timeline

OPEN_BUDGET = 2.0
STEP_BUDGET = 0.050


def make_store(n: int) -> el.EventStore:
    store = el.connect()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = [el.NewEvent(Opened("ada"), recorded_at=start)]
    events += [el.NewEvent(Deposited(5.0) if i % 3 else Withdrew(2.0),
                           recorded_at=start + timedelta(minutes=i))
               for i in range(1, n)]
    store.append("account-1", events)
    return store


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def verdict(seconds: float, budget: float) -> str:
    return "within budget" if seconds <= budget else "OVER BUDGET"


def bench_open(n: int) -> TimeTravel:
    store = make_store(n)
    read, _ = timed(lambda: list(store.read_stream("account-1")))
    opened, tt = timed(lambda: TimeTravel(store, Account(), "account-1"))
    print(f"open TimeTravel on {n:,} events: {opened:.2f} s "
          f"({verdict(opened, OPEN_BUDGET)} of {OPEN_BUDGET} s); "
          f"read_stream alone {read:.2f} s; ratio open/read {opened / read:.2f}x")
    # Where the time goes: loading the stream's timeline, then building the view on it.
    loading, _ = timed(lambda: Timeline(store, Account(), "account-1"))
    view, _ = timed(lambda: TimeTravel(store, Account(), "account-1"))
    print(f"  of which: Timeline load {loading:.2f} s ({loading / read:.2f}x read_stream), "
          f"the view on a loaded timeline {view * 1000:.0f} ms")
    return tt


def bench_steps(tt: TimeTravel, steps: int) -> None:
    n = tt.length
    bare = Timeline(tt.store, Account(), "account-1")
    rng = random.Random(1)
    tt.version = n // 2
    plans = {"forward": [1] * steps, "back": [-1] * steps,
             "jump": [rng.randint(-n // 2, n // 2) for _ in range(steps)]}
    for name, moves in plans.items():
        times, base = [], []
        for move in moves:
            target = min(max(tt.version + move, 0), n)
            seconds, _ = timed(lambda t=target: setattr(tt, "version", t))
            times.append(seconds)
            base_t, _ = timed(lambda t=target: bare.state_at(t))
            base.append(base_t)
        median, worst = statistics.median(times), max(times)
        print(f"slider step ({name}): median {median * 1000:.2f} ms, max "
              f"{worst * 1000:.2f} ms ({verdict(worst, STEP_BUDGET)} of "
              f"{STEP_BUDGET * 1000:.0f} ms); bare state_at median "
              f"{statistics.median(base) * 1000:.3f} ms; ratio "
              f"{median / max(statistics.median(base), 1e-9):.0f}x")


class Balance(el.Projection):
    def initial_state(self):
        return 0.0

    def apply(self, state, event):
        return state + getattr(event.data, "amount", 0.0)


def plot(state, ax):
    ax.bar(["balance"], [state])


def bench_chart(frames: int) -> None:
    store = make_store(frames + 1)
    chart = ProjectionChart(store, Balance(), plot=plot)
    seconds, _ = timed(lambda: chart.run())
    per_frame = seconds / frames

    def bare_frame():
        fig = ChartFigure(figsize=(6.0, 3.2))
        plot(1.0, fig.add_subplot())
        figure_png(fig)

    base, _ = timed(lambda: [bare_frame() for _ in range(frames)])
    print(f"ProjectionChart frame: {per_frame * 1000:.1f} ms; bare matplotlib PNG "
          f"{base / frames * 1000:.1f} ms; ratio {per_frame / (base / frames):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 events, fewer steps")
    args = parser.parse_args()
    n, steps, frames = (10_000, 50, 10) if args.quick else (100_000, 200, 30)
    tt = bench_open(n)
    bench_steps(tt, steps)
    bench_chart(frames)


if __name__ == "__main__":
    main()
