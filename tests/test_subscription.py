"""Subscriptions: catch-up then live delivery, exactly once, on both stores."""

from __future__ import annotations

import logging
import random
import threading

import pytest

import eventlab as el
from eventlab.examples.bank import Closed, Deposited, Opened, Withdrew
from eventlab.subscription import Subscription, SubscriptionError

WAIT = 30  # seconds: generous, only a bound on a hang, never a speed assertion


def positions(store) -> list[int]:
    return [e.position for e in store.read_all()]


def test_catches_up_then_delivers_live_in_order(store):
    store.append("acc-1", [Opened("ada"), Deposited(10)])
    seen: list[el.RecordedEvent] = []
    with store.subscribe(seen.append) as sub:
        assert isinstance(sub, Subscription)
        assert sub.wait_until(2, timeout=WAIT)
        store.append("acc-2", [Opened("bob")])
        store.append("acc-1", [Withdrew(3)])
        assert sub.wait_until(store.head(), timeout=WAIT)
        assert sub.position == 4
    assert [(e.stream_id, e.version, e.type) for e in seen] == [
        ("acc-1", 1, "Opened"), ("acc-1", 2, "Deposited"), ("acc-2", 1, "Opened"),
        ("acc-1", 3, "Withdrew")]
    assert seen[3].data == Withdrew(3.0)


def test_from_position_skips_earlier_events(store):
    store.append("a", [Deposited(1), Deposited(2), Deposited(3)])
    seen = []
    with store.subscribe(seen.append, from_position=3) as sub:
        store.append("a", [Deposited(4)])
        assert sub.wait_until(4, timeout=WAIT)
    assert [e.data.amount for e in seen] == [3.0, 4.0]


def test_types_filter_delivers_only_those_and_still_advances(store):
    seen = []
    with store.subscribe(seen.append, types=[Opened, "Closed"]) as sub:
        store.append("a", [Opened("ada"), Deposited(5), Closed("bye"), Deposited(1)])
        assert sub.wait_until(4, timeout=WAIT)
        assert sub.position == 4
    assert [e.type for e in seen] == ["Opened", "Closed"]


def test_close_stops_delivery_and_unhooks(store):
    seen = []
    sub = store.subscribe(seen.append)
    store.append("a", [Deposited(1)])
    assert sub.wait_until(1, timeout=WAIT)
    sub.close()
    assert not sub.running
    store.append("a", [Deposited(2)])
    assert sub.wait_until(2, timeout=0.2) is False
    assert [e.position for e in seen] == [1]
    assert store._listeners == []
    sub.close()  # twice is harmless


def test_handler_error_stops_the_subscription_and_is_never_swallowed(store, caplog):
    seen = []

    def handler(event):
        if event.version == 2:
            raise ValueError("cannot handle this one")
        seen.append(event)

    caplog.set_level(logging.ERROR, logger="eventlab.subscription")
    store.append("a", [Deposited(1), Deposited(2), Deposited(3)])
    sub = store.subscribe(handler)
    with pytest.raises(SubscriptionError, match="cannot handle this one") as info:
        sub.wait_until(3, timeout=WAIT)
    err = info.value
    assert isinstance(err.cause, ValueError) and err.__cause__ is err.cause
    assert (err.event.stream_id, err.event.version, err.event.type) == ("a", 2, "Deposited")
    assert "version 2" in str(err) and "'Deposited'" in str(err)
    assert isinstance(sub.error, ValueError)
    assert sub.position == 1 and not sub.running
    assert [e.version for e in seen] == [1]
    assert "cannot handle this one" in caplog.text
    store.append("a", [Deposited(4)])
    with pytest.raises(SubscriptionError):
        sub.close()
    assert [e.version for e in seen] == [1]


def test_context_manager_raises_a_handler_error_at_exit(store):
    def handler(event):
        raise RuntimeError("broken handler")

    with pytest.raises(SubscriptionError, match="broken handler"), store.subscribe(handler):
        store.append("a", [Deposited(1)])
        threading.Event().wait(0.05)


def test_exactly_once_under_four_concurrent_writers(tmp_path):
    store = el.connect(tmp_path / "shared.duckdb")
    store.append("seed", [Deposited(float(i)) for i in range(200)])  # to catch up on
    early: list[int] = []
    late: list[int] = []
    # Woken only by the store's write notifications (no polling), so none may be lost.
    first = Subscription(store, lambda e: early.append(e.position), poll_interval=None)
    start = threading.Barrier(5)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        rng = random.Random(n)
        start.wait()
        try:
            for i in range(60):
                batch = [Deposited(float(i))] * rng.randint(1, 3)
                if i % 20 == 19:
                    batch = [Deposited(1.0)] * 80  # a large batch goes through Arrow
                store.append(f"writer-{n}-{rng.randint(0, 4)}", batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    start.wait()
    # A second subscriber joins while the writers are busy: its catch-up races live appends.
    threading.Event().wait(0.05)
    second = store.subscribe(lambda e: late.append(e.position))
    for t in threads:
        t.join()
    assert errors == []
    head = store.head()
    log = positions(store)
    assert log == list(range(1, head + 1))
    assert first.wait_until(head, timeout=WAIT) and second.wait_until(head, timeout=WAIT)
    first.close()
    second.close()
    assert early == log
    assert late == log
    assert head > 200 + 4 * 60
    store.close()


def test_writes_through_another_store_object_on_the_file_are_delivered(tmp_path):
    path = tmp_path / "two.duckdb"
    reader, writer = el.connect(path), el.connect(path)
    seen = []
    with Subscription(reader, seen.append, poll_interval=0.05) as sub:
        writer.append("a", [Deposited(1), Deposited(2)])
        assert sub.wait_until(2, timeout=WAIT)
    assert [e.position for e in seen] == [1, 2]
    writer.close()
    reader.close()


def test_bad_arguments_are_named(store):
    with pytest.raises(el.InvalidInputError, match="from_position"):
        store.subscribe(print, from_position=0)
    with pytest.raises(el.InvalidInputError, match="callable"):
        store.subscribe("not a function")
