"""The reactor: runs a ``Reaction`` over a store and carries its commands out, once each.

``run()`` reacts to every event up to the head, and then to the events that
wrote, until nothing new is caused; ``follow()`` keeps reacting live. Each
command is executed through a ``Repository`` of the target stream's aggregate.
The events it writes carry the chain's metadata (``eventlab.reactions``) and
ids derived from the reactor's name and the cause, so a second run, a second
reactor object of the same name or a restart after a crash finds the work done
and writes nothing twice. A command the aggregate refuses (a ``DomainError``)
becomes a ``ReactionFailed`` event in the reactor's stream ``reactor-<name>``:
the reactor goes on, ``failures()`` lists it and ``retry()`` tries it again.

>>> import eventlab as el
>>> from eventlab.examples.bank import Account, Deposit, Open
>>> class Welcome(el.Reaction):
...     def react(self, event):
...         return [el.Command(event.stream_id, Deposit(5))] if event.type == "Opened" else []
>>> store = el.InMemoryEventStore()
>>> _ = el.Repository(store, Account()).execute("acc-1", Open("ada"))
>>> reactor = el.Reactor(store, Welcome(), aggregate=Account(), name="welcome")
>>> reactor.run()
1
>>> [(e.type, e.metadata.get("reactor")) for e in store.read_stream("acc-1")]
[('Opened', None), ('Deposited', 'welcome')]
>>> el.Reactor(store, Welcome(), aggregate=Account(), name="welcome").run()   # done already
0
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .aggregate import Aggregate, AggregateRoot
from .envelope import NewEvent, RecordedEvent
from .errors import ConcurrencyError, DomainError, EventlabError, InvalidInputError, ReactionError
from .projection import REACTOR_CHECKPOINTS, check_checkpoint_name, type_names
from .reactions import (
    Command,
    Reaction,
    ReactionFailed,
    ReactionRetried,
    caused_by,
    commands_of,
    depth_of,
    effect_id,
    failure_id,
    looking_up,
    retried_id,
)
from .repository import Repository, save_all
from .store.rows import check_position

if TYPE_CHECKING:
    import pandas as pd

    from .store.base import EventStore
    from .store.subscription import Subscription

_RECENT = 10_000   # events kept for cause()/origin() lookups without a query
_CHUNK = 100       # events whose effects are written in one transaction
DONE, REFUSED, SKIPPED = "done", "refused", "skipped"   # what became of one command


class Reactor:
    """Runs ``reaction`` over ``store``, executing its commands on ``aggregate``.

    ``aggregate`` is one ``Aggregate``, or a mapping from stream-id prefixes to
    aggregates (``{"account-": Account(), "transfer-": Transfer()}``; the
    longest matching prefix wins). ``name`` keeps the checkpoint (saved every
    ``checkpoint_every`` events and at the end of each run) and derives the ids
    of what it writes. A command that loses a race to another writer is tried
    again ``retries`` times. A chain ``max_depth`` reactions deep causes no
    more commands: they are recorded as failures instead, so a reaction that
    feeds itself stops.

    Counters: ``commands`` carried out, ``refused`` (recorded as failures) and
    ``skipped`` (found already done, by an earlier run or another object).
    """

    def __init__(self, store: EventStore, reaction: Reaction,
                 aggregate: Aggregate | Mapping[str, Aggregate], name: str, *,
                 checkpoint_every: int = 100, retries: int = 10, max_depth: int = 50,
                 snapshot_every: int | None = None) -> None:
        if not isinstance(reaction, Reaction):
            raise InvalidInputError(f"reaction must be an el.Reaction instance, got {reaction!r}")
        check_checkpoint_name(name, "a reactor")
        check_position("checkpoint_every", checkpoint_every, 1)
        check_position("retries", retries)
        check_position("max_depth", max_depth, 1)
        self.store, self.reaction, self.name = store, reaction, name
        self.stream_id = f"reactor-{name}"
        self.checkpoint_every, self.retries, self.max_depth = checkpoint_every, retries, max_depth
        self.subscription: Subscription | None = None
        self.commands = self.refused = self.skipped = 0
        self._repositories = _repositories(store, aggregate, snapshot_every)
        self._journal = Repository(store, _Journal())
        self._types = type_names(store, reaction.types)
        self._checkpoint_name = REACTOR_CHECKPOINTS + name
        self._lock = threading.RLock()
        self._recent: OrderedDict[str, RecordedEvent] = OrderedDict()
        self._dirty = 0
        self._last_save = time.monotonic()
        self.position = self._stored_position()

    # -- running -----------------------------------------------------------------------

    def run(self) -> int:
        """React to every event up to the head, then to what that wrote, until nothing
        new is caused; return how many commands were carried out or refused (not those
        found done already)."""
        with self._lock:
            issued = 0
            while True:
                head = self.store.head()
                self._resume()
                if head <= self.position:
                    break
                events = self.store.read_all(self.position + 1, types=self._type_list)
                try:
                    caused = self._react_all(itertools.takewhile(
                        lambda event, head=head: event.position <= head, events))
                except ReactionError:
                    self.checkpoint()   # the events before the failing one are done
                    raise
                self._advance(head)   # the events `types` left out are dealt with too
                issued += caused
                if not caused:
                    break
            self.checkpoint()
            return issued

    def follow(self, poll_interval: float | None = 0.5) -> Subscription:
        """React to each new event as it is appended, in a background thread.

        Returns the ``Subscription`` (``wait_until``, ``close``, ``.error``: a
        ``ReactionError`` stops it, and the checkpoint stays before that event).
        """
        from .store.subscription import Subscription

        with self._lock:
            if self.subscription is not None and self.subscription.running:
                return self.subscription
            self._resume()
            self.subscription = Subscription(
                self.store, self._live, from_position=self.position + 1,
                types=self._type_list, poll_interval=poll_interval,
                name=f"eventlab-reactor-{self.name}", on_idle=self._idle,
                on_close=self._closed)
            return self.subscription

    def _live(self, event: RecordedEvent) -> None:
        with self._lock:
            if event.position > self.position:   # else a run() got there first
                self._react_all([event])

    def _idle(self) -> None:
        if self._dirty and (self._dirty >= self.checkpoint_every
                            or time.monotonic() - self._last_save >= 1.0):
            with self._lock:
                self.checkpoint()

    def _closed(self) -> None:
        if self._dirty:
            with self._lock:
                self.checkpoint()

    @property
    def _type_list(self) -> list[str] | None:
        return None if self._types is None else sorted(self._types)

    def _advance(self, position: int) -> None:
        """Everything up to ``position`` is dealt with and its effects are stored."""
        if position <= self.position:
            return
        self._dirty += position - self.position
        self.position = position
        if self._dirty >= self.checkpoint_every:
            self.checkpoint()

    # -- deciding, then writing ------------------------------------------------------------

    def _react_all(self, events: Iterable[RecordedEvent]) -> int:
        """React to ``events`` in order; return how many commands were new work.

        A chunk of up to ``_CHUNK`` events is asked for its commands, the ids of
        their effects are looked up at once (work done before a crash, or by an
        earlier reactor object of this name, is skipped), and what the rest
        decide is written in one transaction. When another writer moved one of
        those streams meanwhile, the chunk is carried out one command at a time.
        """
        events, new = iter(events), 0
        while chunk := list(itertools.islice(events, _CHUNK)):
            asked, failure = self._ask(chunk)
            stored = self._stored_ids(asked)
            unit = _Unit()
            try:
                for event, commands in asked:
                    metadata = caused_by(event, self.name)
                    for issued in commands:
                        new += self._decide_command(unit, event, issued, metadata,
                                                    stored) != SKIPPED
                    unit.asked.append((event, commands))
            except ReactionError as error:   # a bug: keep what was decided before it
                failure = error
            self._commit(unit)
            if failure is not None:
                raise failure
        return new

    def _ask(self, events: list[RecordedEvent],
             ) -> tuple[list[tuple[RecordedEvent, list[_Issued]]], ReactionError | None]:
        """Each event with the commands the reaction issues for it; when ``react`` fails
        on one, the events before it and the error."""
        asked: list[tuple[RecordedEvent, list[_Issued]]] = []
        for event in events:
            self._remember(event)
            if depth_of(event) > self.max_depth:
                commands = []   # the record of a chain stopped for its depth
            else:
                try:
                    with looking_up(self._lookup):
                        commands = commands_of(self.reaction, event)
                except Exception as exc:
                    error = self._error(f"{self.reaction.name}.react", exc, event)
                    error.__cause__ = exc
                    return asked, error
            asked.append((event, [_Issued(self.name, event, index, command)
                                  for index, command in enumerate(commands)]))
        return asked, None

    def _stored_ids(self, asked: list[tuple[RecordedEvent, list[_Issued]]]) -> set[str]:
        ids = [i for _, commands in asked for c in commands for i in (c.first_id, c.failed_id)]
        return set(self.store.locate(ids)) if ids else set()

    def _decide_command(self, unit: _Unit, cause: RecordedEvent, issued: _Issued,
                        metadata: dict[str, Any], stored: set[str]) -> str:
        """Decide one command into ``unit``: ``DONE``, ``REFUSED`` (a ``ReactionFailed``
        is recorded instead) or ``SKIPPED`` (``stored`` holds its effect or failure)."""
        if issued.first in stored or issued.failed in stored:
            unit.skipped += 1
            return SKIPPED
        command, depth = issued.command, depth_of(cause)
        if depth >= self.max_depth:
            self._refuse(unit, issued, metadata, "ChainTooLong",
                         f"the chain is already {depth} reactions deep (max_depth="
                         f"{self.max_depth}); a reaction that feeds itself stops here")
            return REFUSED
        repository = self._repository(command.stream_id, cause)
        root = unit.root(repository, command.stream_id)
        try:
            events = root.handle(command.command)
        except DomainError as refused:
            if self._stored(issued.first):   # another reactor of this name did it meanwhile
                unit.skipped += 1
                return SKIPPED
            self._refuse(unit, issued, metadata, type(refused).__name__, str(refused))
            return REFUSED
        except Exception as exc:
            where = (f"{repository.aggregate.name}.handle of command #{issued.index + 1} "
                     f"({command.command!r} for stream {command.stream_id!r})")
            raise self._error(where, exc, cause) from exc
        if events:
            root.pending[-len(events):] = [
                NewEvent(e, metadata=metadata, event_id=issued.event_id(n))
                for n, e in enumerate(events)]
        unit.done += 1
        return DONE

    def _refuse(self, unit: _Unit, issued: _Issued, metadata: dict[str, Any], error: str,
                message: str) -> None:
        record = ReactionFailed(self.name, issued.cause_id, issued.cause_type, issued.index,
                                issued.command.stream_id, repr(issued.command.command), error,
                                message, issued.attempt)
        self._record(unit, record, issued.failed_id, metadata)
        unit.refused += 1

    def _record(self, unit: _Unit, record: Any, event_id: uuid.UUID,
                metadata: dict[str, Any]) -> None:
        """Add an event of the reactor's own (a failure, a retry) to ``unit``."""
        journal = unit.root(self._journal, self.stream_id)
        journal.handle(record)
        journal.pending[-1] = NewEvent(record, metadata=metadata, event_id=event_id)

    def _commit(self, unit: _Unit) -> None:
        """Write what ``unit`` decided, all at once; then its events are dealt with."""
        try:
            save_all(unit.saves())
        except ConcurrencyError:   # someone else wrote one of its streams: one at a time
            for event, commands in unit.asked:
                metadata = caused_by(event, self.name)
                for issued in commands:
                    self._carry_out(event, issued, metadata)
                self._advance(event.position)
            return
        self._count(unit)
        if unit.asked:
            self._advance(unit.asked[-1][0].position)

    def _count(self, unit: _Unit) -> None:
        self.commands += unit.done
        self.refused += unit.refused
        self.skipped += unit.skipped

    def _carry_out(self, cause: RecordedEvent, issued: _Issued, metadata: dict[str, Any]) -> str:
        """Decide and write one command, trying again when another writer got there
        first (``retries`` times). A later attempt (a retry) that is carried out is
        recorded as ``ReactionRetried`` in the same transaction."""
        for tries in range(self.retries + 1):
            unit = _Unit()
            stored = set(self.store.locate([issued.first_id, issued.failed_id]))
            outcome = self._decide_command(unit, cause, issued, metadata, stored)
            if outcome == DONE and issued.attempt > 1:
                retried = ReactionRetried(self.name, issued.cause_id, issued.index,
                                          issued.command.stream_id, issued.attempt)
                self._record(unit, retried, retried_id(
                    self.name, issued.cause_id, issued.index, issued.attempt), metadata)
            try:
                save_all(unit.saves())
            except ConcurrencyError:
                if tries == self.retries:
                    raise
                continue
            self._count(unit)
            return outcome
        raise AssertionError("unreachable: the last try returns or raises")

    def _error(self, where: str, exc: Exception, event: RecordedEvent) -> ReactionError:
        return ReactionError(f"{where} (reactor {self.name!r})", exc, stream_id=event.stream_id,
                             version=event.version, position=event.position, type=event.type)

    def _repository(self, stream_id: str, cause: RecordedEvent) -> Repository:
        for prefix, repository in self._repositories:
            if stream_id.startswith(prefix):
                return repository
        raise self._error(f"{self.reaction.name}.react", InvalidInputError(
            f"no aggregate takes stream {stream_id!r}: the reactor's aggregates are for "
            f"streams starting with {[p for p, _ in self._repositories]}"), cause)

    # -- what was done before ----------------------------------------------------------

    def _resume(self) -> None:
        """Catch up with the checkpoint, which another reactor of this name may have
        moved; what was written past it is found by its ids as the events come."""
        self.position = max(self.position, self._stored_position())

    def _stored(self, event_id: str) -> bool:
        return bool(self.store.locate([event_id]))

    def _stored_position(self) -> int:
        found = self.store.load_checkpoint(self._checkpoint_name)
        return 0 if found is None else found[0]

    def checkpoint(self) -> None:
        """Save the position now (a run saves it every ``checkpoint_every`` events)."""
        with self._lock:
            stored = self._stored_position()
            if self.position > stored:
                self.store.save_checkpoint(self._checkpoint_name, self.position, None)
            self._dirty = 0
            self._last_save = time.monotonic()

    # -- looking events up -------------------------------------------------------------

    def _remember(self, event: RecordedEvent) -> None:
        self._recent[str(event.event_id)] = event
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)

    def _lookup(self, event_id: str) -> RecordedEvent | None:
        found = self._recent.get(event_id)
        if found is not None:
            return found
        where = self.store.locate([event_id]).get(event_id)
        if where is None:
            return None
        return next(self.store.read_stream(where[0], where[1], where[1]), None)

    # -- failures ----------------------------------------------------------------------

    def failures(self, open_only: bool = True) -> pd.DataFrame:
        """The commands the reactor recorded as refused, one row each (its latest attempt):
        ``position, failure_id, cause_id, cause_type, command_index, target, command,
        error, message, attempt, answered, resolved``.

        ``answered`` says a reaction reacted to the failure (a refund, say): the
        failure is settled by that, and ``retry`` leaves it alone. ``resolved``
        says a retry carried the command out. ``open_only`` keeps the failures
        that are neither: the ones ``retry`` would try.
        """
        import pandas as pd

        columns = ["position", "failure_id", "cause_id", "cause_type", "command_index",
                   "target", "command", "error", "message", "attempt", "answered", "resolved"]
        frame = pd.DataFrame(list(self._failure_records().values()), columns=columns)
        if open_only:
            frame = frame[~(frame["answered"] | frame["resolved"])].reset_index(drop=True)
        return frame

    def _failure_records(self) -> dict[tuple[str, int], dict[str, Any]]:
        records: dict[tuple[str, int], dict[str, Any]] = {}
        for event in self.store.read_stream(self.stream_id):
            data = event.data
            if isinstance(data, ReactionFailed):
                records[data.cause_id, data.command_index] = {
                    "position": event.position, "failure_id": str(event.event_id),
                    "cause_id": data.cause_id, "cause_type": data.cause_type,
                    "command_index": data.command_index, "target": data.target,
                    "command": data.command, "error": data.error, "message": data.message,
                    "attempt": data.attempt, "answered": False, "resolved": False}
            elif (isinstance(data, ReactionRetried)
                  and (data.cause_id, data.command_index) in records):
                records[data.cause_id, data.command_index]["resolved"] = True
        if records:
            failure_ids = [record["failure_id"] for record in records.values()]
            answered = set(self.store.sql(
                "select distinct metadata->>'causation_id' as cause from events "
                "where metadata->>'causation_id' in (select unnest(?::varchar[]))",
                [failure_ids])["cause"])
            for record in records.values():
                record["answered"] = record["failure_id"] in answered
        return records

    def retry(self) -> int:
        """Try each open failure's command again (the reaction is asked anew, from its
        cause); return how many were carried out. One refused again is recorded again,
        as the next attempt. A failure a reaction answered (compensated) is settled,
        and never retried: carrying the command out after a refund would pay twice."""
        with self._lock:
            done = 0
            for record in self._failure_records().values():
                if record["answered"] or record["resolved"]:
                    continue
                cause = self._lookup(record["cause_id"])
                if cause is None:
                    raise EventlabError(
                        f"the cause {record['cause_id']} of a failure of reactor "
                        f"{self.name!r} is no longer in the log")
                with looking_up(self._lookup):
                    commands = commands_of(self.reaction, cause)
                index, attempt = record["command_index"], record["attempt"] + 1
                if index >= len(commands):
                    raise EventlabError(
                        f"{self.reaction.name} no longer asks for command #{index + 1} "
                        f"when it reacts to event {cause.event_id}; nothing to retry")
                issued = _Issued(self.name, cause, index, commands[index], attempt)
                done += self._carry_out(cause, issued, caused_by(cause, self.name)) == DONE
            return done

    def __repr__(self) -> str:
        return (f"<Reactor {self.name!r} {self.reaction.name} at position {self.position}: "
                f"commands={self.commands} refused={self.refused} skipped={self.skipped}>")


class _Issued:
    """One command a cause issued, with the ids of what carrying it out may write."""

    __slots__ = ("attempt", "cause_id", "cause_type", "command", "failed", "failed_id", "first",
                 "first_id", "index", "reactor")

    def __init__(self, reactor: str, cause: RecordedEvent, index: int, command: Command,
                 attempt: int = 1) -> None:
        self.reactor, self.index, self.command, self.attempt = reactor, index, command, attempt
        self.cause_id, self.cause_type = str(cause.event_id), cause.type
        self.first_id = effect_id(reactor, self.cause_id, index, 0, attempt)
        self.failed_id = failure_id(reactor, self.cause_id, index, attempt)
        self.first, self.failed = str(self.first_id), str(self.failed_id)

    def event_id(self, n: int) -> uuid.UUID:
        """The id of the ``n``-th event (from 0) carrying the command out writes."""
        return self.first_id if n == 0 else effect_id(
            self.reactor, self.cause_id, self.index, n, self.attempt)


class _Unit:
    """What the commands of a few events decided: roots with pending events, to be
    written together, and how many commands were done, refused or found done."""

    def __init__(self) -> None:
        self.asked: list[tuple[RecordedEvent, list[_Issued]]] = []
        self.roots: dict[str, tuple[Repository, AggregateRoot]] = {}
        self.done = self.refused = self.skipped = 0

    def root(self, repository: Repository, stream_id: str) -> AggregateRoot:
        """The stream's root as this unit left it (loaded on first use)."""
        found = self.roots.get(stream_id)
        if found is None:
            found = self.roots[stream_id] = (repository, repository.get(stream_id))
        return found[1]

    def saves(self) -> list[tuple[Repository, AggregateRoot]]:
        return [(repository, root) for repository, root in self.roots.values() if root.pending]


class _Journal(Aggregate):
    """The reactor's own stream: it records what it is given (failures, retries)."""

    def initial_state(self) -> int:
        return 0

    def apply(self, state: int, event: Any) -> int:
        return state + 1

    def handle(self, state: int, record: Any) -> list[Any]:
        return [record]


def _repositories(store: EventStore, aggregate: Aggregate | Mapping[str, Aggregate],
                  snapshot_every: int | None) -> list[tuple[str, Repository]]:
    """One repository per aggregate, by stream-id prefix, longest first."""
    if isinstance(aggregate, Aggregate):
        pairs: Iterable[tuple[str, Aggregate]] = [("", aggregate)]
    elif isinstance(aggregate, Mapping) and aggregate:
        pairs = aggregate.items()
    else:
        raise InvalidInputError(
            "aggregate must be an el.Aggregate, or a mapping of stream-id prefixes to "
            f"aggregates such as {{'account-': Account()}}, got {aggregate!r}")
    repositories = []
    for prefix, each in pairs:
        if not isinstance(prefix, str) or not isinstance(each, Aggregate):
            raise InvalidInputError(
                f"aggregate mapping: {prefix!r} -> {each!r} is not a str prefix and an "
                "el.Aggregate")
        repositories.append((prefix, Repository(store, each, snapshot_every=snapshot_every)))
    return sorted(repositories, key=lambda pair: -len(pair[0]))


__all__ = ["Reactor"]
