"""Reactor benchmark: a reaction that issues one command per event, against calling
``Repository.execute`` for the same commands directly, in the same run (target >= 0.5x).

Each round writes ``step`` payment requests (not timed), then times the reactor's
``run()`` over them: it reads them, asks the reaction, executes one deposit per
request with its derived event id and causation metadata, reads its own effects
once more (they cause nothing) and saves its checkpoint. The baseline executes
the same deposits with a plain repository on a store of the same kind and size.
Rounds alternate between the two, so a change in the machine's load falls on both.
It runs on the memory store, a DuckDB file (empty, and with 200,000 older events)
and, when PostgreSQL's programs are installed, a throwaway durable server.

    .venv/bin/python benchmarks/bench_reactions.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import uuid
from pathlib import Path

from bench_core import timed

import eventlab as el
from eventlab.examples.bank import Account, Deposit, Open
from eventlab.pgserver import ThrowawayPostgres, postgres_binaries

ACCOUNTS = 100


class Payments(el.Reaction):
    types = ("PaymentRequested",)

    def react(self, event):
        return [el.Command(event.data["account"], Deposit(event.data["amount"]))]


def _open(store: el.EventStore) -> el.Repository:
    repo = el.Repository(store, Account())
    for n in range(ACCOUNTS):
        repo.execute(f"account-{n}", Open(f"owner {n}"))
    return repo


def _filler(store: el.EventStore, events: int) -> None:
    """Older history, so the log is not tiny: ``events`` events in 1,000 streams."""
    import pandas as pd

    if events:
        store.append_batch(pd.DataFrame({
            "stream_id": [f"old-{n % 1000}" for n in range(events)],
            "type": "Noted", "data": "{}"}))


def compare(make_store, label: str, rounds: int, step: int, history: int) -> float:
    direct_store, reactor_store = make_store("direct"), make_store("reactor")
    for store in (direct_store, reactor_store):
        _filler(store, history)
    direct = _open(direct_store)
    _open(reactor_store)
    reactor = el.Reactor(reactor_store, Payments(), aggregate=Account(), name="payments")
    reactor.run()
    direct_rates, reactor_rates, n = [], [], 0
    for _ in range(rounds):
        commands = [(f"account-{(n + i) % ACCOUNTS}", Deposit(1)) for i in range(step)]
        seconds, _ = timed(lambda commands=commands: [direct.execute(s, c) for s, c in commands])
        direct_rates.append(step / seconds)
        for stream_id, _command in commands:   # the requests the reactor will react to
            reactor_store.append(f"payment-{n}", [el.NewEvent(
                {"account": stream_id, "amount": 1}, type="PaymentRequested")])
            n += 1
        seconds, issued = timed(reactor.run)
        assert issued == step, issued
        reactor_rates.append(step / seconds)
    d, r = statistics.median(direct_rates), statistics.median(reactor_rates)
    ratio = r / d
    print(f"{label:<34} direct {d:8.0f} commands/s   reactor {r:8.0f} commands/s   "
          f"{ratio:.2f}x  (target >= 0.5x)")
    for store in (direct_store, reactor_store):
        store.close()
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args()
    rounds, step = (3, 200) if args.quick else (5, 500)
    with tempfile.TemporaryDirectory() as folder:
        def duckdb_file(name: str) -> el.EventStore:
            return el.connect(Path(folder) / f"{name}-{len(list(Path(folder).iterdir()))}.duckdb")

        compare(lambda _name: el.InMemoryEventStore(), "memory store", rounds, step, 0)
        compare(duckdb_file, "DuckDB file", rounds, step, 0)
        compare(duckdb_file, "DuckDB file, 200k events before", rounds, step, 200_000)
    if postgres_binaries() is None:
        print("PostgreSQL: not installed, left out")
        return
    with ThrowawayPostgres(durable=True) as server:
        def postgres(name: str) -> el.EventStore:
            return el.connect(server.url, schema=f"{name}_{uuid.uuid4().hex[:8]}")

        compare(postgres, "PostgreSQL", rounds, step, 0)


if __name__ == "__main__":
    main()
