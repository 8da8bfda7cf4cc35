"""Event classes the tests append (registered once, at import)."""

from __future__ import annotations

from dataclasses import dataclass, field

import eventlab as el


@dataclass(frozen=True)
class Noted:
    text: str


@dataclass(frozen=True)
class Counted:
    n: int
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Unstorable:
    """Holds an object msgspec cannot encode."""

    thing: object


el.register(Noted, Counted, Unstorable)


class Tally(el.Aggregate):
    """Adds up ``Counted.n``: a small aggregate for store tests."""

    def initial_state(self) -> int:
        return 0

    def apply(self, state: int, event: Counted) -> int:
        return state + event.n

    def handle(self, state: int, command: int) -> list[Counted]:
        return [Counted(command)]
