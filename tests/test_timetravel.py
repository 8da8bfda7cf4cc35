"""Time travel: state_at, history, Timeline, diff and what_if, against a hand fold."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

import eventlab as el
from eventlab.examples.bank import Account, AccountState, Closed, Deposited, Opened, Withdrew
from eventlab.timetravel import MISSING, Change, Timeline, timeline

from conftest import new_store

T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["duckdb", "memory", "postgres"])
def store(request, tmp_path):
    s = new_store(request.param, request, tmp_path)
    yield s
    s.close()


def random_account(store, stream="acc-1", n=80, seed=3):
    rng = random.Random(seed)
    events = [Opened("ada")]
    for _ in range(n - 1):
        events.append(Deposited(float(rng.randint(1, 9))) if rng.random() < 0.7
                      else Withdrew(float(rng.randint(1, 3))))
    store.append(stream, [el.NewEvent(e, recorded_at=T0 + timedelta(minutes=i))
                          for i, e in enumerate(events)])
    return events


def hand_fold(events):
    """The states after each event, folded by hand (index 0: the initial state)."""
    states = [AccountState()]
    for e in events:
        s = states[-1]
        match e:
            case Opened(owner):
                s = replace(s, owner=owner, is_open=True)
            case Deposited(amount):
                s = replace(s, balance=s.balance + amount, transactions=s.transactions + 1)
            case Withdrew(amount):
                s = replace(s, balance=s.balance - amount, transactions=s.transactions + 1)
            case Closed():
                s = replace(s, is_open=False)
        states.append(s)
    return states


def test_state_at_and_history_agree_with_a_hand_fold_at_every_version(store):
    events = random_account(store, n=150)
    states = hand_fold(events)
    for version in range(len(events) + 1):
        assert el.state_at(store, Account(), "acc-1", version=version) == states[version]
    order = list(range(len(events) + 1))
    random.Random(1).shuffle(order)        # scrubbing back and forth
    for version in order:
        assert el.state_at(store, Account(), "acc-1", version=version) == states[version]
    assert el.state_at(store, Account(), "acc-1") == states[-1]
    frame = el.history(store, Account(), "acc-1")
    assert list(frame.columns) == ["version", "position", "type", "recorded_at", "owner",
                                   "balance", "is_open", "transactions"]
    assert frame["version"].tolist() == list(range(1, len(events) + 1))
    assert frame["type"].tolist() == [type(e).__name__ for e in events]
    assert frame["balance"].tolist() == [s.balance for s in states[1:]]
    assert frame["transactions"].tolist() == [s.transactions for s in states[1:]]
    assert frame["recorded_at"].iloc[5] == T0 + timedelta(minutes=5)


def test_timeline_with_small_steps_matches_every_version(store):
    events = random_account(store, n=53)
    states = hand_fold(events)
    line = Timeline(store, Account(), "acc-1", every=4)
    assert line.versions == range(0, 54) and line.version == 53
    for version in [53, 0, 17, 16, 15, 30, 31, 32, 1, 52]:
        assert line.state_at(version) == states[version]
    assert line.event(1).data == Opened("ada")
    assert line.changes(2) == el.diff(states[1], states[2])
    assert line.changes(0) == {}


def test_state_at_a_moment_uses_recorded_at(store):
    events = random_account(store, n=20)
    states = hand_fold(events)
    assert el.state_at(store, Account(), "acc-1", at=T0 - timedelta(seconds=1)) == states[0]
    assert el.state_at(store, Account(), "acc-1", at=T0) == states[1]
    assert el.state_at(store, Account(), "acc-1",
                       at=T0 + timedelta(minutes=7, seconds=30)) == states[8]
    naive = datetime(2024, 1, 1, 9, 10)        # taken as UTC
    assert el.state_at(store, Account(), "acc-1", at=naive) == states[11]
    assert el.state_at(store, Account(), "acc-1", at=T0 + timedelta(days=1)) == states[-1]
    with pytest.raises(el.InvalidInputError, match="not both"):
        el.state_at(store, Account(), "acc-1", version=1, at=T0)


def test_state_at_a_moment_with_out_of_order_times(store):
    times = [T0, T0 + timedelta(hours=2), T0 + timedelta(hours=1), T0 + timedelta(hours=3)]
    events = [Opened("ada"), Deposited(1), Deposited(2), Deposited(4)]
    store.append("acc-1", [el.NewEvent(e, recorded_at=t) for e, t in zip(events, times,
                                                                        strict=True)])
    states = hand_fold(events)
    # the last event (in stream order) recorded at or before 01:30 is version 3
    assert el.state_at(store, Account(), "acc-1",
                       at=T0 + timedelta(hours=1, minutes=30)) == states[3]
    assert el.state_at(store, Account(), "acc-1",
                       at=T0 + timedelta(minutes=30)) == states[1]


def test_timeline_follows_appends_and_rewrites(store):
    random_account(store, n=10)
    line = timeline(store, Account(), "acc-1")
    assert timeline(store, Account(), "acc-1") is line        # cached
    assert el.state_at(store, Account(), "acc-1").transactions == 9
    store.append("acc-1", [Deposited(100)])
    assert el.state_at(store, Account(), "acc-1", version=11).balance == (
        hand_fold(list(e.data for e in store.read_stream("acc-1")))[11].balance)
    assert line.version == 11
    store.delete_stream("acc-1")
    store.append("acc-1", [Opened("bob")] + [Deposited(1)] * 11)   # longer, but new
    state = el.state_at(store, Account(), "acc-1")
    assert (state.owner, state.balance) == ("bob", 11.0)
    store.delete_stream("acc-1")
    store.append("acc-1", [Opened("cy")])                       # shorter
    assert el.state_at(store, Account(), "acc-1").owner == "cy"
    store.delete_stream("acc-1")
    store.append("acc-1", [Opened("di")])                       # just as long
    assert el.state_at(store, Account(), "acc-1").owner == "di"
    assert el.history(store, Account(), "acc-1")["owner"].tolist() == ["di"]


def test_bad_versions_are_named(store):
    random_account(store, n=5)
    with pytest.raises(el.InvalidInputError, match=r"'acc-1' has versions 0 to 5.*version 6"):
        el.state_at(store, Account(), "acc-1", version=6)
    with pytest.raises(el.InvalidInputError, match="version"):
        el.state_at(store, Account(), "acc-1", version=-1)
    with pytest.raises(el.InvalidInputError, match="stream id"):
        el.state_at(store, Account(), "", version=1)
    assert el.state_at(store, Account(), "nobody") == AccountState()
    assert len(el.history(store, Account(), "nobody")) == 0


def test_history_columns_for_dict_and_scalar_states(store):
    class Counter(el.Aggregate):
        def initial_state(self):
            return 0

        def apply(self, state, event):
            return state + 1

    class Tally(el.Aggregate):
        def initial_state(self):
            return {}

        def apply(self, state, event):
            name = type(event).__name__
            return {**state, name: state.get(name, 0) + 1, "type": name}

    store.append("x", [Opened("ada"), Deposited(1), Deposited(2)])
    assert el.history(store, Counter(), "x")["state"].tolist() == [1, 2, 3]
    tally = el.history(store, Tally(), "x")
    assert tally["Deposited"].tolist()[1:] == [1, 2]
    assert tally["type"].tolist() == ["Opened", "Deposited", "Deposited"]  # the envelope's
    assert tally["state_type"].tolist() == ["Opened", "Deposited", "Deposited"]


# -- diff ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Owner:
    name: str
    emails: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    owner: Owner
    limits: dict
    balance: float = 0.0


def test_diff_walks_fields_nested_dicts_and_lists():
    a = Profile(Owner("ada", ("a@x",)), {"daily": 10, "tags": ["a", "b"]}, 1.0)
    b = Profile(Owner("ada", ("a@x", "b@x")), {"daily": 20, "tags": ["a"], "new": 1}, 1.0)
    d = el.diff(a, b)
    assert dict(d) == {
        "owner.emails[1]": Change(MISSING, "b@x"),
        "limits.daily": Change(10, 20),
        "limits.tags[1]": Change("b", MISSING),
        "limits.new": Change(MISSING, 1),
    }
    assert d.fields == {"owner", "limits"}
    assert "limits.daily: 10 -> 20" in repr(d)
    assert "<table>" in d._repr_html_()
    assert el.diff(a, a) == {} and not el.diff(a, a)


def test_diff_of_plain_values_and_odd_keys():
    assert dict(el.diff(1, 2)) == {"": Change(1, 2)}
    assert dict(el.diff({1: "a"}, {1: "b"})) == {"[1]": Change("a", "b")}
    assert dict(el.diff({"a b": 1}, {"a b": 2})) == {"['a b']": Change(1, 2)}
    assert dict(el.diff({"x": 1}, {"x": "1"})) == {"x": Change(1, "1")}
    assert dict(el.diff(AccountState(), None)) == {"": Change(AccountState(), None)}


# -- what_if --------------------------------------------------------------------------------

def test_what_if_replays_an_edited_copy_and_leaves_the_store_alone(store):
    store.append("acc-1", [Opened("ada"), Deposited(10), Withdrew(4), Deposited(5)])
    head = store.head()
    w = el.what_if(store, Account(), "acc-1", drop=[3], insert={0: [], 4: [Deposited(1)]},
                   replace={2: Deposited(20)})
    assert w.actual_state.balance == 11.0
    assert w.alternative_state.balance == 26.0
    assert w.diff["balance"] == Change(11.0, 26.0)
    assert w.alternative["original_version"].iloc[:3].tolist() == [1, 2, 4]
    assert w.alternative["original_version"].isna().tolist() == [False, False, False, True]
    assert w.alternative["edit"].tolist() == ["kept", "replaced", "kept", "inserted"]
    assert w.alternative["type"].tolist() == ["Opened", "Deposited", "Deposited", "Deposited"]
    assert w.alternative["balance"].tolist() == [0.0, 20.0, 25.0, 26.0]
    assert w.actual["balance"].tolist() == [0.0, 10.0, 6.0, 11.0]
    assert store.head() == head and store.stream_version("acc-1") == 4
    assert [e.data for e in store.read_stream("acc-1")][2] == Withdrew(4.0)
    assert "acc-1" in repr(w)


def test_what_if_checks_its_edits(store):
    store.append("acc-1", [Opened("ada"), Deposited(10)])
    with pytest.raises(el.InvalidInputError, match=r"'acc-1'.*drop version 3"):
        el.what_if(store, Account(), "acc-1", drop=[3])
    with pytest.raises(el.InvalidInputError, match="both dropped and replaced"):
        el.what_if(store, Account(), "acc-1", drop=[2], replace={2: Deposited(1)})
    with pytest.raises(el.ApplyError) as info:
        el.what_if(store, Account(), "acc-1", insert={1: ["not an event"]})
    assert (info.value.stream_id, info.value.version, info.value.type) == ("acc-1", 2, "str")
