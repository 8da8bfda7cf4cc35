"""Reactions: the transfer saga, exactly-once effects, failures, chains, on every store."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import time

import pytest

import eventlab as el
from eventlab.chains import COLUMNS
from eventlab.examples.bank import Account, Close, Deposit, Deposited, Open, Withdraw, Withdrew
from eventlab.examples.transfers import (
    AGGREGATES,
    Complete,
    RequestTransfer,
    Transfer,
    TransferRequested,
    Transfers,
)
from eventlab.reactions import effect_id, failure_id
from eventlab.testing import recorded


def _accounts(store: el.EventStore, **balances: float) -> el.Repository:
    accounts = el.Repository(store, Account())
    for name, balance in balances.items():
        accounts.execute(f"account-{name}", Open(name))
        if balance:
            accounts.execute(f"account-{name}", Deposit(balance))
    return accounts


def _request(store: el.EventStore, transfer: str, source: str, target: str,
             amount: float) -> el.RecordedEvent:
    el.Repository(store, Transfer()).execute(
        transfer, RequestTransfer(f"account-{source}", f"account-{target}", amount))
    return next(store.read_stream(transfer))


def _balance(store: el.EventStore, name: str) -> float:
    return el.Repository(store, Account()).get(f"account-{name}").state.balance


def _chain(store: el.EventStore, first: el.RecordedEvent) -> list[el.RecordedEvent]:
    """Every event of ``first``'s chain, read back through the plain API."""
    first_id = str(first.event_id)
    return [e for e in store.read_all()
            if str(e.event_id) == first_id or e.metadata.get("correlation_id") == first_id]


def _assert_linear_chain(chain: list[el.RecordedEvent], reactor: str) -> None:
    """Each event after the first was caused by the one before it, and all share the
    first's correlation; the reactor's name and the depth are on each."""
    first = chain[0]
    assert "causation_id" not in first.metadata
    for depth, (cause, effect) in enumerate(itertools.pairwise(chain), start=1):
        assert effect.metadata == {"causation_id": str(cause.event_id),
                                   "correlation_id": str(first.event_id),
                                   "reactor": reactor, "depth": depth}, effect


# -- the transfer saga ---------------------------------------------------------------------

def test_a_transfer_withdraws_deposits_and_completes(store):
    _accounts(store, a=100, b=0)
    request = _request(store, "transfer-1", "a", "b", 30)
    reactor = el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers")

    assert reactor.run() == 3
    assert (_balance(store, "a"), _balance(store, "b")) == (70, 30)
    chain = _chain(store, request)
    assert [(e.stream_id, e.type) for e in chain] == [
        ("transfer-1", "TransferRequested"), ("account-a", "Withdrew"),
        ("account-b", "Deposited"), ("transfer-1", "TransferCompleted")]
    _assert_linear_chain(chain, "transfers")
    # ids come from the reactor's name, the cause and the command: the same every time
    assert [e.event_id for e in chain[1:]] == [
        effect_id("transfers", str(cause.event_id), 0, 0) for cause in chain[:-1]]
    assert (reactor.commands, reactor.refused, reactor.skipped) == (3, 0, 0)


def test_a_refused_deposit_is_refunded_and_the_transfer_fails(store):
    accounts = _accounts(store, a=100, b=0)
    accounts.execute("account-b", Close("moved away"))
    request = _request(store, "transfer-1", "a", "b", 30)
    reactor = el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers")

    reactor.run()
    assert (_balance(store, "a"), _balance(store, "b")) == (100, 0)
    chain = _chain(store, request)
    assert [(e.stream_id, e.type) for e in chain] == [
        ("transfer-1", "TransferRequested"), ("account-a", "Withdrew"),
        ("reactor-transfers", "ReactionFailed"), ("account-a", "Deposited"),
        ("transfer-1", "TransferFailed")]
    _assert_linear_chain(chain, "transfers")
    failed = chain[2].data
    assert (failed.cause_id, failed.target, failed.error, failed.command) == (
        str(chain[1].event_id), "account-b", "AccountClosed", "Deposit(amount=30.0)")
    assert chain[4].data.reason == "refunded: the account is closed"
    assert chain[2].event_id == failure_id("transfers", str(chain[1].event_id), 0)
    assert reactor.refused == 1
    # the refund answered the failure: it is settled, and a retry must not pay b too
    assert reactor.failures().empty
    assert reactor.failures(open_only=False)[
        ["target", "error", "message", "answered", "resolved"]].values.tolist() == [
        ["account-b", "AccountClosed", "the account is closed", True, False]]
    head = store.head()
    assert reactor.retry() == 0 and store.head() == head


def test_a_refused_withdrawal_fails_the_transfer_and_moves_nothing(store):
    _accounts(store, a=10, b=0)
    request = _request(store, "transfer-1", "a", "b", 30)
    el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers").run()

    assert (_balance(store, "a"), _balance(store, "b")) == (10, 0)
    chain = _chain(store, request)
    assert [e.type for e in chain] == ["TransferRequested", "ReactionFailed", "TransferFailed"]
    _assert_linear_chain(chain, "transfers")
    assert chain[2].data.reason == "cannot withdraw 30.0: the balance is 10.0"


def test_many_transfers_between_the_same_accounts_keep_money_whole(store):
    _accounts(store, a=100, b=50, c=0)
    moves = [("a", "b", 30), ("b", "c", 60), ("c", "a", 200), ("a", "c", 70), ("b", "a", 5)]
    for number, (source, target, amount) in enumerate(moves):
        _request(store, f"transfer-{number}", source, target, amount)
    el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers").run()

    # The log's order decides: every withdrawal (one step from its request) comes
    # before any deposit (two steps), so b cannot pay 60 before a's 30 reach it.
    outcomes = [list(store.read_stream(f"transfer-{n}"))[-1].type for n in range(len(moves))]
    assert outcomes == ["TransferCompleted", "TransferFailed", "TransferFailed",
                        "TransferCompleted", "TransferCompleted"]
    balances = {n: _balance(store, n) for n in "abc"}
    assert balances == {"a": 100 - 30 - 70 + 5, "b": 50 + 30 - 5, "c": 70}
    assert sum(balances.values()) == 150


# -- exactly once ----------------------------------------------------------------------------

def test_a_second_run_and_a_second_reactor_of_the_same_name_write_nothing(store):
    _accounts(store, a=100, b=0)
    for n in range(5):
        _request(store, f"transfer-{n}", "a", "b", 10)
    first = el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers")
    assert first.run() == 15
    head = store.head()
    assert first.run() == 0
    second = el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers")
    assert second.position == head and second.run() == 0

    # Even with its checkpoint lost, a reactor finds every effect and writes none again.
    store.save_checkpoint("reactor:transfers", 0, None, reset=True)
    third = el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers")
    assert third.run() == 0
    assert (third.skipped, store.head()) == (15, head)
    assert (_balance(store, "a"), _balance(store, "b")) == (50, 50)


class _Payments(el.Reaction):
    """One deposit per payment request: the reaction of the crash tests."""

    def __init__(self, broken_at: int | None = None, where: str = "react") -> None:
        self.broken_at, self.where = broken_at, where

    def react(self, event):
        if event.type != "PaymentRequested":
            return []
        if event.data["n"] == self.broken_at:
            if self.where == "react":
                raise ValueError(f"cannot read payment {self.broken_at}")
            return [el.Command(event.data["account"], f"pay {self.broken_at}")]  # no command
        return [el.Command(event.data["account"], Deposit(event.data["amount"]))]


def _request_payments(store: el.EventStore, count: int, accounts: int = 10) -> None:
    repo = el.Repository(store, Account())
    for n in range(accounts):
        repo.execute(f"account-{n}", Open(f"owner {n}"))
    for n in range(count):
        store.append(f"payment-{n}", [el.NewEvent(
            {"n": n, "account": f"account-{n % accounts}", "amount": 1}, type="PaymentRequested")])


def _effects_per_request(store: el.EventStore) -> dict[str, int]:
    requests = {str(e.event_id): 0 for e in store.read_all(types=["PaymentRequested"])}
    for event in store.read_all(types=["Deposited"]):
        cause = event.metadata.get("causation_id")
        if cause is not None:
            requests[cause] += 1
    return requests


@pytest.mark.parametrize("where, says", [("react", "cannot read payment 25"),
                                         ("handle", "Account does not handle str")])
def test_a_reactor_that_broke_midway_is_finished_by_the_next_without_duplicates(
        store, where, says):
    _request_payments(store, 40)
    broken = el.Reactor(store, _Payments(broken_at=25, where=where), aggregate=Account(),
                        name="pay", checkpoint_every=10)
    with pytest.raises(el.ReactionError, match=says) as failed:
        broken.run()
    assert "reactor 'pay'" in str(failed.value) and failed.value.type == "PaymentRequested"
    done = sum(_effects_per_request(store).values())
    assert done == 25
    assert store.load_checkpoint("reactor:pay")[0] < failed.value.position   # behind the break

    fixed = el.Reactor(store, _Payments(), aggregate=Account(), name="pay", checkpoint_every=10)
    fixed.run()
    assert set(_effects_per_request(store).values()) == {1}
    assert fixed.commands == 40 - done


_KILLED_REACTOR = textwrap.dedent("""
    import sys, time
    import eventlab as el
    from eventlab.examples.bank import Account
    sys.path.insert(0, sys.argv[2])
    from test_reactions import _Payments

    class Slow(Account):      # a little slower, so the kill lands mid-run
        def handle(self, state, command):
            time.sleep(0.004)
            print("handled", flush=True)
            return super().handle(state, command)

    store = el.connect(sys.argv[1])
    # no checkpoint before the end: a restart must find every effect by its id
    el.Reactor(store, _Payments(), aggregate=Slow(), name="pay", checkpoint_every=500).run()
    print("finished", flush=True)
""")


def test_a_reactor_killed_mid_run_and_restarted_makes_one_effect_per_request(tmp_path):
    import os
    import signal

    path = tmp_path / "log.duckdb"
    with el.connect(path) as store:
        _request_payments(store, 200)
    reactor = subprocess.Popen(
        [sys.executable, "-c", _KILLED_REACTOR, str(path), os.path.dirname(__file__)],
        stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(150):
            assert reactor.stdout.readline().strip() == "handled"
        os.kill(reactor.pid, signal.SIGKILL)
    finally:
        reactor.kill()
        reactor.wait()
    assert reactor.returncode == -signal.SIGKILL

    with el.connect(path) as store:
        before = sum(_effects_per_request(store).values())
        assert 0 < before < 200   # the kill came mid-run: work done, and work left
        restarted = el.Reactor(store, _Payments(), aggregate=Account(), name="pay")
        assert restarted.position == 0   # no checkpoint was saved
        restarted.run()
        effects = _effects_per_request(store)
        assert len(effects) == 200 and set(effects.values()) == {1}
        assert (restarted.commands, restarted.skipped) == (200 - before, before)
        balances = [_balance(store, str(n)) for n in range(10)]
        assert balances == [20.0] * 10


# -- failures --------------------------------------------------------------------------------

class _Pay(el.Reaction):
    """Pay the target of a request, with no compensation."""

    def react(self, event):
        if isinstance(event.data, TransferRequested):
            return [el.Command(event.data.target, Deposit(event.data.amount))]
        return []


def test_a_refused_command_is_recorded_queryable_and_retried_once(store):
    _accounts(store, a=0)
    _request(store, "transfer-1", "a", "b", 30)        # account-b is not open yet
    reactor = el.Reactor(store, _Pay(), aggregate=Account(), name="pay")
    assert reactor.run() == 1 and reactor.refused == 1
    failures = reactor.failures()
    assert failures[["target", "error", "attempt", "resolved"]].values.tolist() == [
        ["account-b", "AccountNotOpen", 1, False]]
    found = store.sql("select stream_id, data->>'message' as message from events "
                      "where type = 'ReactionFailed'")
    assert found.values.tolist() == [["reactor-pay", "open the account first"]]
    assert reactor.run() == 0 and reactor.refused == 1      # recorded once, never looping

    assert reactor.retry() == 0                           # still not open: refused again
    assert reactor.failures()["attempt"].tolist() == [2]
    el.Repository(store, Account()).execute("account-b", Open("bob"))
    assert reactor.retry() == 1
    assert _balance(store, "b") == 30
    assert reactor.failures().empty
    # the row keeps the last refused attempt; the third one went through
    assert reactor.failures(open_only=False)[["attempt", "resolved"]].values.tolist() == [
        [2, True]]
    retried = [e.data for e in store.read_stream("reactor-pay")][-1]
    assert (retried.attempt, retried.target) == (3, "account-b")
    assert reactor.retry() == 0
    assert el.Reactor(store, _Pay(), aggregate=Account(), name="pay").run() == 0
    assert _balance(store, "b") == 30


class _Echo(el.Reaction):
    """Every deposit causes another one: a reaction that feeds itself."""

    def react(self, event):
        return [el.Command(event.stream_id, Deposit(1))] if event.type == "Deposited" else []


def test_a_reaction_that_feeds_itself_stops_at_max_depth(store):
    _accounts(store, a=1)
    reactor = el.Reactor(store, _Echo(), aggregate=Account(), name="echo", max_depth=5)
    reactor.run()
    assert _balance(store, "a") == 1 + 5
    assert reactor.failures()[["error", "attempt"]].values.tolist() == [["ChainTooLong", 1]]
    assert "5 reactions deep" in reactor.failures()["message"][0]
    head = store.head()
    assert reactor.run() == 0
    assert el.Reactor(store, _Echo(), aggregate=Account(), name="echo", max_depth=5).run() == 0
    assert store.head() == head


def test_commands_no_aggregate_takes_or_handles_stop_the_reactor_loudly(store):
    _accounts(store, a=10)
    store.append("other-1", [el.NewEvent({"n": 1}, type="Poke")])

    class Stray(el.Reaction):
        def react(self, event):
            return [el.Command("elsewhere-1", Deposit(1))] if event.type == "Poke" else []

    with pytest.raises(el.ReactionError, match="no aggregate takes stream 'elsewhere-1'"):
        el.Reactor(store, Stray(), aggregate={"account-": Account()}, name="stray").run()

    class Odd(el.Reaction):
        def react(self, event):
            return [el.Command("account-a", "deposit 1")] if event.type == "Poke" else []

    with pytest.raises(el.ReactionError, match=r"Account\.handle of command \#1") as failed:
        el.Reactor(store, Odd(), aggregate=Account(), name="odd").run()
    assert failed.value.stream_id == "other-1"
    assert "Account does not handle str" in str(failed.value)

    class NotCommands(el.Reaction):
        def react(self, event):
            return ["deposit"]

    with pytest.raises(el.ReactionError, match=r"return a list of el\.Command"):
        el.Reactor(store, NotCommands(), aggregate=Account(), name="bad").run()
    assert store.stream_ids() == ["account-a", "other-1"]   # no failure records for bugs


def test_names_and_arguments_are_checked():
    store = el.InMemoryEventStore()
    with pytest.raises(el.InvalidInputError, match="hold the checkpoints of reactors"):
        el.Projector(store, _ProjectionStub(), name="reactor:transfers")
    with pytest.raises(el.InvalidInputError, match=r"el\.Reaction instance"):
        el.Reactor(store, object(), aggregate=Account(), name="x")
    with pytest.raises(el.InvalidInputError, match="mapping of stream-id prefixes"):
        el.Reactor(store, Transfers(), aggregate={}, name="x")
    with pytest.raises(el.InvalidInputError, match="non-empty str"):
        el.Reactor(store, Transfers(), aggregate=Account(), name="")


class _ProjectionStub(el.Projection):
    def apply(self, state, event):
        return state


# -- live, and across processes --------------------------------------------------------------

def _wait_for(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_following_reactor_carries_transfers_out_as_they_are_requested(store):
    _accounts(store, a=100, b=0)
    reactor = el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers")
    sub = reactor.follow(poll_interval=0.05)
    try:
        for n in range(3):
            _request(store, f"transfer-{n}", "a", "b", 10)
        _wait_for(lambda: all(
            list(store.read_stream(f"transfer-{n}"))[-1].type == "TransferCompleted"
            for n in range(3)))
    finally:
        sub.close()
    assert sub.error is None
    assert (_balance(store, "a"), _balance(store, "b")) == (70, 30)
    assert store.load_checkpoint("reactor:transfers")[0] == reactor.position


@pytest.mark.postgres
def test_a_reactor_reacts_to_what_another_process_writes(pg_url, pg_schema):
    with el.connect(pg_url, schema=pg_schema) as store:
        _accounts(store, a=100, b=0)
        reactor = el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers")
        sub = reactor.follow(poll_interval=None)   # woken by the other process's NOTIFY
        try:
            subprocess.run([sys.executable, "-c", textwrap.dedent("""
                import sys
                import eventlab as el
                from eventlab.examples.transfers import RequestTransfer, Transfer
                store = el.connect(sys.argv[1], schema=sys.argv[2])
                transfers = el.Repository(store, Transfer())
                for n in range(20):
                    transfers.execute(f"transfer-{n}",
                                      RequestTransfer("account-a", "account-b", 1))
            """), pg_url, pg_schema], check=True)
            _wait_for(lambda: _balance(store, "b") == 20)
            _wait_for(lambda: len(store.sql(
                "select 1 from events where type = 'TransferCompleted'")) == 20)
        finally:
            sub.close()
        assert sub.error is None
        for n in range(20):
            _assert_linear_chain(_chain(store, next(store.read_stream(f"transfer-{n}"))),
                                 "transfers")


# -- chains as data --------------------------------------------------------------------------

def test_causation_gives_the_whole_chain_from_any_member(store):
    accounts = _accounts(store, a=100, b=0)
    accounts.execute("account-b", Close())
    request = _request(store, "transfer-1", "a", "b", 30)
    _request(store, "transfer-2", "a", "b", 5)        # another chain, left out
    el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers").run()
    expected = _chain(store, request)

    for member in expected:
        frame = el.causation(store, member.event_id)
        assert frame.columns.tolist() == COLUMNS
        assert frame["event_id"].tolist() == [str(e.event_id) for e in expected]
        assert frame["stream_id"].tolist() == [e.stream_id for e in expected]
        assert frame["depth"].tolist() == list(range(len(expected)))
        assert frame["causation_id"].tolist()[1:] == [str(e.event_id) for e in expected[:-1]]
        assert set(frame["correlation_id"]) == {str(request.event_id)}
    with pytest.raises(el.EventlabError, match="no event with id"):
        el.causation(store, "00000000-0000-0000-0000-000000000000")


def test_sql_follows_a_chain_back_from_its_last_event(store):
    _accounts(store, a=100, b=0)
    request = _request(store, "transfer-1", "a", "b", 30)
    el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers").run()
    last = list(store.read_stream("transfer-1"))[-1]
    back = store.sql("""
        with recursive chain(event_id, cause, steps) as (
            select event_id::varchar, metadata->>'causation_id', 0 from events
            where event_id = ?::uuid
            union all
            select e.event_id::varchar, e.metadata->>'causation_id', c.steps + 1
            from events e join chain c on e.event_id::varchar = c.cause)
        select event_id from chain order by steps""", [str(last.event_id)])
    expected = [str(e.event_id) for e in reversed(_chain(store, request))]
    assert back["event_id"].tolist() == expected


# -- given / when / then ---------------------------------------------------------------------

def test_given_when_then_checks_a_reactions_commands():
    request = recorded(TransferRequested("account-a", "account-b", 30.0), "transfer-1")
    withdrew = recorded(Withdrew(30.0), "account-a", caused_by=request, reactor="transfers")
    paid = recorded(Deposited(30.0), "account-b", caused_by=withdrew, reactor="transfers")

    el.given(Transfers()).when(request).then(
        [el.Command("account-a", Withdraw(30.0))])
    el.given(Transfers(), [request]).when(withdrew).then(
        [el.Command("account-b", Deposit(30.0))])
    el.given(Transfers(), [request, withdrew]).when(paid).then(
        [el.Command("transfer-1", Complete())])
    el.given(Transfers()).when(recorded(Deposited(5.0), "account-a")).then([])
    with pytest.raises(AssertionError, match="expected commands"):
        el.given(Transfers(), [request]).when(withdrew).then([])
    with pytest.raises(el.InvalidInputError, match="recorded events"):
        el.given(Transfers(), [TransferRequested("a", "b", 1.0)])


def test_given_shows_a_reaction_only_the_types_a_reactor_would():
    class Matching(el.Reaction):
        types = (Deposited,)

        def react(self, event):
            return [el.Command("account-b", Deposit(event.data.amount))]

    el.given(Matching()).when(recorded(Withdrew(1.0), "account-a")).then([])
    el.given(Matching()).when(recorded(Deposited(2.0), "account-a")).then(
        [el.Command("account-b", Deposit(2.0))])


def test_cause_and_origin_need_a_runner():
    event = recorded(Withdrew(1.0), "account-a",
                     caused_by=recorded(Deposited(1.0), "account-b"))
    with pytest.raises(el.EventlabError, match=r"while a Reactor or el\.given"):
        Transfers().cause(event)


def test_the_chain_picture_has_a_lane_per_stream_and_an_arrow_per_cause(store):
    from eventlab.notebook import plot_causation
    from eventlab.notebook.causation_chart import arrows

    accounts = _accounts(store, a=100, b=0)
    accounts.execute("account-b", Close())
    request = _request(store, "transfer-1", "a", "b", 30)
    el.Reactor(store, Transfers(), aggregate=AGGREGATES, name="transfers").run()
    chain = _chain(store, request)

    ax = plot_causation(store, chain[2].event_id).axes[0]
    lanes = [t.get_text() for t in ax.get_yticklabels()]
    assert lanes == ["transfer-1", "account-a", "reactor-transfers"]
    at = {str(e.event_id): (float(step), float(lanes.index(e.stream_id)))
          for step, e in enumerate(chain)}
    drawn = sorted((a.xyann, a.xy) for a in arrows(ax))
    assert drawn == sorted((at[e.metadata["causation_id"]], at[str(e.event_id)])
                           for e in chain[1:])
    boxes = [t.get_text() for t in ax.texts if t not in arrows(ax)]
    assert len(boxes) == len(chain)
    assert "Reaction Failed\naccount-b:\nAccountClosed" in boxes
