"""given / when / then: test an aggregate's decisions without a store.

>>> from eventlab.examples.bank import Account, Opened, Withdraw, InsufficientFunds
>>> given(Account(), [Opened("ada")]).when(Withdraw(100)).then_raises(InsufficientFunds)
InsufficientFunds('cannot withdraw 100: the balance is 0.0')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .aggregate import Aggregate


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

    def _decide(self) -> list[Any]:
        if not self._has_command:
            raise AssertionError("call .when(command) before .then(...)")
        return list(self.aggregate.handle(self.state, self._command) or [])

    def then(self, expected: Iterable[Any]) -> list[Any]:
        """Assert the command produces exactly ``expected``; return the events."""
        expected = list(expected)
        produced = self._decide()
        if produced != expected:
            raise AssertionError(
                f"when {self._command!r}\n  expected events: {expected!r}\n"
                f"  produced events: {produced!r}")
        return produced

    def then_raises(self, error: type[BaseException], match: str | None = None) -> BaseException:
        """Assert the command is rejected with ``error`` (its message containing ``match``)."""
        try:
            produced = self._decide()
        except error as exc:
            if match is not None and match not in str(exc):
                raise AssertionError(
                    f"when {self._command!r}: {type(exc).__name__} was raised but its "
                    f"message {str(exc)!r} does not contain {match!r}") from exc
            return exc
        raise AssertionError(
            f"when {self._command!r}: expected {error.__name__}, "
            f"but it produced {produced!r}")

    def then_state(self, expected: Any) -> Any:
        """Assert the state after the produced events equals ``expected``."""
        state = self.aggregate.fold(self._decide(), self.state)
        if state != expected:
            raise AssertionError(f"expected state {expected!r}, got {state!r}")
        return state


def given(aggregate: Aggregate, events: Iterable[Any] = ()) -> Scenario:
    """Start a scenario from past events."""
    return Scenario(aggregate, events)
