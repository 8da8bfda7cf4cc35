"""Aggregates, roots, the repository (with its cache and snapshots), given/when/then."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import eventlab as el
from eventlab.examples.bank import (
    Account,
    AccountClosed,
    AccountState,
    Close,
    Closed,
    Deposit,
    Deposited,
    InsufficientFunds,
    Open,
    Opened,
    Withdraw,
    Withdrew,
)

from conftest import new_store


@pytest.fixture(params=["memory", "duckdb-file", "postgres"])
def store(request, tmp_path):
    store = new_store(request.param, request, tmp_path)
    yield store
    store.close()


def test_fold_is_pure_and_ordered():
    events = [Opened("ada"), Deposited(10), Withdrew(4)]
    initial = Account().initial_state()
    state = Account().fold(events)
    assert state == AccountState("ada", 6.0, True, 2)
    assert initial == AccountState()  # untouched


def test_root_applies_at_once_and_queues():
    root = el.AggregateRoot.new(Account(), "a")
    assert root.handle(Open("ada")) == [Opened("ada")]
    root.handle(Deposit(5))
    assert (root.version, root.loaded_version, root.state.balance) == (2, 0, 5.0)
    assert root.pending == [Opened("ada"), Deposited(5.0)]


def test_repository_get_save_execute(store):
    repo = el.Repository(store, Account())
    root = repo.get("acc")
    assert (root.version, root.state) == (0, AccountState())
    root.handle(Open("ada"))
    assert repo.save(root) == 1
    assert root.pending == [] and root.loaded_version == 1
    repo.execute("acc", Deposit(30), metadata={"user": "ada"})
    assert repo.get("acc").state.balance == 30
    assert [e.metadata for e in store.read_stream("acc")][-1] == {"user": "ada"}
    fresh = el.Repository(store, Account())  # no cache: reads the store
    assert fresh.get("acc").state == repo.get("acc").state


def test_domain_errors_write_nothing(store):
    repo = el.Repository(store, Account())
    repo.execute("acc", Open("ada"))
    with pytest.raises(InsufficientFunds):
        repo.execute("acc", Withdraw(1))
    repo.execute("acc", Close())
    with pytest.raises(AccountClosed):
        repo.execute("acc", Deposit(1))
    assert store.stream_version("acc") == 2


def test_save_expects_the_loaded_version(store):
    repo = el.Repository(store, Account())
    repo.execute("acc", Open("ada"))
    repo.execute("acc", Deposit(10))
    one, two = repo.get("acc"), repo.get("acc")
    one.handle(Withdraw(10))
    two.handle(Withdraw(10))
    repo.save(one)
    with pytest.raises(el.ConcurrencyError) as caught:
        repo.save(two)
    assert (caught.value.expected, caught.value.actual) == (2, 3)
    assert repo.get("acc").state.balance == 0


def test_execute_retries_on_conflict(store):
    repo = el.Repository(store, Account())
    repo.execute("acc", Open("ada"))
    other = el.Repository(store, Account())
    other.get("acc")

    class Interloper(Account):  # another writer sneaks in during the first attempt
        calls = 0

        def handle(self, state, command):
            Interloper.calls += 1
            if Interloper.calls == 1:
                repo.execute("acc", Deposit(1))
            return super().handle(state, command)

    racing = el.Repository(store, Interloper())
    with pytest.raises(el.ConcurrencyError):
        racing.execute("acc", Deposit(5))
    Interloper.calls = 0
    assert racing.execute("acc", Deposit(5), retries=1).state.balance == 7
    assert [e.data for e in store.read_stream("acc")][-3:] == [
        Deposited(1.0), Deposited(1.0), Deposited(5.0)]


def test_save_all_writes_every_root_or_none(store):
    from eventlab.repository import save_all

    repo = el.Repository(store, Account())
    repo.execute("acc-1", Open("ada"))
    a, b = repo.get("acc-1"), repo.get("acc-2")
    a.handle(Deposit(5))
    b.handle(Open("bob"))
    assert save_all([(repo, a), (repo, b)], metadata={"by": "test"}) == [2, 1]
    assert (a.version, a.pending, b.version) == (2, [], 1)
    assert [e.metadata for e in store.read_all(2)] == [{"by": "test"}] * 2

    stale, fresh = repo.get("acc-1"), repo.get("acc-2")
    repo.execute("acc-1", Deposit(1))          # someone else moves acc-1 first
    stale.handle(Deposit(7))
    fresh.handle(Deposit(7))
    with pytest.raises(el.ConcurrencyError, match="'acc-1'"):
        save_all([(repo, fresh), (repo, stale)])
    assert store.stream_version("acc-2") == 1 and repo.get("acc-1").state.balance == 6
    other = el.Repository(el.InMemoryEventStore(), Account())
    elsewhere = other.get("acc-9")
    elsewhere.handle(Open("cy"))
    with pytest.raises(el.InvalidInputError, match="one store"):
        save_all([(repo, fresh), (other, elsewhere)])


def test_cached_state_catches_up_with_other_writers(store):
    reader = el.Repository(store, Account())
    writer = el.Repository(store, Account())
    writer.execute("acc", Open("ada"))
    assert reader.get("acc").version == 1
    writer.execute("acc", Deposit(3))
    store.append("acc", [Deposited(4)])
    assert reader.get("acc").state.balance == 7


def test_apply_failure_names_stream_version_and_type(store):
    class Fragile(Account):
        def apply(self, state, event):
            if isinstance(event, Withdrew):
                raise ValueError("cannot cope")
            return super().apply(state, event)

    store.append("acc", [Opened("ada"), Deposited(5), Withdrew(1)])
    with pytest.raises(el.ApplyError) as caught:
        el.Repository(store, Fragile()).get("acc")
    err = caught.value
    assert (err.stream_id, err.version, err.type) == ("acc", 3, "Withdrew")
    assert "stream 'acc', version 3, position 3, type 'Withdrew'" in str(err)
    assert isinstance(err.cause, ValueError)


def test_snapshots_are_written_every_n_and_used(store):
    repo = el.Repository(store, Account(), snapshot_every=10)
    repo.execute("acc", Open("ada"))
    for _ in range(24):
        repo.execute("acc", Deposit(1))
    version, _ = store.load_snapshot("acc", repo.snapshot_key)
    assert version == 20

    class Counting(Account):
        applied = 0

        def apply(self, state, event):
            Counting.applied += 1
            return super().apply(state, event)

    cold = el.Repository(store, Counting(), snapshot_every=10)
    cold.snapshot_key = repo.snapshot_key
    root = cold.get("acc")
    assert root.state == repo.get("acc").state == AccountState("ada", 24.0, True, 24)
    assert Counting.applied == 5  # only the events after the snapshot


def test_a_snapshot_that_no_longer_decodes_is_ignored(store):
    repo = el.Repository(store, Account(), snapshot_every=2)
    for command in (Open("ada"), Deposit(1), Deposit(2)):
        repo.execute("acc", command)
    store.save_snapshot("acc", repo.snapshot_key, 2, '{"saldo": "not a state"}')
    fresh = el.Repository(store, Account(), snapshot_every=2)
    assert fresh.get("acc").state == AccountState("ada", 3.0, True, 2)
    store.save_snapshot("acc", repo.snapshot_key, 2, "not json at all")
    assert el.Repository(store, Account(), snapshot_every=2).get("acc").state.balance == 3.0


def test_dict_state_snapshots():
    @dataclass(frozen=True)
    class Tally:
        word: str

    class Words(el.Aggregate):
        def initial_state(self):
            return {}

        def apply(self, state, event):
            return {**state, event.word: state.get(event.word, 0) + 1}

        def handle(self, state, command):
            return [Tally(command)]

    store = el.InMemoryEventStore()
    repo = el.Repository(store, Words(), snapshot_every=2)
    for w in "abab":
        repo.execute("w", w)
    fresh = el.Repository(store, Words(), snapshot_every=2)
    assert fresh.get("w").state == {"a": 2, "b": 2}


def test_given_when_then():
    el.given(Account(), [Opened("ada"), Deposited(5)]).when(Withdraw(5)).then([Withdrew(5.0)])
    el.given(Account(), [Opened("ada")]).when(Withdraw(100)).then_raises(
        InsufficientFunds, match="balance is 0")
    el.given(Account()).when(Open("ada")).then_state(AccountState("ada", 0.0, True, 0))


def test_given_when_then_fails_loudly():
    with pytest.raises(AssertionError) as caught:
        el.given(Account(), [Opened("ada")]).when(Deposit(5)).then([Deposited(6.0)])
    assert str(caught.value) == ("when Deposit(amount=5)\n"
                                 "  expected events: [Deposited(amount=6.0)]\n"
                                 "  produced events: [Deposited(amount=5.0)]")
    with pytest.raises(AssertionError) as caught:
        el.given(Account(), [Opened("ada"), Deposited(9)]).when(Withdraw(1)).then_raises(
            InsufficientFunds)
    assert str(caught.value) == ("when Withdraw(amount=1): expected InsufficientFunds, "
                                 "but it produced [Withdrew(amount=1.0)]")


def test_then_names_the_error_a_command_raised_instead():
    scenario = el.given(Account(), [Opened("ada")]).when(Withdraw(100))
    with pytest.raises(AssertionError) as caught:
        scenario.then([Withdrew(100.0)])
    assert str(caught.value) == (
        "when Withdraw(amount=100)\n"
        "  expected events: [Withdrew(amount=100.0)]\n"
        "  but it raised InsufficientFunds: cannot withdraw 100: the balance is 0.0")
    assert isinstance(caught.value.__cause__, InsufficientFunds)   # its traceback kept
    with pytest.raises(AssertionError, match=r"(?s)expected state: AccountState.*"
                                             r"but it raised InsufficientFunds: cannot"):
        scenario.then_state(AccountState("ada", -100.0, True, 2))


def test_then_raises_names_another_error_and_a_message_that_does_not_match():
    closed = el.given(Account(), [Opened("ada"), Closed("done")])
    with pytest.raises(AssertionError) as caught:
        closed.when(Withdraw(1)).then_raises(InsufficientFunds)
    assert str(caught.value) == ("when Withdraw(amount=1): expected InsufficientFunds, "
                                 "but it raised AccountClosed: the account is closed")
    assert isinstance(caught.value.__cause__, AccountClosed)
    with pytest.raises(AssertionError, match="its message 'the account is closed' does not "
                                             "contain 'overdrawn'"):
        closed.when(Withdraw(1)).then_raises(AccountClosed, match="overdrawn")
    assert isinstance(closed.when(Withdraw(1)).then_raises(AccountClosed), AccountClosed)


def test_then_state_shows_both_states():
    with pytest.raises(AssertionError) as caught:
        el.given(Account(), [Opened("ada")]).when(Deposit(5)).then_state(
            AccountState("ada", 6.0, True, 1))
    assert str(caught.value) == (
        "when Deposit(amount=5)\n"
        "  expected state: AccountState(owner='ada', balance=6.0, is_open=True, transactions=1)\n"
        "  got state: AccountState(owner='ada', balance=5.0, is_open=True, transactions=1)")


def test_a_reactions_then_names_what_it_raised_and_what_it_issued():
    from eventlab.testing import recorded

    class Refund(el.Reaction):
        def react(self, event):
            if event.data.amount > 10:
                raise ValueError("too much to refund")
            return [el.Command("account-b", Deposit(event.data.amount))]

    big = recorded(Withdrew(50.0), "account-a")
    with pytest.raises(AssertionError) as caught:
        el.given(Refund()).when(big).then([])
    assert str(caught.value).endswith("\n  expected commands: []\n"
                                      "  but it raised ValueError: too much to refund")
    assert isinstance(caught.value.__cause__, ValueError)
    small = recorded(Withdrew(5.0), "account-a")
    with pytest.raises(AssertionError) as caught:
        el.given(Refund()).when(small).then([])
    assert str(caught.value).endswith(
        "  expected commands: []\n  issued commands: "
        f"{[el.Command('account-b', Deposit(5.0))]!r}")
    with pytest.raises(AssertionError, match=r"call \.when\(recorded_event\) before"):
        el.given(Refund()).then([])


def test_a_stub_still_to_be_written_passes_through_unchanged():
    class Stub(Account):
        def handle(self, state, command):
            raise NotImplementedError("your code here")

    scenario = el.given(Stub()).when(Open("ada"))
    for check in (lambda: scenario.then([Opened("ada")]),
                  lambda: scenario.then_raises(InsufficientFunds),
                  lambda: scenario.then_state(AccountState("ada", 0.0, True, 0))):
        with pytest.raises(NotImplementedError, match="your code here"):
            check()
    assert isinstance(scenario.then_raises(NotImplementedError), NotImplementedError)


def test_then_without_when_says_what_is_missing():
    with pytest.raises(AssertionError, match=r"call \.when\(command\) before"):
        el.given(Account()).then([])


def test_demo_runs_end_to_end(capsys):
    from eventlab.cli import main

    main(["demo"])
    out = capsys.readouterr().out
    assert "rejected by the aggregate: InsufficientFunds" in out
    assert "the second loses: ConcurrencyError" in out
    assert "balance 71.0, open False" in out


def test_a_deleted_and_rewritten_stream_is_not_served_from_the_cache(store):
    repo = el.Repository(store, Account())
    repo.execute("acc", Open("ada"))
    repo.execute("acc", Deposit(100))
    store.delete_stream("acc")
    store.append("acc", [Opened("bob"), Deposited(1)])
    root = repo.get("acc")
    assert (root.state.owner, root.state.balance) == ("bob", 1.0)


def test_apply_error_names_the_stored_type_of_a_dict_event(store):
    class Strict(Account):
        def apply(self, state, event):
            if isinstance(event, dict):
                raise TypeError("not one of mine")
            return super().apply(state, event)

    store.append("acc", [Opened("ada"), el.NewEvent({"n": 1}, type="Unknown")])
    with pytest.raises(el.ApplyError) as caught:
        el.Repository(store, Strict()).get("acc")
    assert (caught.value.type, caught.value.version, caught.value.position) == ("Unknown", 2, 2)
