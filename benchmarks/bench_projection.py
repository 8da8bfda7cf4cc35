"""Projection benchmarks: a Python projection and a SQL projection over a big log.

Run on demand: ``python benchmarks/bench_projection.py [--quick]``. Figures
are measured in one run on one machine:

* a Python ``Projector`` over 1,000,000 events, as a rate against a bare
  Python loop folding the same rows fetched from DuckDB through Arrow and
  decoding the same payloads (target: >= 0.5x, i.e. framework overhead at
  most 2x);
* an ``SqlProjection`` refresh after 1,000 new events on a 1,000,000-event
  log (target: median under 50 ms), in both refresh modes.

``--quick`` uses a 100,000-event log.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pyarrow as pa

import eventlab as el


@dataclass(frozen=True)
class Moved:
    account: str
    amount: float


el.register(Moved)

ACCOUNTS = 10_000
BATCH = 10_000


class Balances(el.Projection):
    """Per-account balance: the projection being measured."""

    def initial_state(self):
        return {}

    def apply(self, state, event):
        data = event.data
        state[data.account] = state.get(data.account, 0.0) + data.amount
        return state


def moves(n: int, rng: random.Random) -> pa.Table:
    """``n`` Moved events on random account streams, as rows for ``append_batch``."""
    accounts = [f"acc-{rng.randrange(ACCOUNTS)}" for _ in range(n)]
    data = [msgspec.json.encode(Moved(a, float(rng.randint(-50, 100)))).decode()
            for a in accounts]
    return pa.table({"stream_id": accounts, "type": ["Moved"] * n, "data": data})


def build(store, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    for _ in range(n // BATCH):
        store.append_batch(moves(BATCH, rng))


def bare_loop(store) -> tuple[dict, int]:
    """The baseline: the same rows through Arrow, the same payload decoding, a plain fold."""
    decode = msgspec.json.Decoder(Moved).decode
    state: dict[str, float] = {}
    count = 0
    cursor = store.connection
    reader = cursor.sql("select stream_id, version, type, data from eventlab_events "
                        "order by position").to_arrow_reader(65_536)
    for batch in reader:
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for _stream, _version, _type, data in zip(*columns, strict=True):
            moved = decode(data)
            state[moved.account] = state.get(moved.account, 0.0) + moved.amount
            count += 1
    return state, count


def best_of(runs: int, fn, *args):
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def python_projection(store, n: int, runs: int) -> None:
    base_s, (base_state, base_count) = best_of(runs, bare_loop, store)

    def framework():
        p = el.Projector(store, Balances())
        return p.run(), p.state

    fw_s, (fw_count, fw_state) = best_of(runs, framework)
    assert fw_count == base_count == n, (fw_count, base_count, n)
    assert fw_state == base_state
    ratio = (fw_count / fw_s) / (base_count / base_s)
    print(f"python projection over {n:,} events (best of {runs}):")
    print(f"  bare loop (Arrow rows + msgspec decode): {base_count / base_s:>12,.0f} events/s")
    print(f"  el.Projector.run():                      {fw_count / fw_s:>12,.0f} events/s")
    print(f"  ratio: {ratio:.2f}x of the bare loop (target >= 0.5x)"
          f"  [{'ok' if ratio >= 0.5 else 'MISSED'}]")


BY_STREAM = """
    select stream_id, sum((data->>'amount')::double) as balance, count(*) as moves
    from events where type = 'Moved' group by stream_id
"""
BY_FIELD = """
    select data->>'account' as account, sum((data->>'amount')::double) as balance,
           count(*) as moves
    from events where type = 'Moved' group by 1
"""
MODES = {
    "key=stream_id, recompute affected keys": ("stream", BY_STREAM, {"key": "stream_id"}),
    "key=stream_id, combine sum": ("stream_sum", BY_STREAM, {
        "key": "stream_id", "combine": {"balance": "sum", "moves": "sum"}}),
    "key=a JSON field, recompute affected keys": ("field", BY_FIELD, {
        "key": "account", "key_expr": {"account": "data->>'account'"}}),
    "key=a JSON field, combine sum": ("field_sum", BY_FIELD, {
        "key": "account", "key_expr": {"account": "data->>'account'"},
        "combine": {"balance": "sum", "moves": "sum"}}),
}


def sql_projection(store, rounds: int) -> None:
    rng = random.Random(2)
    projections = {}
    for label, (name, query, options) in MODES.items():
        p = el.SqlProjection(store, f"bench_{name}", query, **options)
        start = time.perf_counter()
        p.refresh()
        print(f"sql projection [{label}]: first build over {store.head():,} events "
              f"{(time.perf_counter() - start) * 1e3:,.0f} ms")
        projections[label] = p
    times: dict[str, list[float]] = {label: [] for label in MODES}
    for _ in range(rounds):
        store.append_batch(moves(1000, rng))
        for label, p in projections.items():
            start = time.perf_counter()
            took = p.refresh()
            times[label].append(time.perf_counter() - start)
            assert took == 1000
    check = el.Projector(store, Balances())
    check.run()
    for label, p in projections.items():
        got = dict(p.df().iloc[:, :2].itertuples(index=False))
        want = check.state   # each account's stream id is its account name
        assert got.keys() == want.keys(), label
        assert all(abs(got[k] - v) < 1e-6 for k, v in want.items()), label
        median = statistics.median(times[label]) * 1e3
        print(f"sql projection [{label}]: refresh after 1,000 new events on "
              f"{store.head():,}: median {median:.1f} ms over {rounds} rounds "
              f"(target < 50 ms)  [{'ok' if median < 50 else 'MISSED'}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 100,000-event log")
    args = parser.parse_args()
    n = 100_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        store = el.connect(Path(tmp) / "bench.duckdb")
        start = time.perf_counter()
        build(store, n)
        print(f"built a {n:,}-event log in {time.perf_counter() - start:.1f} s")
        python_projection(store, n, runs=2 if args.quick else 1)
        sql_projection(store, rounds=5 if args.quick else 7)
        store.close()


if __name__ == "__main__":
    main()
