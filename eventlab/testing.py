"""given / when / then: test an aggregate's decisions, or a reaction's, without a store.

>>> from eventlab.examples.bank import Account, Opened, Withdraw, InsufficientFunds
>>> given(Account(), [Opened("ada")]).when(Withdraw(100)).then_raises(InsufficientFunds)
InsufficientFunds('cannot withdraw 100: the balance is 0.0')

When a check fails, an ``AssertionError`` shows what was expected and what
happened instead, the error a command raised included (type and message, with
the error itself as its ``__cause__``). A ``NotImplementedError`` passes through
unchanged: a stub still to be written is not a wrong decision.

For a reaction, the past events are recorded ones (``recorded`` makes them),
which ``cause()`` and ``origin()`` find; ``when`` takes one, ``then`` the commands.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NoReturn, overload

from .aggregate import Aggregate
from .envelope import RecordedEvent
from .errors import InvalidInputError
from .events import REGISTRY
from .reactions import Command, Reaction, commands_of, looking_up
from .reactions import caused_by as chain_metadata
from .store.rows import type_names


class Scenario:
    """Past events, then one command; check the events it produces or the error."""

    def __init__(self, aggregate: Aggregate, events: Iterable[Any]) -> None:
        self.aggregate = aggregate
        self.history = list(events)
        self.state = aggregate.fold(self.history, stream_id="given")
        self._command: Any = None
        self._has_command = False

    def when(self, command: Any) -> Scenario:
        self._command, self._has_command = command, True
        return self

    def _outcome(self) -> tuple[list[Any], Exception | None]:
        """The events the command produces, or the error it raises."""
        if not self._has_command:
            raise AssertionError("call .when(command) before .then(...)")
        try:
            return list(self.aggregate.handle(self.state, self._command) or []), None
        except Exception as exc:
            return [], exc

    def _decide(self, wanted: str) -> list[Any]:
        """The produced events; an ``AssertionError`` naming ``wanted`` if it raised."""
        produced, error = self._outcome()
        if error is not None:
            _fail(f"when {self._command!r}\n  expected {wanted}\n"
                  f"  but it raised {_named(error)}", error)
        return produced

    def then(self, expected: Iterable[Any]) -> list[Any]:
        """Assert the command produces exactly ``expected``; return the events.

        >>> from eventlab.examples.bank import Account, Opened, Withdraw
        >>> given(Account(), [Opened("ada")]).when(Withdraw(100)).then([])
        Traceback (most recent call last):
        AssertionError: when Withdraw(amount=100)
          expected events: []
          but it raised InsufficientFunds: cannot withdraw 100: the balance is 0.0
        """
        expected = list(expected)
        produced = self._decide(f"events: {expected!r}")
        return _same(self._command, "events", "produced", expected, produced)

    def then_raises(self, error: type[BaseException], match: str | None = None) -> BaseException:
        """Assert the command is rejected with ``error`` (its message containing ``match``)."""
        produced, raised = self._outcome()
        if raised is None:
            raise AssertionError(
                f"when {self._command!r}: expected {error.__name__}, "
                f"but it produced {produced!r}")
        if not isinstance(raised, error):
            _fail(f"when {self._command!r}: expected {error.__name__}, "
                  f"but it raised {_named(raised)}", raised)
        if match is not None and match not in str(raised):
            raise AssertionError(
                f"when {self._command!r}: {type(raised).__name__} was raised but its "
                f"message {str(raised)!r} does not contain {match!r}") from raised
        return raised

    def then_state(self, expected: Any) -> Any:
        """Assert the state after the produced events equals ``expected``."""
        state = self.aggregate.fold(self._decide(f"state: {expected!r}"), self.state)
        if state != expected:
            raise AssertionError(f"when {self._command!r}\n  expected state: {expected!r}\n"
                                 f"  got state: {state!r}")
        return state


class ReactionScenario:
    """Past recorded events, then one; check the commands a reaction issues for it."""

    def __init__(self, reaction: Reaction, events: Iterable[RecordedEvent]) -> None:
        self.reaction = reaction
        self.history = list(events)
        for number, event in enumerate(self.history, start=1):
            if not isinstance(event, RecordedEvent):
                raise InvalidInputError(
                    f"given event #{number} is {event!r}: a reaction's past is recorded "
                    "events; make them with eventlab.testing.recorded(event, stream_id)")
        self._event: RecordedEvent | None = None

    def when(self, event: RecordedEvent) -> ReactionScenario:
        if not isinstance(event, RecordedEvent):
            raise InvalidInputError(
                f"when({event!r}): a reaction reacts to a recorded event; make one with "
                "eventlab.testing.recorded(event, stream_id)")
        self._event = event
        return self

    def _react(self) -> list[Command]:
        if self._event is None:
            raise AssertionError("call .when(recorded_event) before .then(...)")
        wanted = type_names(REGISTRY, self.reaction.types)
        if wanted is not None and self._event.type not in wanted:
            return []   # a reactor never shows the reaction this event
        known = {str(e.event_id): e for e in (*self.history, self._event)}
        with looking_up(known.get):
            return commands_of(self.reaction, self._event)

    def then(self, expected: Iterable[Command]) -> list[Command]:
        """Assert the reaction issues exactly ``expected``; return the commands."""
        expected = list(expected)
        try:
            issued = self._react()
        except AssertionError:
            raise
        except Exception as exc:
            _fail(f"when {self._event!r}\n  expected commands: {expected!r}\n"
                  f"  but it raised {_named(exc)}", exc)
        return _same(self._event, "commands", "issued", expected, issued)


def _fail(message: str, error: Exception) -> NoReturn:
    """Raise an ``AssertionError`` saying ``message``, caused by ``error``; or ``error``
    itself when it is a ``NotImplementedError`` (a stub still to be written)."""
    if isinstance(error, NotImplementedError):
        raise error
    raise AssertionError(message) from error


def _named(error: BaseException) -> str:
    """An error as a failure message names it: its type, then its message."""
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _same(when: Any, what: str, verb: str, expected: list[Any], got: list[Any]) -> list[Any]:
    """``got``, when it equals ``expected``; else an ``AssertionError`` showing both."""
    if got != expected:
        raise AssertionError(f"when {when!r}\n  expected {what}: {expected!r}\n"
                             f"  {verb} {what}: {got!r}")
    return got


@overload
def given(aggregate: Aggregate, events: Iterable[Any] = ()) -> Scenario: ...
@overload
def given(aggregate: Reaction, events: Iterable[RecordedEvent] = ()) -> ReactionScenario: ...
def given(aggregate: Aggregate | Reaction, events: Iterable[Any] = ()) -> Any:
    """Start a scenario from past events: an aggregate's, or a reaction's."""
    if isinstance(aggregate, Reaction):
        return ReactionScenario(aggregate, events)
    return Scenario(aggregate, events)


def recorded(event: Any, stream_id: str = "given", *, caused_by: RecordedEvent | None = None,
             reactor: str = "given", version: int = 1, position: int = 1,
             type: str | None = None, metadata: dict[str, Any] | None = None) -> RecordedEvent:
    """A ``RecordedEvent`` for a reaction's scenario, with a fresh id.

    ``caused_by`` links it into that event's chain, as a reactor named
    ``reactor`` would have written it.

    >>> from eventlab.examples.bank import Deposited, Withdrew
    >>> w = recorded(Withdrew(5.0), "acc-1")
    >>> d = recorded(Deposited(5.0), "acc-2", caused_by=w)
    >>> d.metadata["causation_id"] == str(w.event_id), d.metadata["depth"]
    (True, 1)
    """
    if type is None:
        if isinstance(event, dict):
            raise InvalidInputError("a dict event needs type='Name'")
        type = REGISTRY.name_of_class(event.__class__)
    meta = dict(metadata or {})
    if caused_by is not None:
        meta.update(chain_metadata(caused_by, reactor))
    return RecordedEvent(position, stream_id, version, type, event, meta, uuid.uuid4(),
                         datetime.now(UTC))
