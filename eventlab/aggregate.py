"""Aggregates: a pure decider (``initial_state``/``apply``/``handle``) and its root.

An ``Aggregate`` says how events change state (``apply``) and which events a
command produces (``handle``). It holds no state itself; an ``AggregateRoot``
carries one stream's state, version and not-yet-saved events.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Added:
...     n: int
>>> class Counter(Aggregate):
...     def initial_state(self):
...         return 0
...     def apply(self, state, event):
...         return state + event.n
...     def handle(self, state, command):
...         return [Added(command)]
>>> root = AggregateRoot.new(Counter(), "c-1")
>>> root.handle(2)
[Added(n=2)]
>>> root.state, root.version, root.pending
(2, 1, [Added(n=2)])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from .envelope import RecordedEvent
from .errors import ApplyError, EventlabError
from .events import REGISTRY


class Aggregate:
    """Base class of a decider. Subclasses override the three methods.

    ``events`` may list the aggregate's event classes; they are registered so a
    fresh process decodes them before any has been appended.
    """

    events: ClassVar[Sequence[type]] = ()
    #: True: replays of stored events (time travel, conformance) hand ``apply`` (and
    #: a conformance check's ``handle``) the whole ``RecordedEvent`` (type, data,
    #: metadata, recorded_at) instead of the domain event. For models of logs
    #: whose events have no class; a ``Repository`` always hands domain events.
    wants_recorded: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.events:
            REGISTRY.register(*cls.events)

    def initial_state(self) -> Any:
        """The state of a stream with no events."""
        return None

    def apply(self, state: Any, event: Any) -> Any:
        """Return the state after ``event``; never mutate ``state``."""
        raise NotImplementedError(f"{type(self).__name__}.apply")

    def handle(self, state: Any, command: Any) -> list[Any]:
        """Return the events a command causes, or raise a ``DomainError``."""
        raise NotImplementedError(f"{type(self).__name__}.handle")

    @property
    def name(self) -> str:
        return type(self).__qualname__

    def fold(self, events: Iterable[Any], state: Any = None, *, stream_id: str | None = None,
             first_version: int = 1) -> Any:
        """Apply event objects in order to ``state`` (the initial state when None).

        A failing ``apply`` raises ``ApplyError`` naming the stream, version and type.
        """
        if state is None:
            state = self.initial_state()
        apply = self.apply
        version, event = first_version - 1, None
        try:
            for version, event in enumerate(events, start=first_version):  # noqa: B007
                state = apply(state, event)
        except EventlabError:
            raise
        except Exception as exc:
            raise ApplyError(f"{self.name}.apply", exc, stream_id=stream_id, version=version,
                             type=type(event).__name__) from exc
        return state


def replayed(aggregate: Any, event: RecordedEvent) -> Any:
    """What ``aggregate`` is handed of a stored event when a log is replayed through it:
    the domain event (``event.data``), or the event itself if it ``wants_recorded``."""
    return event if getattr(aggregate, "wants_recorded", False) else event.data


class AggregateRoot:
    """One stream's state under an aggregate, plus the events not saved yet."""

    def __init__(self, aggregate: Aggregate, id: str, state: Any, version: int) -> None:
        self.aggregate = aggregate
        self.id = id
        self.state = state
        self.loaded_version = version
        self.pending: list[Any] = []

    @classmethod
    def new(cls, aggregate: Aggregate, id: str) -> AggregateRoot:
        return cls(aggregate, id, aggregate.initial_state(), 0)

    @property
    def version(self) -> int:
        """The version ``state`` reflects, pending events included."""
        return self.loaded_version + len(self.pending)

    def handle(self, command: Any) -> list[Any]:
        """Decide on a command, apply the resulting events at once, queue them."""
        events = self.aggregate.handle(self.state, command)
        if events is None:
            events = []
        elif not isinstance(events, list):
            events = list(events) if isinstance(events, (tuple, Iterable)) else [events]
        self.state = self.aggregate.fold(events, self.state, stream_id=self.id,
                                         first_version=self.version + 1)
        self.pending.extend(events)
        return events

    def __repr__(self) -> str:
        return (f"AggregateRoot({self.aggregate.name}, id={self.id!r}, "
                f"version={self.version}, pending={len(self.pending)}, state={self.state!r})")
