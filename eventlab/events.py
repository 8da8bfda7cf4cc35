"""Events: the type registry, JSON (de)serialization and upcasters.

Any frozen dataclass is an event. Its stored type name is the class name unless
it is registered under another one. Reading a type with no registered class
gives back a plain ``dict``.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Deposited:
...     amount: float
>>> registry = EventRegistry()
>>> registry.register(Deposited)
>>> name, data, schema = registry.encode(Deposited(10.0))
>>> name, data
('Deposited', '{"amount":10.0}')
>>> registry.decode("Deposited", data, schema)
Deposited(amount=10.0)
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

import msgspec

from .errors import EventlabError, SerializationError

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, TypeError)
ENCODE_ERRORS = (TypeError, ValueError, OverflowError, RecursionError)
json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder()


class InvalidEventError(EventlabError, TypeError):
    """Something that is not an event (a frozen dataclass) was given as one."""


def event_version(cls: type) -> int:
    """The schema version a class declares with ``__event_version__`` (default 1)."""
    return int(getattr(cls, "__event_version__", 1))


class EventRegistry:
    """Maps stored type names to event classes, and back.

    Registering a class whose name is already taken replaces the old class for
    reading: a notebook cell run again does that silently, an unrelated class of
    the same name with a warning. Instances of the old class still append.
    """

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}
        self._names: dict[type, str] = {}
        self._decoders: dict[str, tuple[Callable[[Any], Any], int]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._encoding: dict[type, tuple[str, int]] = {}  # class -> (name, version)

    def register(self, *classes: type, name: str | None = None) -> None:
        if name is not None and len(classes) != 1:
            raise ValueError("name= can only be given when registering one class")
        for cls in classes:
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
                raise InvalidEventError(f"{cls!r} is not a dataclass; events are dataclasses")
            type_name = name or cls.__name__
            old = self._classes.get(type_name)
            if old is not None and old is not cls:
                if not _same_origin(old, cls):
                    warnings.warn(
                        f"event type {type_name!r} now reads back as "
                        f"{cls.__module__}.{cls.__qualname__} instead of "
                        f"{old.__module__}.{old.__qualname__}; register one of them with "
                        "name=... to keep both", stacklevel=3)
                self._names.pop(old, None)
            self._classes[type_name] = cls
            self._names[cls] = type_name
            self._decoders.pop(type_name, None)
            self._encoding.clear()

    def upcaster(self, type_name: str, from_version: int = 1) -> Callable[[Upcaster], Upcaster]:
        """Decorator: ``fn(data) -> data`` turns version ``from_version`` into the next."""

        def add(fn: Upcaster) -> Upcaster:
            self._upcasters[(type_name, from_version)] = fn
            return fn

        return add

    def class_for(self, type_name: str) -> type | None:
        return self._classes.get(type_name)

    def name_of(self, event: Any) -> str:
        cls = type(event)
        name = self._names.get(cls)
        if name is None:
            current = self._classes.get(cls.__name__)
            if current is not None and _same_origin(current, cls):
                return cls.__name__  # an instance made before its cell was run again
            self.register(cls)
            name = self._names[cls]
        return name

    def name_of_class(self, cls: type) -> str:
        return self._names.get(cls, cls.__name__)

    @property
    def names(self) -> list[str]:
        return sorted(self._classes)

    # -- encoding -------------------------------------------------------------------

    def encode(self, event: Any) -> tuple[str, str, int]:
        """Return ``(type_name, json_text, schema_version)`` for a dataclass event."""
        name, version = self.encoding(event)
        return name, encode_json(event, f"event {name!r}"), version

    def encoding(self, event: Any) -> tuple[str, int]:
        """``(type_name, schema_version)`` an event is stored under; checks it is an event."""
        cls = type(event)
        known = self._encoding.get(cls)
        if known is None:
            if not dataclasses.is_dataclass(cls) or isinstance(event, type):
                raise InvalidEventError(
                    f"{event!r} is a {cls.__name__}, not an event: events are (frozen) "
                    "dataclass instances; wrap a plain dict as NewEvent(data, type='Name')")
            known = self._encoding[cls] = (self.name_of(event), event_version(cls))
        return known

    def decode(self, type_name: str, text: str | bytes, schema_version: int = 1) -> Any:
        """Turn stored JSON back into the registered class (or a dict if none)."""
        known = self._decoders.get(type_name)
        if known is None:
            known = self._make_decoder(type_name)
        decoder, current = known
        if schema_version < current:
            return self._upcast(type_name, text, schema_version, current)
        try:
            return decoder(text)
        except DECODE_ERRORS as exc:
            cls = self._classes.get(type_name)
            raise SerializationError(
                f"stored event of type {type_name!r} does not decode into "
                f"{cls.__name__ if cls else 'a dict'}: {exc}; if its shape changed, bump "
                "__event_version__ and register an upcaster") from exc

    def decoder_for(self, type_name: str, schema_version: int = 1) -> Callable[[Any], Any]:
        """The bare decoding function for one stored type and schema version.

        For hot loops: it may raise one of ``DECODE_ERRORS``; call ``decode`` on
        that row then, for an error that names the type.
        """
        decoder, current = self._decoders.get(type_name) or self._make_decoder(type_name)
        if schema_version >= current:
            return decoder
        return lambda text: self.decode(type_name, text, schema_version)

    def _upcast(self, type_name: str, text: str | bytes, stored: int, current: int) -> Any:
        cls = self._classes[type_name]
        data = _json_decoder.decode(text)
        for v in range(stored, current):
            step = self._upcasters.get((type_name, v))
            if step is None:
                raise SerializationError(
                    f"event type {type_name!r} is stored at version {v} but "
                    f"{cls.__name__} is version {current} and no upcaster "
                    f"from version {v} is registered (el.upcaster({type_name!r}, {v}))")
            data = step(data)
        return self._from_dict(type_name, cls, data)

    def _make_decoder(self, type_name: str) -> tuple[Callable[[Any], Any], int]:
        cls = self._classes.get(type_name)
        if cls is None:
            known = (_json_decoder.decode, 1)
        else:
            try:
                decoder = msgspec.json.Decoder(cls).decode
            except TypeError:  # a field type msgspec cannot build: go through a dict
                def decoder(text: Any, cls: type = cls) -> Any:
                    return cls(**_json_decoder.decode(text))
            known = (decoder, event_version(cls))
        self._decoders[type_name] = known
        return known

    @staticmethod
    def _from_dict(type_name: str, cls: type, data: dict[str, Any]) -> Any:
        try:
            return msgspec.convert(data, cls)
        except (msgspec.ValidationError, TypeError) as exc:
            raise SerializationError(
                f"upcast event of type {type_name!r} does not fit {cls.__name__}: {exc}"
            ) from exc


def _same_origin(a: type, b: type) -> bool:
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def dumps(value: Any, what: str = "value") -> str:
    """JSON text for snapshots and projection state; names ``what`` on failure."""
    try:
        return json_encoder.encode(value).decode()
    except ENCODE_ERRORS as exc:
        raise encode_error(what, exc) from exc


def encode_json(value: Any, what: str = "value") -> str:
    """JSON text for what goes into the log (payloads, metadata): like ``dumps``, but a
    NaN or infinity anywhere in ``value`` is refused instead of being written as null.

    >>> encode_json({"amount": 1.5})
    '{"amount":1.5}'
    >>> encode_json({"rates": [1.0, float("nan")]}, "metadata")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    eventlab.errors.SerializationError: metadata ... field 'rates[1]' is nan; JSON has no NaN...
    """
    try:
        text = json_encoder.encode(value).decode()
    except ENCODE_ERRORS as exc:
        raise encode_error(what, exc) from exc
    if "null" in text:  # msgspec writes NaN and infinity as null: only then look closer
        check_finite(value, what)
    return text


def encode_error(what: str, exc: BaseException) -> SerializationError:
    if isinstance(exc, RecursionError):
        return SerializationError(f"{what} cannot be stored as JSON: it is nested too deeply")
    return SerializationError(f"{what} cannot be stored as JSON: {exc}")


def check_finite(value: Any, what: str) -> None:
    """Raise ``SerializationError`` naming the first NaN or infinity inside ``value``."""
    found = non_finite(value)
    if found is not None:
        path, number = found
        raise SerializationError(
            f"{what} cannot be stored as JSON: field {path!r} is {number!r}; JSON has no "
            "NaN or infinity (it would read back as null): store None or a finite number")


def non_finite(value: Any) -> tuple[str, float] | None:
    """The path (``a.b[2]``) and value of the first non-finite float inside ``value``.

    >>> non_finite({"a": {"b": [0.0, float("inf")]}})
    ('a.b[1]', inf)
    >>> non_finite([1.0, 2.0]) is None
    True
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:  # depth first, in field order; no recursion, whatever the nesting
        path, item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return path or "value", item
            continue
        children: list[tuple[str, Any]]
        if isinstance(item, dict):
            children = [(_child(path, key), v) for key, v in item.items()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            children = [(f"{path}[{i}]", v) for i, v in enumerate(item)]
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            children = [(_child(path, f.name), getattr(item, f.name))
                        for f in dataclasses.fields(item)]
        else:
            continue
        stack.extend(reversed(children))
    return None


def _child(path: str, key: Any) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def loads(text: str | bytes) -> Any:
    return _json_decoder.decode(text)


def to_builtins(value: Any) -> Any:
    """Dataclasses, UUIDs and datetimes as plain JSON-able Python values."""
    return msgspec.to_builtins(value)


#: The process-wide registry used by ``el.register`` and by stores by default.
REGISTRY = EventRegistry()


def register(*classes: type, name: str | None = None) -> None:
    """Register event classes so stores decode their stored type names into them.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class NewsletterJoined:
    ...     email: str
    >>> register(NewsletterJoined)
    """
    REGISTRY.register(*classes, name=name)


def upcaster(type_name: str, from_version: int = 1) -> Callable[[Upcaster], Upcaster]:
    """Register ``fn(old_dict) -> new_dict`` lifting ``type_name`` from ``from_version``.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Renamed:
    ...     full_name: str
    ...     __event_version__ = 2
    >>> register(Renamed)
    >>> @upcaster("Renamed", from_version=1)
    ... def _(old):
    ...     return {"full_name": old["name"]}
    >>> REGISTRY.decode("Renamed", '{"name": "Ada"}', 1)
    Renamed(full_name='Ada')
    """
    return REGISTRY.upcaster(type_name, from_version)
