"""What a store is given and gives back, and the checks every input passes.

The row types (``Pending`` to write, ``Row`` as stored) and the argument checks
live here, below the store contract, so that everything in the store package
(the contract, the backends, batches, frames, subscriptions) can share them
without importing one another in a circle.

>>> check_stream_id("account-1")
'account-1'
>>> check_position("limit", 2**70)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
eventlab.errors.InvalidInputError: limit must be an int from 0 to 2**63 - 1, got ...
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from ..envelope import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    ExpectedVersion,
    RecordedEvent,
    StoredUUID,
    set_uuid_text,
)
from ..errors import InvalidInputError
from ..events import DECODE_ERRORS, EventRegistry, loads

Expected = ExpectedVersion | int

#: The largest position, version or limit a store takes (a signed 64-bit integer).
MAX_INT = 2**63 - 1


class Pending(NamedTuple):
    """An encoded event waiting to be written: everything but its place in the log."""

    type: str
    data: str
    metadata: str
    event_id: str | None     # None: the store makes one
    recorded_at: datetime
    schema: int


class Row(NamedTuple):
    """An encoded event as stored (``StoredRow`` with names)."""

    position: int
    stream_id: str
    version: int
    type: str
    data: str
    metadata: str
    event_id: str
    recorded_at: datetime
    schema: int


#: What a backend's reads give: a stored row as a plain tuple, in ``Row``'s field order
#: (a ``Row`` is one). Plain tuples, because naming a million rows costs more than
#: reading them.
StoredRow = tuple[int, str, int, str, str, str, str, datetime, int]


def recorded_events(registry: EventRegistry, rows: Iterable[Any],
                    check: Callable[[], None] | None = None) -> Iterator[RecordedEvent]:
    """Stored rows ``(position, stream_id, version, type, data, metadata, event_id,
    recorded_at, schema_version)`` as ``RecordedEvent``s, payloads decoded by the
    registry: the read hot path. ``check`` runs before each row (a closed store's
    reads stop there)."""
    decoders: dict[Any, Any] = {}
    # C-level constructors: no Python frame per event for the tuple or the id
    new_tuple, new_object, set_text = tuple.__new__, object.__new__, set_uuid_text
    for p, s, v, t, d, m, i, a, sv in rows:
        if check is not None:
            check()
        decode = decoders.get(t if sv == 1 else (t, sv))
        if decode is None:
            decode = decoders[t if sv == 1 else (t, sv)] = registry.decoder_for(t, sv)
        try:
            data = decode(d)
        except DECODE_ERRORS:
            data = registry.decode(t, d, sv)  # raises, naming the type
        event_id = new_object(StoredUUID)
        set_text(event_id, i)
        yield new_tuple(RecordedEvent, (p, s, v, t, data, {} if m == "{}" else loads(m),
                                        event_id, a))


def check_stream_id(stream_id: Any) -> str:
    """The stream id, if every store can keep it: non-empty text, UTF-8, no NUL."""
    if not isinstance(stream_id, str):
        raise InvalidInputError(
            f"stream id must be a str, got {type(stream_id).__name__} {stream_id!r}")
    if not stream_id:
        raise InvalidInputError("stream id must not be empty")
    return check_text(stream_id, "stream id")


def check_text(text: str, what: str) -> str:
    """``text`` if it can be stored as UTF-8 text in every store (no lone surrogate, no NUL)."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"{what} {text!r} is not valid text: {exc.reason} at index {exc.start}"
            ) from None
    if "\x00" in text:
        raise InvalidInputError(f"{what} {text!r} holds a NUL character")
    return text


def check_metadata(metadata: Any, what: str = "metadata") -> dict[str, Any]:
    """Metadata as a dict (``None`` is an empty one); anything else is refused."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInputError(
            f"{what} must be a dict such as {{'user': 'ada'}}, got "
            f"{type(metadata).__name__} {metadata!r:.60}")
    return metadata


def check_expected(expected: Any) -> Expected:
    if isinstance(expected, ExpectedVersion):
        return expected
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise InvalidInputError(
            f"expected_version must be el.ANY, el.NO_STREAM, el.STREAM_EXISTS or an int "
            f"version, got {expected!r}")
    if not 0 <= expected <= MAX_INT:
        raise InvalidInputError(
            f"expected_version must be a version from 0 to 2**63 - 1, got {expected}")
    return expected


def expectation_met(expected: Expected, actual: int) -> bool:
    if expected is ANY:
        return True
    if expected is NO_STREAM:
        return actual == 0
    if expected is STREAM_EXISTS:
        return actual > 0
    return actual == expected


def check_position(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_INT:
        raise InvalidInputError(
            f"{name} must be an int from {minimum} to 2**63 - 1, got {value!r:.40}")
    return value


def check_checkpoint_forward(name: str, stored: int | None, position: int) -> None:
    if stored is not None and position < stored:
        raise InvalidInputError(
            f"checkpoint {name!r} is at position {stored}; it cannot move back to {position} "
            "(rebuild the projector to start over)")


def utc(moment: Any, what: str = "recorded_at") -> datetime:
    """A timezone-aware UTC datetime (naive values are taken as UTC).

    >>> utc(datetime(2024, 1, 1, 12))
    datetime.datetime(2024, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    """
    if not isinstance(moment, datetime):
        raise InvalidInputError(
            f"{what} must be a datetime, got {type(moment).__name__} {moment!r:.40}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInputError(
            f"{what} {moment.isoformat()} is outside years 1-9999 in UTC") from None


def event_id_text(event_id: Any) -> str | None:
    """An event id given to an append as canonical UUID text (``None`` stays ``None``)."""
    if event_id is None:
        return None
    if isinstance(event_id, uuid.UUID):
        return str(event_id)
    try:
        return str(uuid.UUID(str(event_id)))
    except ValueError:
        raise InvalidInputError(f"event_id must be a UUID, got {event_id!r:.60}") from None


def check_unique_ids(ids: Sequence[str | None], label: str) -> None:
    """Refuse a batch naming one event id twice; ``label`` formats a 1-based row number."""
    seen: dict[str, int] = {}
    for number, event_id in enumerate(ids, start=1):
        if event_id is None:
            continue
        first = seen.setdefault(event_id, number)
        if first != number:
            raise InvalidInputError(
                f"{label.format(number)} has the same event_id as {label.format(first)} "
                f"({event_id}); an event id names one event")


def type_names(registry: EventRegistry, types: Iterable[Any] | None) -> list[str] | None:
    """Type names from names or event classes (one, or a list of them); None for all."""
    if types is None:
        return None
    if isinstance(types, (str, type)):
        types = [types]
    if not isinstance(types, Iterable):
        raise InvalidInputError(
            f"types must be a type name, an event class or a list of them, got {types!r:.60}")
    names = []
    for t in types:
        if not isinstance(t, (str, type)):
            raise InvalidInputError(
                f"types must name event types (text) or event classes, got {t!r:.60}")
        names.append(registry.name_of_class(t) if isinstance(t, type) else t)
    return names


class StreamMoved(Exception):
    """Raised by a backend's ``_insert`` when a stream is no longer at the version the
    write loop checked; the loop turns it into a ``ConcurrencyError``."""


class IdsStored(Exception):
    """Raised by a backend's ``_insert_table`` when a row's event id is already stored
    (a unique index said so): ``append_batch`` then treats the batch as a retry."""
