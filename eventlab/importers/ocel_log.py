"""An OCEL 2.0 log in memory, whichever file it came from, and the checks of its values.

Each reader (``ocel_files``) turns its form into an ``OcelLog``: events in
the file's order with their time as UTC text, typed attributes and relations
to objects, and each object's type. Values are checked as they are read, and
a bad one raises ``LogImportError`` naming the file and where in it.

>>> typed("600", "integer", UTC), typed("1.5", "float", UTC), typed("true", "boolean", UTC)
(600, 1.5, True)
>>> utc_text("2022-01-09T15:00:00", zone_of("Europe/Berlin"))
'2022-01-09T14:00:00.000000Z'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from .errors import LogImportError

#: The payload fields eventlab adds to an event's own attributes.
EVENT_ID, OBJECTS = "ocel_event_id", "objects"
ABSENT = object()     # an attribute with no value: left out of the payload
_encode = msgspec.json.Encoder(order="sorted").encode


@dataclass
class Event:
    """One OCEL event, read and checked: ``time`` is UTC ISO text, ``relations``
    pairs of (object id, qualifier), ``where`` how messages name it."""

    id: str
    type: str
    time: str
    attributes: dict[str, Any]
    relations: list[tuple[str, str | None]]
    where: str


@dataclass
class OcelLog:
    """A whole log: its file's name, events in file order, and each object's type."""

    name: str
    events: list[Event]
    objects: dict[str, str]

    def type_counts(self) -> dict[str, tuple[int, int]]:
        """Objects, and events related to any of them, of each object type, by name."""
        objects: dict[str, int] = {}
        for kind in self.objects.values():
            objects[kind] = objects.get(kind, 0) + 1
        events = dict.fromkeys(objects, 0)
        for event in self.events:
            for kind in {self.objects[oid] for oid, _ in event.relations}:
                events[kind] += 1
        return {kind: (objects[kind], events[kind]) for kind in sorted(objects)}

    def describe_types(self) -> str:
        """The object types as messages list them: ``'Invoice' (3 objects, 8 events)``."""
        return ", ".join(f"{kind!r} ({_count(n, 'object')}, {_count(e, 'event')})"
                         for kind, (n, e) in self.type_counts().items()) or "none"

    def check_relations(self) -> None:
        """Refuse a relation to an object the log does not hold."""
        for event in self.events:
            for oid, _ in event.relations:
                if oid not in self.objects:
                    raise LogImportError(
                        f"{self.name}, {event.where}: a relationship to object {oid!r}, "
                        "which the log does not hold (no object has that id); nothing was "
                        "imported")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def zone_of(timezone: str | tzinfo | None) -> tzinfo:
    """The zone of times written without an offset: a ``tzinfo``, an IANA name, or UTC."""
    if timezone is None:
        return UTC
    if isinstance(timezone, tzinfo):
        return timezone
    try:
        return ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise LogImportError(
            f"timezone={timezone!r} is not a time zone; name one as the IANA database "
            "does, such as 'Europe/Berlin' or 'UTC'") from None


def utc_text(value: Any, zone: tzinfo) -> str:
    """An ISO 8601 time as UTC text with microseconds (a time with no offset is in
    ``zone``); raises ``ValueError`` saying what is wrong with it.

    >>> utc_text("2022-01-09 14:00:00+00:00", UTC)
    '2022-01-09T14:00:00.000000Z'
    """
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time (ISO 8601 text)")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"cannot read {value!r} as a time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"{value!r} is outside years 1-9999 (UTC)") from None
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def typed(value: Any, kind: str | None, zone: tzinfo) -> Any:
    """An attribute's value as its declared kind (``string``, ``integer``, ``float``,
    ``boolean``, ``time``; another or none keeps it as read), or ``ABSENT`` for no
    value; raises ``ValueError`` saying why it cannot be one."""
    if value is None:
        return ABSENT
    if kind == "string":
        return value if isinstance(value, str) else _encode(value).decode()
    if kind == "integer":
        return _integer(value)
    if kind == "float":
        return _float(value)
    if kind == "boolean":
        return _boolean(value)
    if kind == "time":
        return utc_text(value, zone)
    return _float(value) if isinstance(value, float) else value


def _integer(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, (bool, float)):
        try:
            return int(value)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"{value!r} is not an integer")


def _float(value: Any) -> Any:
    try:
        number = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise ValueError(f"{value!r} is not a number")
    if math.isnan(number):
        return ABSENT
    if math.isinf(number):
        raise ValueError(f"{value!r} is infinite, which JSON cannot hold")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def attributes_of(pairs: list[tuple[str, Any]], kinds: dict[str, str], zone: tzinfo,
                  where: str) -> dict[str, Any]:
    """An event's attributes from (name, value) pairs, typed as ``kinds`` declares them;
    a name eventlab uses itself is refused."""
    found = {}
    for name, value in pairs:
        if name in (EVENT_ID, OBJECTS):
            raise LogImportError(
                f"{where}: attribute {name!r} has the name eventlab gives "
                f"{'the event id' if name == EVENT_ID else 'the related objects'}; leave "
                "it out with attributes=[...]; nothing was imported")
        try:
            value = typed(value, kinds.get(name), zone)
        except ValueError as exc:
            raise LogImportError(f"{where}: attribute {name!r}: {exc}; nothing was "
                                 "imported") from None
        if value is not ABSENT:
            found[name] = value
    return found


def event_time(value: Any, zone: tzinfo, where: str, field: str) -> str:
    """An event's time as UTC text; ``field`` names where the file keeps it."""
    if value is None or value == "":
        raise LogImportError(f"{where}: the event has no {field} (its time); nothing was "
                             "imported")
    try:
        return utc_text(value, zone)
    except ValueError as exc:
        raise LogImportError(f"{where}: {field}: {exc}; nothing was imported") from None


def unique(seen: dict[str, str], key: str, where: str, what: str, name: str) -> None:
    """Remember that ``key`` is the id at ``where``; refuse it when it was seen before."""
    if key in seen:
        raise LogImportError(f"{name}, {where}: {what} id {key!r} is also the id of "
                             f"{seen[key]}; nothing was imported")
    seen[key] = where
