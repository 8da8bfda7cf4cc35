"""Projections: folds over the global log, run by a ``Projector`` that remembers where it was.

A ``Projection`` says what state starts as and how one ``RecordedEvent``
changes it. A ``Projector`` runs it over a store: ``run()`` catches up to the
head, ``follow()`` keeps it up to date live. A *named* projector stores its
state and position together, in one checkpoint row, so a reopened store resumes
exactly where the last checkpoint left off: no event applied twice, none skipped.

>>> import eventlab as el
>>> from eventlab.examples.bank import Deposited, Opened
>>> class Deposits(el.Projection):
...     types = ["Deposited"]
...     def initial_state(self):
...         return 0.0
...     def apply(self, state, event):
...         return state + event.data.amount
>>> store = el.InMemoryEventStore()
>>> _ = store.append("acc-1", [Opened("ada"), Deposited(10), Deposited(5)])
>>> p = el.Projector(store, Deposits(), name="deposits")
>>> p.run(), p.state, p.position
(2, 15.0, 3)
>>> el.Projector(store, Deposits(), name="deposits").state   # resumed from the checkpoint
15.0
"""

from __future__ import annotations

import dataclasses
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from .envelope import RecordedEvent
from .errors import ApplyError, EventlabError, InvalidInputError, SerializationError
from .sqlprojection import SqlProjection
from .statecodec import decode_state, encode_state
from .store.rows import check_position
from .store.rows import type_names as store_type_names

if TYPE_CHECKING:
    import pandas as pd

    from .store.base import EventStore
    from .store.subscription import Subscription


class Projection:
    """A fold over the global log. Override ``initial_state`` and ``apply``.

    ``types`` (type names or event classes) limits the events ``apply`` sees.
    ``state_type`` (e.g. ``dict[int, float]``) tells a named projector how to
    rebuild its state from JSON when ``type(initial_state())`` is not enough;
    dataclass states are rebuilt from their class without it.
    """

    types: ClassVar[Sequence[Any] | None] = None
    state_type: ClassVar[Any] = None

    def initial_state(self) -> Any:
        """The state before any event."""
        return None

    def apply(self, state: Any, event: RecordedEvent) -> Any:
        """Return the state after ``event`` (a ``RecordedEvent``: ``event.data`` is the payload)."""
        raise NotImplementedError(f"{type(self).__name__}.apply")

    @property
    def name(self) -> str:
        return type(self).__qualname__


#: Checkpoint names under this prefix belong to SQL projections (``sql:<table>``).
SQL_CHECKPOINTS = "sql:"
#: ... and under this one to reactors (``reactor:<name>``).
REACTOR_CHECKPOINTS = "reactor:"


def check_checkpoint_name(name: Any, what: str) -> str:
    """A name a projector may keep its checkpoint under: non-empty text, and not one
    of the names SQL projections keep theirs under."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"{what} name must be a non-empty str, got {name!r}")
    for prefix, whose in ((SQL_CHECKPOINTS, "SQL projections"),
                          (REACTOR_CHECKPOINTS, "reactors")):
        if name.lower().startswith(prefix):
            raise InvalidInputError(
                f"{what} cannot be named {name!r}: names starting with {prefix!r} hold "
                f"the checkpoints of {whose}")
    return name


def type_names(store: EventStore, types: Iterable[Any] | None) -> set[str] | None:
    """The stored type names ``types`` (names or classes) stand for, or None for all."""
    names = store_type_names(store.registry, types)
    return None if names is None else set(names)


def apply_error(where: str, exc: Exception, event: RecordedEvent) -> ApplyError:
    return ApplyError(where, exc, stream_id=event.stream_id, version=event.version,
                      position=event.position, type=event.type)


def fold(projection: Projection, state: Any, events: Iterable[RecordedEvent], *,
         until: int | None = None, where: str | None = None,
         ) -> Iterator[tuple[Any, RecordedEvent]]:
    """Apply ``events`` to ``state`` in order, yielding ``(state after it, event)`` for each,
    up to position ``until``: the one loop every projection runs in.

    A failing ``apply`` raises ``ApplyError`` naming ``where`` and the event; the
    state after the last good event is the last one yielded.

    >>> import eventlab as el
    >>> class Count(el.Projection):
    ...     def initial_state(self): return 0
    ...     def apply(self, state, event): return state + 1
    >>> store = el.InMemoryEventStore()
    >>> _ = store.append("a-1", [el.NewEvent({}, type="T")] * 3)
    >>> [n for n, _ in fold(Count(), 0, store.read_all(), until=2)]
    [1, 2]
    """
    apply, where = projection.apply, where or f"{projection.name}.apply"
    for event in events:
        if until is not None and event.position > until:
            return
        try:
            state = apply(state, event)
        except Exception as exc:
            raise apply_error(where, exc, event) from exc
        yield state, event


def apply_event(projection: Projection, state: Any, event: RecordedEvent,
                where: str | None = None) -> Any:
    """The state after one event (``fold`` of a single event)."""
    return next(fold(projection, state, (event,), where=where))[0]


class Projector:
    """Runs a projection over a store; with ``name``, keeps a durable checkpoint.

    A named projector saves ``(position, state)`` atomically at the end of each
    ``run()`` and every ``checkpoint_every`` applied events (while following:
    when idle, at most once a second unless ``checkpoint_every`` events piled
    up, and on close). After an ``ApplyError`` the state is the one after the
    last good event, unless ``apply`` changed the state in place; ``rebuild()``
    starts over from position 0.

    When the stored state no longer fits the projection (its state's shape
    changed since the checkpoint was saved), the projector warns and starts
    over: it begins at the initial state and position 0, and the next
    checkpoint replaces the stored one, wherever it was. The next ``run()`` is
    then a full rebuild.

    A dict state whose keys are not all ``str`` (say ``{3: 1.0}``) would come
    back from JSON with ``str`` keys; a named projector refuses to store it
    unless the projection sets ``state_type`` (e.g. ``dict[int, float]``).
    """

    def __init__(self, store: EventStore, projection: Projection, name: str | None = None, *,
                 checkpoint_every: int = 1000) -> None:
        if not isinstance(projection, Projection):
            raise InvalidInputError(
                f"projection must be an el.Projection instance, got {projection!r}")
        check_position("checkpoint_every", checkpoint_every, 1)
        if name is not None:
            check_checkpoint_name(name, "a projector")
        self.store = store
        self.projection = projection
        self.name = name
        self.checkpoint_every = checkpoint_every
        self.subscription: Subscription | None = None
        self._types = type_names(store, projection.types)
        self._lock = threading.RLock()
        self._dirty = 0
        self._last_save = time.monotonic()
        self._failed = False
        self._replace_checkpoint = False   # the stored one did not fit: overwrite it
        self.state: Any = projection.initial_state()
        self.position = 0
        if name is not None:
            found = store.load_checkpoint(name)
            if found is not None:
                position, text = found
                try:
                    if text is not None:
                        self.state = self._restore(text)
                    self.position = position
                except SerializationError as exc:
                    warnings.warn(
                        f"the stored state of projector {name!r} does not fit "
                        f"{projection.name} ({exc.__cause__ or exc}); it starts over from "
                        "position 0 and its next checkpoint replaces the stored one",
                        stacklevel=2)
                    self.state = projection.initial_state()
                    self._replace_checkpoint = True

    @property
    def _where(self) -> str:
        return f"{self.projection.name}.apply" + (f" (projector {self.name!r})"
                                                  if self.name else "")

    # -- running ---------------------------------------------------------------------

    def run(self) -> int:
        """Apply every event up to the head; return how many were applied."""
        with self._lock:
            head = self.store.head()
            if head <= self.position:
                return 0
            types = None if self._types is None else sorted(self._types)
            applied = self._fold(self.store.read_all(self.position + 1, types=types), head)
            self.position = max(self.position, head)  # events skipped by `types` count too
            if self.name is not None:
                self.checkpoint()
            return applied

    def _fold(self, events: Iterable[RecordedEvent], head: int) -> int:
        every = self.checkpoint_every if self.name is not None else 0
        state, last, applied = self.state, self.position, 0
        try:
            for state, event in fold(self.projection, self.state, events,
                                     until=head, where=self._where):
                last = event.position
                applied += 1
                if every and applied % every == 0:
                    self.state, self.position = state, last
                    self.checkpoint()
        finally:   # after a failure too: the state after the last good event
            self.state, self.position = state, last
        return applied

    def rebuild(self) -> int:
        """Start over from position 0 (resetting the checkpoint) and run to the head."""
        with self._lock:
            self.state, self.position = self.projection.initial_state(), 0
            if self.name is not None:
                self.store.save_checkpoint(self.name, 0, self._dump(), reset=True)
                self._replace_checkpoint = False
            self._failed = False
            return self.run()

    def follow(self, poll_interval: float | None = 0.5) -> Subscription:
        """Catch up, then apply each new event as it is appended, in a background thread.

        Returns the ``Subscription``: ``wait_until(position)``, ``close()``, ``.error``
        (an ``ApplyError`` when the projection fails). Read ``.state`` any time.
        """
        from .store.subscription import Subscription

        with self._lock:
            if self.subscription is not None and self.subscription.running:
                return self.subscription
            self._failed = False
            self.subscription = Subscription(
                self.store, self._live, from_position=self.position + 1,
                poll_interval=poll_interval, name=f"eventlab-projector-{self.name or id(self)}",
                on_idle=self._idle, on_close=self._closed)
            return self.subscription

    def _live(self, event: RecordedEvent) -> None:
        with self._lock:
            if event.position <= self.position:
                return  # a run() got there first
            if self._types is None or event.type in self._types:
                try:
                    self.state = apply_event(self.projection, self.state, event, self._where)
                except ApplyError:
                    self._failed = True
                    raise
            self.position = event.position
            self._dirty += 1

    def _idle(self) -> None:
        if self.name is None or not self._dirty:
            return
        if (self._dirty >= self.checkpoint_every
                or time.monotonic() - self._last_save >= 1.0):
            with self._lock:
                self.checkpoint()

    def _closed(self) -> None:
        if self.name is not None and self._dirty and not self._failed:
            with self._lock:
                self.checkpoint()

    # -- checkpoints --------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Store the state and position now (named projectors only)."""
        if self.name is None:
            raise EventlabError("an unnamed projector keeps no checkpoint; give it name=...")
        with self._lock:
            self.store.save_checkpoint(self.name, self.position, self._dump(),
                                       reset=self._replace_checkpoint)
            self._replace_checkpoint = False
            self._dirty = 0
            self._last_save = time.monotonic()

    def _dump(self) -> str:
        what = f"state of projector {self.name!r} ({self.projection.name})"
        return encode_state(self.state, what, check_keys=self.projection.state_type is None)

    def _restore(self, text: str) -> Any:
        target = self.projection.state_type
        if target is None:
            kind = type(self.state)
            target = kind if dataclasses.is_dataclass(kind) else None
        try:
            return decode_state(text, target)
        except SerializationError as exc:
            raise SerializationError(
                f"the stored state of projector {self.name!r} does not fit "
                f"{self.projection.name}: {exc}; call rebuild() to start over") from exc

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<Projector{label} {self.projection.name} at position {self.position}>"


def project_history(store: EventStore, projection: Projection, every: int = 1, *,
                    until: int | None = None) -> pd.DataFrame:
    """The projection's value as the log is applied: one row every ``every`` events.

    Columns: ``position``, ``events`` (how many applied so far), then the state:
    a dataclass's fields, a dict's keys, or one ``state`` column. The first row
    is the initial state (position 0), the last is the state at the head (or
    ``until``).

    >>> import eventlab as el
    >>> from eventlab.examples.bank import Deposited
    >>> class Total(el.Projection):
    ...     def initial_state(self): return 0.0
    ...     def apply(self, state, event): return state + event.data.amount
    >>> store = el.InMemoryEventStore()
    >>> _ = store.append("a", [Deposited(1), Deposited(2)])
    >>> el.project_history(store, Total())["state"].tolist()
    [0.0, 1.0, 3.0]
    """
    import pandas as pd

    from .timetravel import state_record

    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise InvalidInputError(f"every must be a positive int, got {every!r}")
    types = type_names(store, projection.types)
    start = state = projection.initial_state()
    applied = position = 0
    rows = [{"position": 0, "events": 0, **state_record(state)}]
    events = store.read_all(1, types=None if types is None else sorted(types))
    for state, event in fold(projection, start, events, until=until):
        applied, position = applied + 1, event.position
        if applied % every == 0:
            rows.append({"position": position, "events": applied, **state_record(state)})
    if applied % every:
        rows.append({"position": position, "events": applied, **state_record(state)})
    return pd.DataFrame(rows)


__all__ = ["Projection", "Projector", "SqlProjection", "apply_error", "apply_event", "fold",
           "project_history", "type_names"]
