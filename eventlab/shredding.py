"""Crypto-shredding: encrypt chosen fields with a key per subject, forget a subject by
deleting its key.

An event log is append-only, yet a person may ask to be forgotten. With
``el.encrypt_fields`` the named fields of the named event types are encrypted
(AES-GCM) as they are appended, each with the key of the event's *subject*
(a customer, say: the stream id, or a field of the event). Every read path
(``read_stream``, ``read_all``, ``load_events``, repositories, projectors,
subscriptions, time travel) decrypts them; the stored rows, and with them
``to_df``, ``sql`` and exports, hold only ciphertext. ``forget(subject)``
deletes the subject's keys: its encrypted fields then read as ``None``, for
good, while its events keep their place, type, time and other fields, so
aggregates and projections still fold them and analytics still count them.

The keys live in the store's own database (``eventlab.store.keys``); a
projection's state, a snapshot or a notebook variable that holds a decrypted
value is a copy: rebuild projections after a forget.

>>> import eventlab as el
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class SignedUp:
...     name: str
...     plan: str
>>> store = el.InMemoryEventStore()
>>> crypto = el.encrypt_fields(store, {SignedUp: ["name"]})   # subject: the stream id
>>> _ = store.append("customer-1", [SignedUp("Ada Lovelace", "pro")])
>>> next(store.read_all()).data
SignedUp(name='Ada Lovelace', plan='pro')
>>> store.to_df()["name"][0].startswith("encrypted:")
True
>>> crypto.forget("customer-1")
1
>>> next(store.read_all()).data
SignedUp(name=None, plan='pro')
"""

from __future__ import annotations

import binascii
import contextlib
import dataclasses
import functools
import logging
import os
import typing
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from .errors import InvalidInputError, SerializationError
from .events import EventRegistry, encode_json, event_version, loads
from .store.base import EventStore
from .store.keys import KeyTable, key_table
from .store.rows import Pending, check_text

log = logging.getLogger("eventlab.shredding")

#: How an encrypted value starts: ``encrypted:<key id>:<nonce and ciphertext, base64>``.
PREFIX = "encrypted:"
_NONCE = 12
_TAG = 16
_FETCH_ALL_AFTER = 16   # reads that met this many keys load the rest at once
_HEX = frozenset("0123456789abcdef")


@dataclasses.dataclass(frozen=True)
class _Rule:
    fields: tuple[str, ...]
    subject: str | None        # the field naming the subject; None: the stream id


def encrypt_fields(store: EventStore, fields: Mapping[Any, Any], *,
                   subject: str | None = None) -> FieldEncryption:
    """Encrypt ``fields`` (``{EventClass or "TypeName": ["field", ...]}``) of ``store``'s
    events with a key per subject; return the store's ``FieldEncryption``.

    ``subject=None`` takes the stream id as the subject; ``subject="customer_id"``
    takes it from that field of each event (text or an integer, never encrypted).
    Call it again to encrypt more types; declare it on every store object (in
    every process) that appends or reads those events, as you register classes.

    >>> import eventlab as el
    >>> store = el.InMemoryEventStore()
    >>> crypto = el.encrypt_fields(store, {"CardCharged": ["card"]}, subject="customer")
    >>> _ = store.append("payment-7", [el.NewEvent({"customer": 42, "card": "4111 1111"},
    ...                                            type="CardCharged")])
    >>> crypto.subjects(), crypto.forget(42), next(store.read_all()).data
    (['42'], 1, {'customer': 42, 'card': None})
    """
    if not isinstance(store, EventStore):
        raise InvalidInputError(f"encrypt_fields needs an event store, got {store!r:.60}")
    encryption = store.sealer
    if not isinstance(encryption, FieldEncryption):
        encryption = FieldEncryption(store)
    encryption.add(fields, subject)     # checked before the store uses it
    store.sealer, store.registry = encryption, encryption.registry
    return encryption


class FieldEncryption:
    """The fields one store encrypts, and its keys: made by ``el.encrypt_fields``."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.keys: KeyTable = key_table(store)
        self.registry = OpeningRegistry(store.registry, self)
        self._rules: dict[str, _Rule] = {}
        self._taken: tuple[int, dict[str, tuple[str, Any]]] = (-1, {})  # keys writers took

    def encrypts(self, type_name: str) -> bool:
        """True when some fields of that stored type are encrypted."""
        return type_name in self._rules

    @property
    def fields(self) -> dict[str, tuple[str, ...]]:
        """The encrypted fields of each event type, by stored type name."""
        return {name: rule.fields for name, rule in self._rules.items()}

    def forget(self, subject: str | int) -> int:
        """Delete the subject's keys for good; return how many there were (0: none).

        Its encrypted fields read as ``None`` from now on, on every read path; new
        events about it get a new key. When subjects are stream ids, the
        snapshots of that stream go too.
        """
        subject = _subject_text(subject, "the subject to forget")
        streams = [subject] if any(r.subject is None for r in self._rules.values()) else []
        return self.keys.forget(subject, streams)

    def subjects(self) -> list[str]:
        """Every subject that has a key (has not been forgotten)."""
        return self.keys.subjects()

    def __repr__(self) -> str:
        return f"FieldEncryption({self.store!r}, fields={self.fields})"

    # -- declaring ------------------------------------------------------------------------

    def add(self, fields: Mapping[Any, Any], subject: str | None) -> None:
        """Check and add rules; nothing is added unless all of them are good."""
        if not isinstance(fields, Mapping) or not fields:
            raise InvalidInputError(
                "fields must map event types to the fields to encrypt, e.g. "
                f"{{Registered: ['name', 'email']}}; got {fields!r:.60}")
        if subject is not None and (not isinstance(subject, str) or not subject):
            raise InvalidInputError(
                f"subject must be None (the stream id) or the name of a field, got {subject!r}")
        rules = {}
        for event_type, names in fields.items():
            type_name, cls = self._event_type(event_type)
            rule = _Rule(_field_names(type_name, names), subject)
            known = [f.name for f in dataclasses.fields(cls)] if cls is not None else None
            for name in rule.fields + ((subject,) if subject else ()):
                if known is not None and name not in known:
                    raise InvalidInputError(
                        f"{cls.__name__} has no field {name!r}; its fields are "
                        f"{', '.join(known)}")
            if subject in rule.fields:
                raise InvalidInputError(
                    f"the subject field {subject!r} of {type_name} cannot be encrypted: it "
                    "names whose key opens the other fields")
            old = self._rules.get(type_name)
            if old is not None and old != rule:
                raise InvalidInputError(
                    f"{type_name} already has fields {list(old.fields)} encrypted "
                    f"(subject {old.subject or 'the stream id'}); one rule per event type")
            rules[type_name] = rule
        self._rules.update(rules)

    def _event_type(self, event_type: Any) -> tuple[str, type | None]:
        registry = self.registry.inner
        if isinstance(event_type, type):
            if not dataclasses.is_dataclass(event_type):
                raise InvalidInputError(
                    f"{event_type.__name__} is not an event class (a dataclass)")
            name = registry.name_of_class(event_type)
            if registry.class_for(name) is None:
                registry.register(event_type)   # so that reads decode into it
            return name, event_type
        if not isinstance(event_type, str) or not event_type:
            raise InvalidInputError(
                f"an event type is an event class or its type name, got {event_type!r:.60}")
        return event_type, registry.class_for(event_type)

    # -- sealing: what the store calls on the way in --------------------------------------

    @contextlib.contextmanager
    def sealing(self, groups: list[tuple[str, Any, list[Pending]]]) -> Iterator[list[Any]]:
        """The ``(stream_id, expected, events)`` groups of an append, encrypted; keys made
        for them are confirmed when the block ends, discarded when it raises."""
        items = [(f"event #{n} of stream {sid!r}", sid, p.type, p.data)
                 for sid, _, batch in groups for n, p in enumerate(batch, start=1)
                 if p.type in self._rules]
        with self._sealed(items) as texts:
            if not any(texts):
                yield groups
                return
            found = iter(texts)
            sealed = []
            for sid, expected, batch in groups:
                events = []
                for p in batch:
                    text = next(found) if p.type in self._rules else None
                    events.append(p if text is None else Pending(
                        p.type, text, p.metadata, p.event_id, p.recorded_at, p.schema))
                sealed.append((sid, expected, events))
            yield sealed

    @contextlib.contextmanager
    def sealing_table(self, table: Any) -> Iterator[Any]:
        """An ``append_batch`` table with its encrypted fields sealed, as ``sealing``."""
        import pyarrow as pa

        types = table.column("type").to_pylist()
        rows = [i for i, t in enumerate(types) if t in self._rules]
        if not rows:
            yield table
            return
        streams, datas = (table.column(c).to_pylist() for c in ("stream_id", "data"))
        items = [(f"row {i + 1} (stream {streams[i]!r})", streams[i], types[i], datas[i])
                 for i in rows]
        with self._sealed(items) as texts:
            for i, text in zip(rows, texts, strict=True):
                if text is not None:
                    datas[i] = text
            yield table.set_column(table.column_names.index("data"), "data",
                                   pa.array(datas, pa.string()))

    @contextlib.contextmanager
    def _sealed(self, items: list[tuple[str, str, str, str]]) -> Iterator[list[str | None]]:
        """``(where, stream_id, type, data)`` items as new JSON text (``None``: unchanged).

        Every item is checked before a key is made, so bad input writes nothing."""
        plans = [self._plan(*item) for item in items]
        keys, made = self._keys_for(list(dict.fromkeys(s for _, s, todo in plans if todo)))
        try:
            yield [self._seal(plan, keys, item[2]) for plan, item in zip(plans, items,
                                                                           strict=True)]
        except BaseException:
            if made:
                self.keys.discard(made)
            raise
        if made:
            try:
                self.keys.confirm(made)
            except Exception as exc:   # the append is durable; the key still opens it
                log.warning("keys %s stay unconfirmed: %s", made, exc)

    def _plan(self, where: str, stream_id: str, type_name: str,
              text: str) -> tuple[dict[str, Any], str, list[str]]:
        """``(payload, subject, fields still to encrypt)`` of one event, or a clear error."""
        rule = self._rules[type_name]
        data = loads(text)
        if not isinstance(data, dict):
            raise InvalidInputError(
                f"{where} ({type_name}) is not a JSON object, so it has no fields to encrypt")
        subject = stream_id
        if rule.subject is not None:
            if rule.subject not in data:
                raise InvalidInputError(
                    f"{where} ({type_name}) has no field {rule.subject!r}: it names the "
                    f"subject whose key encrypts {list(rule.fields)}")
            subject = _subject_text(data[rule.subject],
                                    f"{where} ({type_name}): field {rule.subject!r}")
        todo = []
        for name in rule.fields:
            if name not in data:
                raise InvalidInputError(
                    f"{where} ({type_name}) has no field {name!r} to encrypt; its fields are "
                    f"{', '.join(map(str, data))}")
            if _parse(data[name]) is None:   # a value copied encrypted stays as it is
                todo.append(name)
        return data, subject, todo

    def _keys_for(self, subjects: list[str]) -> tuple[dict[str, tuple[str, Any]], list[str]]:
        """Each subject's key ``(key_id, cipher)``, made (unconfirmed) where missing."""
        if not subjects:
            return {}, []
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        generation, known = self._taken
        if not self.keys.local or generation != self.store.generation:
            known = {}   # another process may have forgotten a subject: ask the table
            self._taken = (self.store.generation, known)
        keys = {s: known[s] for s in subjects if s in known}
        asked = [s for s in subjects if s not in keys]
        found = self.keys.current(asked) if asked else {}
        known.update({s: (key_id, AESGCM(secret)) for s, (key_id, secret) in found.items()})
        keys.update({s: known[s] for s in found})
        new = [(uuid.uuid4().hex, s, AESGCM.generate_key(bit_length=256))
               for s in asked if s not in found]
        if new:
            self.keys.create(new)
            keys.update({s: (key_id, AESGCM(secret)) for key_id, s, secret in new})
        return keys, [key_id for key_id, _, _ in new]

    @staticmethod
    def _seal(plan: tuple[dict[str, Any], str, list[str]],
              keys: dict[str, tuple[str, Any]], type_name: str) -> str | None:
        data, subject, todo = plan
        if not todo:
            return None
        key_id, cipher = keys[subject]
        for name in todo:
            nonce = os.urandom(_NONCE)
            sealed = cipher.encrypt(nonce, encode_json(data[name]).encode(),
                                    _associated(type_name, name))
            text = binascii.b2a_base64(nonce + sealed, newline=False).decode()
            data[name] = f"{PREFIX}{key_id}:{text}"
        return encode_json(data)


class OpeningRegistry:
    """A store's registry while some of its fields are encrypted.

    Every read path decodes through ``decoder_for`` or ``decode``, so encrypted
    fields are opened here, once, before upcasters and event classes see them;
    a field whose key is gone becomes ``None``. Everything else is the wrapped
    registry's (registering a class here registers it there).
    """

    def __init__(self, inner: EventRegistry, encryption: FieldEncryption) -> None:
        self.inner = inner
        self.encryption = encryption
        self.keys = _ReadKeys(encryption)

    def __getattr__(self, name: str) -> Any:
        if name in ("inner", "encryption"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def decoder_for(self, type_name: str, schema_version: int = 1) -> Any:
        if not self.encryption.encrypts(type_name):
            return self.inner.decoder_for(type_name, schema_version)

        def decode(text: Any) -> Any:
            return self._open(type_name, text, schema_version)

        return decode

    def decode(self, type_name: str, text: str | bytes, schema_version: int = 1) -> Any:
        if not self.encryption.encrypts(type_name):
            return self.inner.decode(type_name, text, schema_version)
        return self._open(type_name, text, schema_version)

    def _open(self, type_name: str, text: str | bytes, schema_version: int) -> Any:
        keys = self.keys
        data = loads(text)
        if not isinstance(data, dict):
            return self.inner.decode(type_name, text, schema_version)
        forgotten, opened = [], False
        for name, value in data.items():
            parsed = _parse(value)
            if parsed is None:
                continue
            key_id, blob = parsed
            cipher = keys.cipher(key_id)
            data[name] = None if cipher is None else _decrypt(cipher, blob, type_name, name)
            if cipher is None:
                forgotten.append(name)
            opened = True
        if not opened:   # written before its fields were encrypted
            return self.inner.decode(type_name, text, schema_version)
        try:
            return self.inner.decode(type_name, encode_json(data), schema_version)
        except SerializationError as exc:
            if not forgotten:
                raise
            return _with_placeholders(self.inner, type_name, schema_version, data,
                                      forgotten, exc)


class _ReadKeys:
    """The keys reads have met, each fetched once (after a few, all at once), until
    the log's generation moves: a forget moves it, here or, once this process reads
    the log's head or a stream's version, in another process."""

    def __init__(self, encryption: FieldEncryption) -> None:
        self.store, self.table = encryption.store, encryption.keys
        self.generation = -1
        self.ciphers: dict[str, Any] = {}     # key id -> cipher, or None: no such key
        self.fetched_all = False

    def cipher(self, key_id: str) -> Any:
        if self.store.generation != self.generation:
            self.generation = self.store.generation
            self.ciphers, self.fetched_all = {}, False
        ciphers = self.ciphers
        if key_id in ciphers:
            return ciphers[key_id]
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(ciphers) >= _FETCH_ALL_AFTER and not self.fetched_all:
            self.fetched_all = True
            ciphers.update({k: AESGCM(s) for k, s in self.table.secrets(None).items()})
        if key_id not in ciphers:
            secret = self.table.secrets([key_id]).get(key_id)
            ciphers[key_id] = None if secret is None else AESGCM(secret)
        return ciphers[key_id]


def _with_placeholders(registry: EventRegistry, type_name: str, schema_version: int,
                       data: dict[str, Any], forgotten: list[str],
                       failed: SerializationError) -> Any:
    """The event with ``None`` in its forgotten fields, whatever type they declare.

    The other fields are checked and converted as usual; the instance is made
    without calling ``__init__``, which would refuse ``None`` for a ``str``."""
    cls = registry.class_for(type_name)
    if cls is None or schema_version < event_version(cls):
        raise SerializationError(
            f"{failed}; its fields {forgotten} were forgotten and read as None: let the "
            "upcasters and the class accept None there") from failed
    hints = _hints(cls)
    event = object.__new__(cls)
    for f in dataclasses.fields(cls):
        if f.name in forgotten:
            value = None
        elif f.name in data:
            try:
                value = msgspec.convert(data[f.name], hints.get(f.name, Any))
            except (msgspec.ValidationError, TypeError) as exc:
                raise SerializationError(
                    f"field {f.name!r} of a {type_name} event does not fit "
                    f"{cls.__name__}: {exc}") from exc
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            raise failed
        object.__setattr__(event, f.name, value)
    return event


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:   # an annotation that does not resolve here: take values as stored
        return {}


def _parse(value: Any) -> tuple[str, bytes] | None:
    """``(key_id, nonce and ciphertext)`` of an encrypted value, or None for any other."""
    if type(value) is not str or not value.startswith(PREFIX):
        return None
    key_id, _, blob = value[len(PREFIX):].partition(":")
    if len(key_id) != 32 or not _HEX.issuperset(key_id):
        return None
    try:
        raw = binascii.a2b_base64(blob, strict_mode=True)
    except (ValueError, binascii.Error):
        return None
    return (key_id, raw) if len(raw) >= _NONCE + _TAG else None


def _decrypt(cipher: Any, blob: bytes, type_name: str, name: str) -> Any:
    try:
        plain = cipher.decrypt(blob[:_NONCE], blob[_NONCE:], _associated(type_name, name))
    except Exception as exc:
        from cryptography.exceptions import InvalidTag

        if not isinstance(exc, InvalidTag):
            raise
        raise SerializationError(
            f"field {name!r} of a {type_name} event does not decrypt with its subject's key: "
            "the stored value was altered, or moved from another field or event type"
        ) from None
    return loads(plain)


@functools.lru_cache(maxsize=1024)
def _associated(type_name: str, name: str) -> bytes:
    """What a value is bound to besides its key: its event type and field."""
    return f"{type_name}\x00{name}".encode()


def _field_names(type_name: str, names: Any) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not names:
        raise InvalidInputError(
            f"the fields to encrypt of {type_name} must be a field name or a list of them, "
            f"got {names!r:.60}")
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidInputError(
                f"a field to encrypt of {type_name} must be a field name (text), got "
                f"{type(name).__name__} {name!r:.40}")
    if len(set(names)) != len(names):
        raise InvalidInputError(f"the fields to encrypt of {type_name} repeat a name: {names}")
    return tuple(names)


def _subject_text(value: Any, what: str) -> str:
    """A subject's id as text: text (non-empty) or an integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise InvalidInputError(
            f"{what} is {value!r:.60}; a subject is named by non-empty text or an integer")
    return check_text(value, "subject")
