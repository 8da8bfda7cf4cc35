"""Reactions: events that cause commands on other aggregates (policies, sagas).

A ``Reaction`` looks at one recorded event and returns the ``Command``\\ s it
causes; a ``Reactor`` (``eventlab.reactor``) runs it over a store and carries
the commands out. Every event a reactor writes says where it came from, in its
metadata: ``causation_id`` (the event that caused it), ``correlation_id`` (the
first event of the chain), ``reactor`` (who wrote it) and ``depth`` (how many
reactions away from the first event it is). Its id is derived from the
reactor's name and its cause, so doing the same work twice writes nothing twice.

>>> import eventlab as el
>>> from eventlab.examples.bank import Deposit
>>> class Welcome(el.Reaction):
...     def react(self, event):
...         if event.type == "Opened":
...             return [el.Command(event.stream_id, Deposit(5))]
...         return []
>>> from eventlab.testing import recorded
>>> from eventlab.examples.bank import Opened
>>> el.given(Welcome()).when(recorded(Opened("ada"), "acc-1")).then(
...     [el.Command("acc-1", Deposit(5))])
[Command(stream_id='acc-1', command=Deposit(amount=5))]
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .envelope import RecordedEvent
from .errors import EventlabError, InvalidInputError
from .events import REGISTRY

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://eventlab.dev/reactions")


@dataclass(frozen=True)
class Command:
    """A command for the aggregate of one stream: what a reaction asks for."""

    stream_id: str
    command: Any


@dataclass(frozen=True)
class ReactionFailed:
    """A reactor's command that the target aggregate refused (a ``DomainError``).

    Written to the reactor's own stream (``reactor-<name>``) as an event of the
    chain: a reaction may react to it (a refund, say), and ``Reactor.retry``
    tries the command again.
    """

    reactor: str
    cause_id: str
    cause_type: str
    command_index: int  # which of the cause's commands, from 0
    target: str         # the stream the command was for
    command: str        # the command, as its repr
    error: str          # the DomainError's class
    message: str
    attempt: int = 1


@dataclass(frozen=True)
class ReactionRetried:
    """A refused command that ``Reactor.retry`` carried out after all."""

    reactor: str
    cause_id: str
    command_index: int
    target: str
    attempt: int


REGISTRY.register(ReactionFailed, ReactionRetried)

Lookup = Callable[[str], "RecordedEvent | None"]
_lookup: contextvars.ContextVar[Lookup | None] = contextvars.ContextVar(
    "eventlab_reaction_lookup", default=None)


class Reaction:
    """Turns an event into commands. Override ``react``.

    ``types`` (type names or event classes) limits the events ``react`` sees.
    While a reactor (or ``given``) runs it, ``cause(event)`` and
    ``origin(event)`` look up the events its chain started from.
    """

    types: ClassVar[Sequence[Any] | None] = None

    def react(self, event: RecordedEvent) -> list[Command]:
        """The commands ``event`` causes (an empty list for none)."""
        raise NotImplementedError(f"{type(self).__name__}.react")

    @property
    def name(self) -> str:
        return type(self).__qualname__

    def cause(self, event: RecordedEvent) -> RecordedEvent | None:
        """The event that caused ``event`` (``None`` when no reaction wrote it)."""
        cause_id = event.metadata.get("causation_id")
        return None if cause_id is None else _find(cause_id)

    def origin(self, event: RecordedEvent) -> RecordedEvent:
        """The first event of ``event``'s chain (``event`` itself when it started one)."""
        first = event.metadata.get("correlation_id")
        if first is None or first == str(event.event_id):
            return event
        found = _find(first)
        if found is None:
            raise EventlabError(f"the first event of the chain, {first}, is not in the log")
        return found


def _find(event_id: str) -> RecordedEvent | None:
    lookup = _lookup.get()
    if lookup is None:
        raise EventlabError(
            "cause() and origin() look events up in the log a reactor runs on: call them "
            "from react() while a Reactor or el.given(...) runs the reaction")
    return lookup(event_id)


@contextlib.contextmanager
def looking_up(lookup: Lookup) -> Iterator[None]:
    """Let ``cause``/``origin`` find events with ``lookup`` while the block runs."""
    token = _lookup.set(lookup)
    try:
        yield
    finally:
        _lookup.reset(token)


def commands_of(reaction: Reaction, event: RecordedEvent) -> list[Command]:
    """``reaction.react(event)``, checked: a list of ``Command``."""
    produced = reaction.react(event)
    if produced is None:
        return []
    if isinstance(produced, Command):
        return [produced]
    produced = list(produced)
    for number, command in enumerate(produced, start=1):
        if not isinstance(command, Command):
            raise InvalidInputError(
                f"{reaction.name}.react returned {command!r} as its command #{number}; "
                "return a list of el.Command(stream_id, command)")
    return produced


def caused_by(cause: RecordedEvent, reactor: str) -> dict[str, Any]:
    """The metadata of an event ``cause`` led to, written by ``reactor``."""
    return {"causation_id": str(cause.event_id),
            "correlation_id": cause.metadata.get("correlation_id", str(cause.event_id)),
            "reactor": reactor,
            "depth": depth_of(cause) + 1}


def depth_of(event: RecordedEvent) -> int:
    """How many reactions lie between the chain's first event and ``event`` (0 for it)."""
    depth = event.metadata.get("depth", 0)
    return depth if isinstance(depth, int) and not isinstance(depth, bool) else 0


def effect_id(reactor: str, cause_id: str, index: int, event: int, attempt: int = 1) -> uuid.UUID:
    """The id of event ``event`` of command ``index`` that ``reactor`` carried out for a
    cause (attempt 1 is the first; ``Reactor.retry`` makes later ones).

    >>> effect_id("transfers", "c", 0, 0) == effect_id("transfers", "c", 0, 0)
    True
    """
    return _derived(reactor, cause_id, index, event, attempt)


def failure_id(reactor: str, cause_id: str, index: int, attempt: int = 1) -> uuid.UUID:
    """The id of the ``ReactionFailed`` event of a refused command."""
    return _derived(reactor, cause_id, index, "failed", attempt)


def retried_id(reactor: str, cause_id: str, index: int, attempt: int) -> uuid.UUID:
    """The id of the ``ReactionRetried`` event of a retry that succeeded."""
    return _derived(reactor, cause_id, index, "retried", attempt)


def _derived(*parts: object) -> uuid.UUID:
    """A name-based id: the same parts always give the same id."""
    return uuid.uuid5(_NAMESPACE, "\n".join(map(str, parts)))


__all__ = ["Command", "Reaction", "ReactionFailed", "ReactionRetried",
           "caused_by", "commands_of", "depth_of", "effect_id", "failure_id", "looking_up",
           "retried_id"]
