"""Synthetic event logs for the course: bank accounts and shopping orders.

Each generator runs commands through the example aggregates (so every log is
one the domain allows), spreads the events over days with realistic gaps, and
appends them in time order with one batch. The same seed gives the same log,
event ids included.

>>> import eventlab as el
>>> store = el.datasets.bank(n_accounts=3, seed=1)
>>> sorted(store.stream_ids())
['account-001', 'account-002', 'account-003']
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from .aggregate import Aggregate
from .errors import DomainError
from .examples import bank as b
from .examples import shop as s
from .store.base import EventStore, InvalidInputError

_NAMES = ("ada", "grace", "alan", "edsger", "barbara", "donald", "frances", "john",
          "margaret", "ken", "dennis", "radia", "tim", "lynn", "niklaus", "hedy")
_PRODUCTS = (("tea", 3.5), ("coffee", 7.9), ("mug", 9.0), ("kettle", 29.0),
             ("biscuits", 2.4), ("teapot", 24.5), ("filter", 4.2), ("grinder", 39.0))
_DEFAULT_START = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)


def bank(n_accounts: int = 100, seed: int = 1, store: EventStore | None = None,
         start: datetime = _DEFAULT_START, days: int = 90) -> EventStore:
    """Accounts opened over ``days`` from ``start``, with deposits, withdrawals (never
    overdrawn) and some closures. Appends to ``store`` (a new in-memory DuckDB store
    when None) and returns it."""
    rng = random.Random(seed)

    def life(i: int, run: Callable[[Any, datetime], None], at: datetime) -> None:
        run(b.Open(rng.choice(_NAMES)), at)
        for _ in range(rng.randint(2, 25)):
            at += timedelta(hours=rng.expovariate(1 / 30))
            amount = round(rng.choice((10, 20, 50, 100, 250)) * rng.uniform(0.5, 3), 2)
            run(b.Deposit(amount) if rng.random() < 0.55 else b.Withdraw(amount), at)
        if rng.random() < 0.15:
            run(b.Close(rng.choice(("moved", "unhappy", "duplicate"))),
                at + timedelta(days=rng.uniform(1, 10)))

    return _generate(store, b.Account(), "account-{:03d}", n_accounts, rng, start, days,
                     life)


def orders(n_orders: int = 200, seed: int = 1, store: EventStore | None = None,
           start: datetime = _DEFAULT_START, days: int = 60) -> EventStore:
    """Shopping orders: created, items added (and sometimes removed), checked out, paid
    and shipped; some are abandoned or cancelled. Appends to ``store`` (a new in-memory
    DuckDB store when None) and returns it."""
    rng = random.Random(seed)

    def life(i: int, run: Callable[[Any, datetime], None], at: datetime) -> None:
        run(s.Create(rng.choice(_NAMES)), at)
        skus: list[str] = []
        for _ in range(rng.randint(1, 6)):
            at += timedelta(minutes=rng.expovariate(1 / 4))
            sku, price = rng.choice(_PRODUCTS)
            run(s.AddItem(sku, rng.randint(1, 3), price), at)
            skus.append(sku)
        if len(skus) > 1 and rng.random() < 0.3:
            at += timedelta(minutes=rng.expovariate(1 / 3))
            run(s.RemoveItem(rng.choice(skus)), at)
        if rng.random() < 0.1:
            return                                   # an abandoned cart
        at += timedelta(minutes=rng.expovariate(1 / 5))
        run(s.CheckOut(), at)
        if rng.random() < 0.08:
            run(s.Cancel("changed my mind"), at + timedelta(hours=rng.uniform(1, 24)))
            return
        at += timedelta(minutes=rng.expovariate(1 / 20))
        run(s.Pay(rng.choice(("card", "card", "paypal", "invoice"))), at)
        run(s.Ship(rng.choice(("post", "courier"))), at + timedelta(hours=rng.uniform(4, 72)))

    return _generate(store, s.Order(), "order-{:04d}", n_orders, rng, start, days, life)


def _generate(store: EventStore | None, aggregate: Aggregate, name: str, count: int,
              rng: random.Random, start: datetime, days: int,
              life: Callable[[int, Callable[[Any, datetime], None], datetime], None],
              ) -> EventStore:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidInputError(f"the number of streams must be an int >= 0, got {count!r}")
    if store is None:
        from .store import connect

        store = connect()
    rows: list[tuple[datetime, int, str, str, str, str]] = []
    # ids are a function of the seed (so a dataset added again is a safe retry) and of
    # the dataset (so two datasets with one seed never share an id)
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"eventlab:datasets:{name}")
    for i in range(1, count + 1):
        stream_id = name.format(i)
        state = aggregate.initial_state()

        def run(command: Any, at: datetime, stream_id: str = stream_id) -> None:
            nonlocal state
            try:
                events = aggregate.handle(state, command)
            except DomainError:
                return                      # the domain said no: nothing happened
            for event in events:
                state = aggregate.apply(state, event)
                type_name, data, _ = store.registry.encode(event)
                event_id = str(uuid.uuid5(namespace, f"{rng.getrandbits(128):032x}"))
                rows.append((at, len(rows), stream_id, type_name, data, event_id))

        life(i, run, start + timedelta(days=rng.uniform(0, days * 0.7)))
    rows.sort()
    frame = pd.DataFrame(rows, columns=["recorded_at", "n", "stream_id", "type", "data",
                                        "event_id"]).drop(columns="n")
    if len(frame):
        frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], utc=True)
        store.append_batch(frame)
    return store
