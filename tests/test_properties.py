"""Properties: any sequence of appends, retries, deletes and reads on any store agrees
with a plain Python model of the log; ``diff`` loses nothing; states survive the codec.

The model (``Log``) is a dict of lists: a stream's version is its length, a position
is a counter that never goes back. Hypothesis drives every store with the same steps
and shrinks a disagreement to the shortest sequence that shows it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import eventlab as el
from eventlab.statecodec import decode_state, encode_state
from eventlab.timetravel import MISSING

STREAMS = ("s-1", "s-2", "s-3")
TYPES = ("PropOpened", "PropNoted")        # names no registered class takes
#: a run stays short: many cheap examples on the memory store, fewer on the databases
MACHINE = settings(max_examples=100, stateful_step_count=20, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])


# -- the model -------------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """One event to append: its type, payload and (maybe) its id."""

    type: str
    n: int
    event_id: uuid.UUID | None

    def new_event(self) -> el.NewEvent:
        return el.NewEvent({"n": self.n}, type=self.type, event_id=self.event_id)


@dataclass
class Log:
    """What a store should hold: each stream a list of (position, spec), and the head."""

    streams: dict[str, list[tuple[int, Spec]]] = field(default_factory=dict)
    head: int = 0

    def version(self, stream_id: str) -> int:
        return len(self.streams.get(stream_id, []))

    def where(self) -> dict[uuid.UUID, tuple[str, int]]:
        return {spec.event_id: (sid, version)
                for sid, events in self.streams.items()
                for version, (_, spec) in enumerate(events, start=1) if spec.event_id}

    def events(self) -> list[tuple]:
        """Every event as (position, stream_id, version, type, data, event_id), in order."""
        rows = [(position, sid, version, spec.type, {"n": spec.n}, spec.event_id)
                for sid, events in self.streams.items()
                for version, (position, spec) in enumerate(events, start=1)]
        return sorted(rows, key=lambda row: row[0])

    def stream_ids(self) -> list[str]:
        return [sid for sid, events in sorted(self.streams.items(), key=lambda kv: kv[1][0][0])
                if events]

    def append(self, stream_id: str, expected: Any, batch: list[Spec]) -> int:
        """Apply one append as the contract says; raise what a store must raise."""
        ids = [s.event_id for s in batch if s.event_id]
        if len(set(ids)) < len(ids):
            raise el.InvalidInputError("one event id twice in a batch")
        actual = self.version(stream_id)
        where = self.where()
        if any(s.event_id in where for s in batch if s.event_id):
            versions = []
            for spec in batch:
                stored = where.get(spec.event_id) if spec.event_id else None
                if stored is not None and stored[0] != stream_id:
                    raise el.InvalidInputError("an id stored in another stream")
                versions.append(None if stored is None else stored[1])
            first = versions[0]
            if (first is not None and versions == list(range(first, first + len(batch)))
                    and met(expected, first - 1)):
                return versions[-1]            # a retry: nothing written
            raise el.ConcurrencyError(stream_id, expected, actual)
        if not met(expected, actual):
            raise el.ConcurrencyError(stream_id, expected, actual)
        for spec in batch:
            self.head += 1
            self.streams.setdefault(stream_id, []).append((self.head, spec))
        return actual + len(batch)

    def delete(self, stream_id: str) -> int:
        return len(self.streams.pop(stream_id, []))


def met(expected: Any, actual: int) -> bool:
    if expected is el.ANY:
        return True
    if expected is el.NO_STREAM:
        return actual == 0
    if expected is el.STREAM_EXISTS:
        return actual > 0
    return expected == actual


def recorded(events, want: list[tuple]) -> list[tuple]:
    """Read events as the model's rows; ids the store chose (the model's ``None``) left out."""
    rows = [(e.position, e.stream_id, e.version, e.type, e.data, e.event_id) for e in events]
    if len(rows) == len(want):
        rows = [r if w[5] else (*r[:5], None) for r, w in zip(rows, want, strict=True)]
    return rows


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a call did: ("ok", its value) or the error it raised, comparably."""
    try:
        return "ok", call()
    except el.ConcurrencyError as exc:
        return "ConcurrencyError", (exc.stream_id, exc.expected, exc.actual)
    except el.InvalidInputError:
        return "InvalidInputError", None


def resolve(log: Log, stream_id: str, how: Any) -> Any:
    """An expectation drawn as ``how`` for the stream as ``log`` holds it: ``"right"`` is
    its version, an int is off by that much (a wrong version), the rest are as given."""
    if how == "right":
        return log.version(stream_id)
    if isinstance(how, int):
        wrong = log.version(stream_id) + how
        return wrong if wrong >= 0 else log.version(stream_id) + 1
    return how


# -- the machine -----------------------------------------------------------------------

specs = st.builds(Spec, st.sampled_from(TYPES), st.integers(-5, 5),   # mostly with an id
                  st.one_of(st.none(), st.uuids(version=4), st.uuids(version=4)))
# how an append states its expectation, resolved against the stream when it runs
# (right ones twice as often as wrong ones, so that enough appends write)
_stated = st.sampled_from([el.ANY, el.ANY, "right", "right", el.NO_STREAM, el.STREAM_EXISTS])
expectations = st.one_of(_stated, _stated, st.integers(-2, 2).filter(bool))


class LogMachine(RuleBasedStateMachine):
    """Appends (right and wrong expected versions), retries, deletes and reads."""

    make_store: Callable[[Path], el.EventStore]

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp())
        self.store = self.make_store(self.folder)
        self.log = Log()
        self.written: list[tuple[str, Any, list[Spec]]] = []   # appends that wrote: retried

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def check(self, real: Callable[[], Any], model: Callable[[], Any]) -> bool:
        """The store does what the model does (the same value or error); True if it wrote."""
        before = copy.deepcopy(self.log)
        expected = outcome(model)
        if expected[0] != "ok":
            self.log = before                        # a failed append writes nothing
        assert outcome(real) == expected
        return self.log.head > before.head

    @rule(stream_id=st.sampled_from(STREAMS), how=expectations,
          batch=st.lists(specs, max_size=3))
    def append(self, stream_id, how, batch):
        expected = resolve(self.log, stream_id, how)
        if self.check(lambda: self.store.append(stream_id, [s.new_event() for s in batch],
                                                expected_version=expected),
                      lambda: self.log.append(stream_id, expected, batch)):
            self.written.append((stream_id, expected, batch))

    def retries(self) -> list[tuple[str, Any, list[Spec]]]:
        return [sent for sent in self.written if sent[2]]

    @precondition(lambda self: self.retries())
    @rule(data=st.data())
    def retry(self, data):
        """An append that wrote, sent again: the same events with the same ids, mostly as
        before; or a part of them, or with a new event, or into another stream, or
        expecting something else."""
        stream_id, expected, batch = data.draw(st.sampled_from(self.retries()))
        stream_id = data.draw(st.sampled_from([stream_id, stream_id, *STREAMS]))
        cut = data.draw(st.sampled_from([None, None, "head", "tail", "more"]))
        if cut == "head":
            batch = batch[:-1] or batch
        elif cut == "tail":
            batch = batch[1:] or batch
        elif cut == "more":
            batch = [*batch, data.draw(specs)]
        how = data.draw(st.sampled_from([expected, el.ANY, "other"]))
        expected = resolve(self.log, stream_id, data.draw(expectations)) if how == "other" \
            else how
        self.check(lambda: self.store.append(stream_id, [s.new_event() for s in batch],
                                             expected_version=expected),
                   lambda: self.log.append(stream_id, expected, batch))

    @rule(groups=st.lists(st.tuples(st.sampled_from(STREAMS), expectations,
                                    st.lists(specs, min_size=1, max_size=2)),
                          min_size=1, max_size=3))
    def append_many(self, groups):
        """Several streams in one transaction: all or nothing, each expectation checked
        against the stream as the earlier appends of the call left it."""
        probe, calls = copy.deepcopy(self.log), []
        for stream_id, how, batch in groups:
            # a fresh id for every event: the call then takes the path that reads first
            batch = [dataclasses.replace(s, event_id=uuid.uuid4()) for s in batch]
            expected = resolve(probe, stream_id, how)
            calls.append((stream_id, expected, batch))
            with contextlib.suppress(el.EventlabError):
                probe.append(stream_id, expected, batch)
        if self.check(lambda: self.store.append_many(
                          [(sid, [s.new_event() for s in batch], expected)
                           for sid, expected, batch in calls]),
                      lambda: [self.log.append(*call) for call in calls]):
            self.written += calls

    @rule(stream_id=st.sampled_from(STREAMS), spec=specs, n=st.integers(2, 3))
    def same_id_twice_in_a_batch(self, stream_id, spec, n):
        batch = [dataclasses.replace(spec, event_id=uuid.uuid4())] * n
        self.check(lambda: self.store.append(stream_id, [s.new_event() for s in batch]),
                   lambda: self.log.append(stream_id, el.ANY, batch))

    @rule(stream_id=st.sampled_from(STREAMS))
    def delete(self, stream_id):
        assert self.store.delete_stream(stream_id) == self.log.delete(stream_id)

    @rule(data=st.data())
    def read_a_range_of_the_log(self, data):
        start = data.draw(st.integers(0, self.log.head + 2), label="from_position")
        limit = data.draw(st.one_of(st.none(), st.integers(0, 4)), label="limit")
        types = data.draw(st.one_of(st.none(), st.lists(st.sampled_from(TYPES), min_size=1,
                                                        max_size=2)), label="types")
        want = [e for e in self.log.events()
                if e[0] >= start and (types is None or e[3] in types)][:limit]
        assert recorded(self.store.read_all(start, limit=limit, types=types), want) == want

    @rule(stream_id=st.sampled_from(STREAMS), data=st.data())
    def read_a_range_of_a_stream(self, stream_id, data):
        version = self.log.version(stream_id)
        start = data.draw(st.integers(0, version + 2), label="from_version")
        end = data.draw(st.one_of(st.none(), st.integers(0, version + 2)), label="to_version")
        want = [e for e in self.log.events() if e[1] == stream_id
                and e[2] >= start and (end is None or e[2] <= end)]
        assert recorded(self.store.read_stream(stream_id, start, end), want) == want

    @invariant()
    def the_log_is_the_model(self):
        assert self.store.head() == self.log.head
        assert recorded(self.store.read_all(), self.log.events()) == self.log.events()
        assert {s: self.store.stream_version(s) for s in STREAMS} == {
            s: self.log.version(s) for s in STREAMS}
        assert self.store.stream_ids() == self.log.stream_ids()


def machine(make_store: Callable[[Path], el.EventStore]) -> type[LogMachine]:
    return type("Machine", (LogMachine,), {"make_store": staticmethod(make_store)})


def test_the_memory_store_behaves_like_the_model():
    run_state_machine_as_test(machine(lambda folder: el.InMemoryEventStore()),
                              settings=MACHINE)


def test_a_duckdb_file_behaves_like_the_model():
    run_state_machine_as_test(machine(lambda folder: el.connect(folder / "log.duckdb")),
                              settings=settings(MACHINE, max_examples=20))


@pytest.mark.postgres
def test_postgres_behaves_like_the_model(postgres_server):
    def make_store(folder: Path) -> el.EventStore:
        return el.connect(postgres_server.url, schema=f"p_{uuid.uuid4().hex[:12]}")

    run_state_machine_as_test(machine(make_store), settings=settings(MACHINE, max_examples=25))


@pytest.mark.postgres
def test_postgres_head_does_not_go_back_after_a_delete(pg_url, pg_schema):
    with el.connect(pg_url, schema=pg_schema) as store:
        store.append("a", [el.NewEvent({}, type=TYPES[0])])
        store.append("b", [el.NewEvent({}, type=TYPES[0])])
        store.delete_stream("b")
        assert store.head() == 2
        store.append("c", [el.NewEvent({}, type=TYPES[0])])
        assert [e.position for e in store.read_all()] == [1, 3]


# -- diff: what changed, and nothing else ----------------------------------------------

keys = st.from_regex(r"[a-z][a-z0-9_]{0,3}", fullmatch=True)
values = st.recursive(st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=3)),
                      lambda inner: st.one_of(st.lists(inner, max_size=3),
                                              st.dictionaries(keys, inner, max_size=3)),
                      max_leaves=12)
states = st.dictionaries(keys, values, max_size=4)


def patch(state: Any, changes: dict[str, Any]) -> Any:
    """``state`` with every change applied at its path (removals last, deepest index first)."""
    root = {"": copy.deepcopy(state)}
    steps = sorted(changes.items(), key=lambda item: item[1].new is MISSING)
    removals = [(path, c) for path, c in steps if c.new is MISSING]
    for path, change in [(p, c) for p, c in steps if c.new is not MISSING] + removals[::-1]:
        *parents, last = [""] + [int(i) if i else k for k, i in
                                 re.findall(r"\.?([a-z]\w*)|\[(\d+)\]", path)]
        holder = root
        for key in parents:
            holder = holder[key]
        if change.new is MISSING:
            del holder[last]
        elif isinstance(holder, list) and last == len(holder):
            holder.append(change.new)
        else:
            holder[last] = change.new
    return root[""]


@given(states, states)
@settings(max_examples=200, deadline=None)
def test_diff_applied_to_the_old_state_gives_the_new_one(before, after):
    changes = el.diff(before, after)
    assert patch(before, dict(changes)) == after
    assert (len(changes) == 0) == (before == after)
    assert changes.fields == {re.match(r"[a-z]\w*", path).group() for path in changes}
    assert not el.diff(after, copy.deepcopy(after))


# -- the state codec: what goes out comes back ------------------------------------------

@dataclass(frozen=True)
class Wallet:
    owner: str
    balance: float
    tags: tuple[str, ...]
    limits: dict[int, int]
    opened: datetime | None
    id: uuid.UUID


wallets = st.builds(
    Wallet, st.text(max_size=8), st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.text(max_size=3), max_size=3).map(tuple),
    st.dictionaries(st.integers(-10**6, 10**6), st.integers(-2**53, 2**53), max_size=3),
    st.none() | st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
                             timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))])),
    st.uuids())


@given(wallets)
@settings(max_examples=200, deadline=None)
def test_a_state_comes_back_from_the_codec_as_it_went_out(wallet):
    assert decode_state(encode_state(wallet, "a wallet"), Wallet) == wallet
