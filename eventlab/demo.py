"""The headless demo: a bank account example run end to end on the embedded DuckDB store.

>>> lines = []
>>> run_demo(print=lines.append)
>>> any("ConcurrencyError" in line for line in lines)
True
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from . import ConcurrencyError, DomainError, Repository, connect
from .examples.bank import Account, Close, Deposit, Open, Withdraw


def run_demo(path: str | None = None, print: Callable[[str], object] = print) -> None:
    """Open accounts, move money, hit a rule and a conflict, replay, reopen the file."""
    folder = None
    if path is None:
        folder = tempfile.TemporaryDirectory()
        path = str(Path(folder.name) / "bank.duckdb")
    store = connect(path)
    print(f"event store: {store!r}")
    accounts = Repository(store, Account())

    accounts.execute("account-1", Open("ada"), metadata={"user": "ada"})
    accounts.execute("account-1", Deposit(100))
    accounts.execute("account-1", Withdraw(30))
    accounts.execute("account-2", Open("grace"))
    accounts.execute("account-2", Deposit(5))
    print("appended 5 events to 2 streams; the global log:")
    for e in store.read_all():
        print(f"  #{e.position} {e.stream_id} v{e.version} {e.type} {e.data}")

    try:
        accounts.execute("account-2", Withdraw(50))
    except DomainError as rejected:
        print(f"rejected by the aggregate: {type(rejected).__name__}: {rejected}")

    first = accounts.get("account-1")
    second = accounts.get("account-1")
    first.handle(Deposit(1))
    second.handle(Withdraw(1))
    accounts.save(first)
    try:
        accounts.save(second)
    except ConcurrencyError as conflict:
        print(f"two writers on one version, the second loses: ConcurrencyError: {conflict}")
    accounts.execute("account-1", Close("moved away"))

    root = accounts.get("account-1")
    print(f"account-1 now: version {root.version}, state {root.state}")
    store.close()

    reopened = connect(path, read_only=True)
    replayed = Account().fold(e.data for e in reopened.read_stream("account-1"))
    print(f"reopened read-only and replayed {reopened.stream_version('account-1')} events: "
          f"balance {replayed.balance}, open {replayed.is_open}")
    print(f"the log holds {reopened.head()} events in {len(reopened.stream_ids())} streams")
    reopened.close()
    if folder is not None:
        folder.cleanup()
