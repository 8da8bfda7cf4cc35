"""Time travel: state_at, history, Timeline, diff and what_if, against a hand fold."""

from __future__ import annotations

import gc
import random
import threading
import types
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

import eventlab as el
from eventlab import timelines, timetravel
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


# -- long streams: sparse checkpoints, events read on demand ------------------------------

def long_account(store, n, stream="acc-1", seed=5, start=T0, shuffle_times=False):
    """Append ``n`` random account events in a few appends; return them as stored."""
    rng = random.Random(seed)
    events = [Opened("ada")] + [Deposited(float(rng.randint(1, 9))) if rng.random() < 0.7
                                else Withdrew(float(rng.randint(1, 3))) for _ in range(n - 1)]
    times = [start + timedelta(seconds=i) for i in range(n)]
    if shuffle_times:
        rng.shuffle(times)
    new = [el.NewEvent(e, recorded_at=t) for e, t in zip(events, times, strict=True)]
    for first in range(0, n, 250):
        store.append(stream, new[first:first + 250])
    return list(store.read_stream(stream, 1, store.stream_version(stream)))


def test_every_version_equals_a_plain_fold_across_many_checkpoint_spans(store):
    stored = long_account(store, 700)
    states = hand_fold([e.data for e in stored])
    assert Account().fold(store.load_events("acc-1")) == states[-1]
    line = Timeline(store, Account(), "acc-1", every=4, max_checkpoints=12)
    assert len(line.checkpoints) <= 12 and line.checkpoints.step > 4    # the span grew
    assert line.checkpoints.step % 4 == 0 and line.version == 700
    for version in range(701):                               # stepping forward
        assert line.state_at(version) == states[version], version
    for version in range(700, -1, -1):                       # and back
        assert line.state_at(version) == states[version], version
    for version in random.Random(2).choices(range(701), k=300):   # jumping about
        assert line.state_at(version) == states[version], version
    assert [line.changes(v) for v in (0, 1, 350)] == [
        {}, el.diff(states[0], states[1]), el.diff(states[349], states[350])]


def test_a_timeline_grows_with_its_stream_and_keeps_its_checkpoints_bounded(store):
    stored = long_account(store, 100)
    line = Timeline(store, Account(), "acc-1", every=2, max_checkpoints=8)
    assert line.state_at(37) == hand_fold([e.data for e in stored])[37]
    for more in (1, 60, 400):
        store.append("acc-1", [Deposited(1.0)] * (more - 1) + [Withdrew(2.0)])
        stored = list(store.read_stream("acc-1"))
        states = hand_fold([e.data for e in stored])
        assert line.state_at() == states[-1]          # the call that sees the growth
        assert line.version == len(stored) and len(line.checkpoints) <= 8
        for version in random.Random(more).choices(range(len(stored) + 1), k=120):
            assert line.state_at(version) == states[version], version
        assert list(line.types) == [e.type for e in stored]


def test_a_delete_and_rewrite_starts_the_timeline_over(store):
    long_account(store, 300)
    line = timeline(store, Account(), "acc-1")
    old = line.state_at(150)
    store.delete_stream("acc-1")
    stored = long_account(store, 210, seed=9, start=T0 + timedelta(days=3))
    states = hand_fold([e.data for e in stored])
    assert line.state_at(150) == states[150] != old
    assert line.version == 210
    assert [line.state_at(v) for v in range(211)] == states
    assert line.time_of(1) == T0 + timedelta(days=3)
    assert list(line.types) == [e.type for e in stored]
    store.delete_stream("acc-1")
    assert line.state_at() == AccountState() and line.version == 0 and not line.types


def test_types_times_and_events_between_come_from_the_stream(store):
    stored = long_account(store, 300, shuffle_times=True)
    line = Timeline(store, Account(), "acc-1", every=16)
    assert len(line.types) == 300 and list(line.types) == [e.type for e in stored]
    assert line.types[0] == "Opened" and line.types[-1] == stored[-1].type
    assert line.types[10:13] == [e.type for e in stored[10:13]]
    assert [line.time_of(v) for v in range(1, 301)] == [e.recorded_at for e in stored]
    assert line.time_of(5).utcoffset() == timedelta(0)
    assert line.events_between(1, 300) == stored
    assert line.events_between(40, 90) == stored[39:90]
    assert line.events_between(7, 7) == [stored[6]]
    assert line.events_between(301, 300) == [] == line.events_between(1, 0)
    assert [line.event(v) for v in (1, 64, 65, 300, 2)] == [stored[v - 1]
                                                          for v in (1, 64, 65, 300, 2)]
    with pytest.raises(el.InvalidInputError, match="first is after last"):
        line.events_between(9, 7)
    with pytest.raises(el.InvalidInputError, match="no version 301"):
        line.events_between(1, 301)
    with pytest.raises(el.InvalidInputError, match="no version 0"):
        line.events_between(0, 3)
    with pytest.raises(el.InvalidInputError, match="no version 0"):
        line.time_of(0)
    with pytest.raises(el.InvalidInputError, match="initial state"):
        line.event(0)


def test_version_at_with_out_of_order_times_over_a_long_stream(store):
    stored = long_account(store, 400, shuffle_times=True)
    line = Timeline(store, Account(), "acc-1", every=8)
    rng = random.Random(4)
    for _ in range(150):
        moment = T0 + timedelta(seconds=rng.uniform(-5, 405))
        expected = max((e.version for e in stored if e.recorded_at <= moment), default=0)
        assert line.version_at(moment) == expected
    assert line.version_at(T0 - timedelta(days=1)) == 0
    assert line.version_at(T0 + timedelta(days=1)) == 400


@pytest.mark.parametrize("kind", ["memory", "duckdb"])
def test_a_timeline_holds_checkpoints_and_one_block_not_the_stream(kind, request, tmp_path):
    store = new_store(kind, request, tmp_path)
    long_account(store, 20_000)
    line = Timeline(store, Account(), "acc-1", every=8, max_checkpoints=64)
    rng = random.Random(3)
    for version in rng.choices(range(20_001), k=50) + list(range(9_000, 9_100)):
        line.state_at(version)
        line.changes(version)
        if version:
            line.event(version)
    assert not hasattr(line, "events")
    held = reachable(line, skip=(store, line.aggregate))
    events = [o for o in held if isinstance(o, (Opened, Deposited, Withdrew, el.RecordedEvent))]
    states = [o for o in held if isinstance(o, AccountState)]
    span = line.checkpoints.step
    assert span <= 512 and len(line.checkpoints) <= 64
    assert len(events) <= span + 2 * 64       # the block folded from, and event()'s block
    assert len(states) <= len(line.checkpoints) + 2       # the tip and the last one handed out
    assert line.history()["balance"].iloc[-1] == line.state_at().balance
    store.close()


def reachable(root, skip):
    """Every object ``root`` holds, through containers and attributes (not code or types)."""
    seen, todo, found = {id(o) for o in skip}, [root], []
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType,
                                               types.MethodType, types.BuiltinFunctionType)):
            continue
        seen.add(id(obj))
        found.append(obj)
        todo.extend(gc.get_referents(obj))
    return found


def test_threads_scrubbing_while_the_stream_grows_see_plain_fold_states(store):
    stored = long_account(store, 300)
    more = [Deposited(float(i % 7 + 1)) for i in range(300)]
    states = hand_fold([e.data for e in stored] + more)
    line = Timeline(store, Account(), "acc-1", every=4, max_checkpoints=16)
    wrong, errors = [], []

    def scrub(seed):
        rng = random.Random(seed)
        try:
            for _ in range(150):
                version = rng.randint(0, 300)
                if line.state_at(version) != states[version]:
                    wrong.append(version)
        except Exception as exc:   # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=scrub, args=(seed,)) for seed in range(3)]
    for t in threads:
        t.start()
    for first in range(0, 300, 30):
        store.append("acc-1", more[first:first + 30])
    for t in threads:
        t.join()
    assert not errors and not wrong
    assert line.state_at() == states[-1] and line.version == 600


class Recent(el.Aggregate):
    """Wants the whole recorded event: keeps the (version, type) of the last three."""

    wants_recorded = True

    def initial_state(self):
        return ()

    def apply(self, state, event):
        return (*state[-2:], (event.version, event.type))


def test_an_aggregate_that_wants_recorded_events_reads_them_on_demand(store):
    stored = long_account(store, 260)
    line = Timeline(store, Recent(), "acc-1", every=4, max_checkpoints=8)
    expected = [tuple((e.version, e.type) for e in stored[max(v - 3, 0):v])
                for v in range(261)]
    for version in [*range(261), *random.Random(1).choices(range(261), k=100)]:
        assert line.state_at(version) == expected[version], version
    assert el.history(store, Recent(), "acc-1")["state"].tolist() == expected[1:]


def test_a_failing_apply_names_the_event_and_keeps_failing(store):
    class Picky(el.Aggregate):
        def initial_state(self):
            return 0

        def apply(self, state, event):
            if isinstance(event, Withdrew) and event.amount == 3.0:
                raise ValueError("no threes")
            return state + 1

    stored = long_account(store, 200)
    bad = next(e for e in stored if e.data == Withdrew(3.0))
    for _ in range(2):
        with pytest.raises(el.ApplyError, match="no threes") as info:
            el.state_at(store, Picky(), "acc-1", version=1)
        assert (info.value.stream_id, info.value.version, info.value.position,
                info.value.type) == ("acc-1", bad.version, bad.position, "Withdrew")


def test_history_and_what_if_read_the_stream_block_by_block(store, monkeypatch):
    stored = long_account(store, 90)
    states = hand_fold([e.data for e in stored])
    whole = el.history(store, Account(), "acc-1")
    w = el.what_if(store, Account(), "acc-1", drop=[2], insert={90: [Deposited(1)]})
    monkeypatch.setattr(timelines, "HISTORY_BLOCK", 7)
    monkeypatch.setattr(timetravel, "HISTORY_BLOCK", 7)
    blocks = Timeline(store, Account(), "acc-1", every=4).history()
    assert blocks.equals(whole)
    assert blocks["balance"].tolist() == [s.balance for s in states[1:]]
    assert blocks["position"].tolist() == [e.position for e in stored]
    small = el.what_if(store, Account(), "acc-1", drop=[2], insert={90: [Deposited(1)]})
    assert small.alternative.equals(w.alternative) and small.actual.equals(whole)
    assert len(small.alternative) == 90 and small.alternative_state == w.alternative_state
    assert small.alternative["edit"].tolist() == ["kept"] * 89 + ["inserted"]


def test_timeline_settings_are_checked(store):
    with pytest.raises(el.InvalidInputError, match="every must be an int of at least 1"):
        Timeline(store, Account(), "acc-1", every=0)
    with pytest.raises(el.InvalidInputError, match="max_checkpoints must be"):
        Timeline(store, Account(), "acc-1", max_checkpoints=1)


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


def test_what_if_folds_from_its_first_edit_to_the_same_state_as_a_full_replay(store):
    rng = random.Random(7)
    events = [Opened("ada")] + [Deposited(float(rng.randint(1, 9))) for _ in range(299)]
    store.append("acc-1", events)
    for _ in range(6):
        drop = set(rng.sample(range(2, 301), 3))
        after = rng.randrange(0, 301)
        replaced = rng.choice([v for v in range(2, 301) if v not in drop])
        edits = dict(drop=sorted(drop), insert={after: [Deposited(100.0)]},
                     replace={replaced: Deposited(0.5)})
        w = el.what_if(store, Account(), "acc-1", **edits)
        # the frames are built on demand by replaying the whole edited stream from 0
        assert "_frames" not in vars(w)
        assert w.alternative["balance"].iloc[-1] == w.alternative_state.balance
        edited = [e for v, e in enumerate(events, start=1) if v not in drop]
        edited = [Deposited(0.5) if e is events[replaced - 1] else e for e in edited]
        position = after - sum(1 for v in drop if v <= after)
        edited.insert(position, Deposited(100.0))
        assert w.alternative_state == Account().fold(edited)
        assert w.events == edited
        assert (w.actual_length, w.alternative_length) == (300, len(edited))


def test_what_if_checks_its_edits(store):
    store.append("acc-1", [Opened("ada"), Deposited(10)])
    with pytest.raises(el.InvalidInputError, match=r"'acc-1'.*drop version 3"):
        el.what_if(store, Account(), "acc-1", drop=[3])
    with pytest.raises(el.InvalidInputError, match="both dropped and replaced"):
        el.what_if(store, Account(), "acc-1", drop=[2], replace={2: Deposited(1)})
    with pytest.raises(el.ApplyError) as info:
        el.what_if(store, Account(), "acc-1", insert={1: ["not an event"]})
    assert (info.value.stream_id, info.value.version, info.value.type) == ("acc-1", 2, "str")
