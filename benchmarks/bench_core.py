"""Core benchmarks: single commands, batched appends, rehydration.

Run on demand: ``python benchmarks/bench_core.py [--quick]``. Every figure is a
ratio against a baseline measured in the same run on the same machine:

* single command (get + handle + save, one event) on a file store, against the
  ``eventsourcing`` package on SQLite doing the same (target >= 1.0x);
* a 10,000-event append against a raw DuckDB insert of the same rows from Arrow
  (target >= 0.7x);
* rehydrating one aggregate from 100,000 events against ``eventsourcing`` on
  SQLite (target >= 10x), and with a snapshot (target under 10 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

import eventlab as el
from eventlab.examples.bank import Account, Deposit, Deposited, Open, Opened


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def alternating_rates(contenders: dict[str, Any], rounds: int, step: int) -> dict[str, float]:
    """Commands per second of each ``contender(i)``, the median of ``rounds`` slices of
    ``step`` calls; the contenders take turns, so a change in the machine's load falls
    on all of them alike."""
    rates: dict[str, list[float]] = {label: [] for label in contenders}
    for r in range(rounds):
        for label, command in contenders.items():
            seconds, _ = timed(lambda command=command, r=r: [
                command(i) for i in range(r * step, (r + 1) * step)])
            rates[label].append(step / seconds)
    return {label: statistics.median(values) for label, values in rates.items()}


# -- the eventsourcing baseline --------------------------------------------------------

_bank_class = None


def eventsourcing_app(path: Path):
    """A bank on the ``eventsourcing`` package, persisted in a SQLite file."""
    global _bank_class
    os.environ.update(PERSISTENCE_MODULE="eventsourcing.sqlite", SQLITE_DBNAME=str(path))
    if _bank_class is None:
        _bank_class = define_bank()
    return _bank_class()


def define_bank():
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class BankAccount(Aggregate):
        @event("Opened")
        def __init__(self, owner: str) -> None:
            self.owner = owner
            self.balance = 0.0

        @event("Deposited")
        def deposit(self, amount: float) -> None:
            self.balance += amount

    class Bank(Application):
        def open(self, owner: str) -> uuid.UUID:
            account = BankAccount(owner)
            self.save(account)
            return account.id

        def deposit(self, account_id: uuid.UUID, amount: float) -> None:
            account = self.repository.get(account_id)
            account.deposit(amount)
            self.save(account)

    return Bank


def single_commands(folder: Path, n: int, accounts: int, rounds: int = 5) -> None:
    """Each contender runs ``rounds`` slices of ``n / rounds`` commands, the slices
    taking turns, so a change in the machine's load falls on all of them alike."""
    bank = eventsourcing_app(folder / "es.sqlite")
    ids = [bank.open(f"owner-{i}") for i in range(accounts)]
    raw = duckdb.connect(str(folder / "raw.duckdb"))
    raw.execute("create table t (stream_id varchar, version bigint, data varchar)").fetchall()
    stores, repos = [], {}
    for label, cache in (("eventlab, DuckDB file", 10_000),
                         ("eventlab, DuckDB file, no cache", 0)):
        store = el.connect(folder / f"el-{cache}.duckdb")
        stores.append(store)
        repos[label] = el.Repository(store, Account(), cache_size=cache)
        for i in range(accounts):
            repos[label].execute(f"account-{i}", Open("owner"))

    step = n // rounds
    contenders = {
        "eventsourcing on SQLite (file)": lambda i: bank.deposit(ids[i % accounts], 1.0),
        "raw DuckDB one-row insert": lambda i: raw.execute(
            "insert into t values (?, ?, ?)", [f"s-{i}", i, "{}"]).fetchall(),
        **{label: (lambda i, repo=repo: repo.execute(f"account-{i % accounts}", Deposit(1.0)))
           for label, repo in repos.items()},
    }
    rate = alternating_rates(contenders, rounds, step)
    raw.close()
    for store in stores:
        store.close()

    baseline = rate["eventsourcing on SQLite (file)"]
    print(f"single command, get + handle + save, {n} commands over {accounts} streams "
          f"(median of {rounds} alternating slices)")
    for label, value in rate.items():
        note = ("(baseline)" if value == baseline else
                f"{value / baseline:5.2f}x" + ("" if label.startswith("raw") else
                                               "  (target >= 1.0x)"))
        print(f"  {label:33s} {value:8.0f} per s   {note}")


def batched_append(folder: Path, size: int, rounds: int) -> None:
    def rows(offset: int):
        now = datetime.now(UTC)
        return pa.table({
            "position": pa.array(range(offset + 1, offset + size + 1), pa.int64()),
            "stream_id": pa.array(["big"] * size),
            "version": pa.array(range(offset + 1, offset + size + 1), pa.int64()),
            "type": pa.array(["Deposited"] * size),
            "data": pa.array([f'{{"amount":{i}.0}}' for i in range(size)]),
            "metadata": pa.array(["{}"] * size),
            "event_id": pa.array([str(uuid.uuid4()) for _ in range(size)]),
            "recorded_at": pa.array([now] * size, pa.timestamp("us", tz="UTC")),
            "schema_version": pa.array([1] * size, pa.int32()),
        })

    with el.connect(folder / "schema.duckdb"):
        pass  # only to create a table of the very same shape for the raw insert
    # Both sides keep their database open across rounds, as an application does;
    # round 0 warms each up and is not counted.
    raw = duckdb.connect(str(folder / "schema.duckdb"))
    store = el.connect(folder / "lab.duckdb")
    raw_times, lab_times = [], []
    for r in range(rounds + 1):
        batch_rows = rows(r * size)
        seconds, _ = timed(lambda batch_rows=batch_rows: raw.execute(
            "insert into eventlab_events select position, stream_id, version, type, data, "
            "metadata, event_id::uuid, recorded_at, schema_version from batch_rows").fetchall())
        raw_times.append(seconds)
        events = [Deposited(float(i)) for i in range(size)]
        seconds, _ = timed(store.append, "big", events)
        lab_times.append(seconds)
    raw.close()
    store.close()
    raw_times, lab_times = raw_times[1:], lab_times[1:]
    raw_t, lab_t = statistics.median(raw_times), statistics.median(lab_times)
    print(f"\nbatched append, {size} events per call (median of {rounds})")
    print(f"  raw DuckDB insert from Arrow      {size / raw_t:10.0f} events/s   (baseline)")
    print(f"  eventlab store.append             {size / lab_t:10.0f} events/s   "
          f"{raw_t / lab_t:5.2f}x  (target >= 0.7x)")


def rehydration(folder: Path, n: int) -> None:
    bank = eventsourcing_app(folder / "es-long.sqlite")
    account_id = bank.open("long")
    from eventsourcing.domain import Aggregate  # noqa: F401  (loaded by eventsourcing_app)

    account = bank.repository.get(account_id)
    for chunk in range(0, n - 1, 1000):
        for _ in range(min(1000, n - 1 - chunk)):
            account.deposit(1.0)
        bank.save(account)
    baseline, loaded = timed(bank.repository.get, account_id)
    assert loaded.version == n

    with el.connect(folder / "long.duckdb") as store:
        store.append("long", [Opened("long")])
        for chunk in range(0, n - 1, 10_000):
            store.append("long", [Deposited(1.0)] * min(10_000, n - 1 - chunk))
        cold = []
        for _ in range(3):
            seconds, root = timed(el.Repository(store, Account()).get, "long")
            cold.append(seconds)
        assert root.version == n and root.state.balance == n - 1
        with_snapshots = el.Repository(store, Account(), snapshot_every=1000)
        with_snapshots.snapshot("long")
        warm = []
        for _ in range(20):
            seconds, root = timed(
                el.Repository(store, Account(), snapshot_every=1000).get, "long")
            warm.append(seconds)
        assert root.state.balance == n - 1
    lab = statistics.median(cold)
    print(f"\nrehydrate one aggregate from {n} events")
    print(f"  eventsourcing on SQLite           {baseline * 1000:9.1f} ms   (baseline)")
    print(f"  eventlab, DuckDB file             {lab * 1000:9.1f} ms   "
          f"{baseline / lab:5.1f}x  (target >= 10x)")
    print(f"  eventlab, from a snapshot         {statistics.median(warm) * 1000:9.2f} ms   "
          "(target < 10 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        single_commands(folder, n=300 if args.quick else 3000, accounts=100)
        batched_append(folder, size=10_000, rounds=2 if args.quick else 5)
        rehydration(folder, n=10_000 if args.quick else 100_000)


if __name__ == "__main__":
    main()
