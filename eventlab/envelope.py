"""Envelopes: what an append takes (``NewEvent``) and what a read gives (``RecordedEvent``).

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Deposited:
...     amount: float
>>> NewEvent(Deposited(5), metadata={"user": "ada"}).metadata
{'user': 'ada'}
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple


class ExpectedVersion(enum.Enum):
    """What an append expects of the stream's current version (besides an exact int)."""

    ANY = "ANY"                      # append whatever the version is
    NO_STREAM = "NO_STREAM"          # the stream must not exist yet (version 0)
    STREAM_EXISTS = "STREAM_EXISTS"  # the stream must have at least one event

    def __repr__(self) -> str:
        return f"el.{self.value}"

    __str__ = __repr__


ANY = ExpectedVersion.ANY
NO_STREAM = ExpectedVersion.NO_STREAM
STREAM_EXISTS = ExpectedVersion.STREAM_EXISTS


class RecordedEvent(NamedTuple):
    """One stored event with its place in the log (immutable).

    ``position`` is global (1-based, increasing), ``version`` counts within the
    stream (1-based). ``data`` is the event object, or a ``dict`` when its type
    has no registered class. A named tuple rather than a dataclass: reads make
    millions of them, and a tuple is built several times faster.
    """

    position: int
    stream_id: str
    version: int
    type: str
    data: Any
    metadata: dict[str, Any]
    event_id: uuid.UUID
    recorded_at: datetime


class StoredUUID(uuid.UUID):
    """A ``uuid.UUID`` read from the store, parsed from its text on first use.

    Reading a big log makes one per event and most are never looked at; parsing
    them all would cost more than the rest of the read.
    """

    __slots__ = ("_text",)

    def __getattr__(self, name: str) -> Any:
        # only called for unset attributes: uuid.UUID's own slots, until parsed
        if name not in ("int", "is_safe"):
            raise AttributeError(name)
        object.__setattr__(self, "int", uuid.UUID(self._text).int)
        object.__setattr__(self, "is_safe", uuid.SafeUUID.unknown)
        return getattr(self, name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (uuid.UUID, (str(self),))

    def __str__(self) -> str:
        return self._text   # stores give canonical text: no need to parse it

    def __repr__(self) -> str:
        return f"UUID('{self}')"


#: ``set_uuid_text(object.__new__(StoredUUID), text)``: the slot's own C-level setter,
#: for the read loop (``uuid.UUID`` forbids ordinary attribute assignment)
set_uuid_text = StoredUUID._text.__set__



@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append, with optional metadata, id and time.

    Passing the ``event_id`` of an event already stored at the same place makes
    the append a safe retry: it writes nothing and returns the same version.
    ``type`` names the stored type when ``data`` is a plain ``dict``.
    """

    data: Any
    metadata: dict[str, Any] | None = None
    event_id: uuid.UUID | None = None
    recorded_at: datetime | None = None
    type: str | None = field(default=None)
