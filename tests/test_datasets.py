"""Synthetic course logs: valid for their aggregates, deterministic, spread over days."""

from __future__ import annotations

import pytest

import eventlab as el
from eventlab.examples.bank import Account
from eventlab.examples.shop import Order


def replay(store, aggregate, stream_id):
    state = aggregate.initial_state()
    for event in store.load_events(stream_id):
        state = aggregate.apply(state, event)
    return state


def test_bank_is_valid_and_deterministic():
    store = el.datasets.bank(n_accounts=20, seed=7)
    assert len(store.stream_ids()) == 20
    for stream_id in store.stream_ids():
        state = replay(store, Account(), stream_id)
        assert state.owner is not None and state.balance >= -1e-9
    first = store.to_df()
    assert first.equals(el.datasets.bank(n_accounts=20, seed=7).to_df())
    other = el.datasets.bank(n_accounts=20, seed=8).to_df()
    assert not other["recorded_at"].equals(first["recorded_at"])


def test_bank_times_are_spread_over_days_in_position_order():
    df = el.datasets.bank(n_accounts=30, seed=1).to_df()
    assert df["recorded_at"].is_monotonic_increasing
    assert (df["recorded_at"].max() - df["recorded_at"].min()).days >= 20
    assert set(df["type"]) >= {"Opened", "Deposited", "Withdrew"}


def test_datasets_append_into_a_given_store():
    store = el.InMemoryEventStore()
    assert el.datasets.orders(n_orders=15, seed=3, store=store) is store
    el.datasets.bank(n_accounts=5, seed=3, store=store)
    assert {s.split("-")[0] for s in store.stream_ids()} == {"order", "account"}


def test_orders_follow_the_order_lifecycle():
    store = el.datasets.orders(n_orders=40, seed=2)
    statuses = {replay(store, Order(), s).status for s in store.stream_ids()}
    assert "shipped" in statuses and statuses <= {"open", "checked_out", "paid", "shipped",
                                                  "cancelled"}
    for variant in el.analytics.variants(store)["variant"]:
        assert variant[0] == "OrderCreated"
        if "Shipped" in variant:
            assert variant.index("Paid") < variant.index("Shipped")


def test_bad_sizes_are_rejected():
    with pytest.raises(el.InvalidInputError, match="int >= 0"):
        el.datasets.bank(n_accounts=-1)
