"""The event-store contract: what every store does, with one write loop's checks.

A store keeps streams of events under optimistic concurrency. Subclasses
supply storage (``_write``, ``_read_stream_rows``, ...); this class turns
events into rows and rows back into ``RecordedEvent``, and checks inputs.

>>> from eventlab import InMemoryEventStore, NO_STREAM
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Noted:
...     text: str
>>> store = InMemoryEventStore()
>>> store.append("note-1", [Noted("hi")], expected_version=NO_STREAM)
1
>>> [e.data for e in store.read_stream("note-1")]
[Noted(text='hi')]
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from ..envelope import (
    ANY,
    NewEvent,
    RecordedEvent,
)
from ..errors import (
    ConcurrencyError,
    EventlabError,
    InvalidInputError,
    SerializationError,
    StoreClosedError,
)
from ..events import (
    ENCODE_ERRORS,
    REGISTRY,
    EventRegistry,
    InvalidEventError,
    check_finite,
    encode_error,
    encode_json,
    json_encoder,
)
from .records import Records
from .rows import (
    Expected,
    IdsStored,
    Pending,
    StoredRow,
    StreamMoved,
    check_expected,
    check_metadata,
    check_position,
    check_stream_id,
    check_text,
    check_unique_ids,
    event_id_text,
    expectation_met,
    recorded_events,
    type_names,
    utc,
)

log = logging.getLogger("eventlab.store")
_ANY_RETRIES = 50   # appends expecting ANY that lose a race to another process try again


class _MovedUnderAny(Exception):
    """A stream moved under an append that expected ``ANY``: write it again."""


class EventStore(Records, ABC):
    """The contract every store keeps; a backend is rows in, rows out, atomically.

    This class is the write loop (``append``, ``append_batch``: checks,
    expected versions, idempotent ids, listeners after commit), the decoding of
    rows, and the argument checks. A backend supplies the hooks at the end:
    ``_writing``, ``_versions``, ``_find_ids``, ``_insert``, the reads (rows and
    Arrow), ``_delete``, and the snapshot and checkpoint hooks of ``Records``.

    The rules every backend keeps (the contract suite checks each):

    1. a reader that reads ``read_all(from_position=p)`` again and again never
       skips an event, even while other writers commit: a position is readable
       only once every position below it that will ever exist is;
    2. a delete is seen by every cache of the log (version caches, mirrors,
       repositories keyed by ``generation``), in every process that holds one;
    3. ``close()`` releases the database at once, and a closed store refuses
       both reads and writes.

    And what it keeps for every value, whatever holds the rows:

    * a raising ``append`` wrote nothing; a returning one is durable, and what
      listeners do afterwards can no longer make it raise;
    * every value it takes can be read back by every read path: NaN and
      infinity, times outside years 1-9999, text that is not UTF-8 and event
      ids already used elsewhere in the log are refused at append;
    * ``close()`` releases the store at once; after it, reads (iterators
      already handed out included) and writes raise ``StoreClosedError``.
    """

    registry: EventRegistry
    _closed: bool = False
    #: Encrypts fields on their way into the log (``el.encrypt_fields`` sets it): its
    #: ``sealing(groups)`` and ``sealing_table(table)`` blocks give what to write instead,
    #: and undo what they prepared (keys) when the write raises. ``None``: as given.
    sealer: Any = None

    def __init__(self, registry: EventRegistry | None = None) -> None:
        self.registry = registry or REGISTRY
        self._closed = False
        self._listeners: list[Callable[[int], None]] = []
        self._listeners_lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"{self!r} is closed")

    # -- writing --------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        events: Iterable[Any],
        expected_version: Expected = ANY,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Append events to a stream atomically; return the stream's new version.

        A mismatch with ``expected_version`` raises ``ConcurrencyError`` and
        writes nothing; so does any event that cannot be serialized.
        """
        self._check_open()
        check_stream_id(stream_id)
        expected = check_expected(expected_version)
        batch = self.encode(events, metadata)
        return self._write([(stream_id, expected, batch)])[0]

    def append_many(
        self,
        appends: Iterable[tuple[str, Iterable[Any], Expected]],
        metadata: dict[str, Any] | None = None,
    ) -> list[int]:
        """Append to several streams in one transaction: ``(stream_id, events,
        expected_version)`` each, every expectation checked; return each new version.

        All or nothing: one ``ConcurrencyError`` (or bad event) and no stream
        is written. A stream may appear more than once; later appends see the
        earlier ones.

        >>> from eventlab import InMemoryEventStore, NewEvent, NO_STREAM
        >>> store = InMemoryEventStore()
        >>> store.append_many([("a", [NewEvent({}, type="T")], NO_STREAM),
        ...                    ("b", [NewEvent({}, type="T")] * 2, NO_STREAM)])
        [1, 2]
        """
        self._check_open()
        if isinstance(appends, (tuple, str, bytes)) or not isinstance(appends, Iterable):
            raise InvalidInputError(
                "appends must be a list of (stream_id, events, expected_version)")
        groups: list[tuple[str, Expected, list[Pending]]] = []
        for number, append in enumerate(appends, start=1):
            if not isinstance(append, tuple) or len(append) != 3:
                raise InvalidInputError(
                    f"append #{number} is {append!r}; give (stream_id, events, expected_version)")
            stream_id, events, expected_version = append
            check_stream_id(stream_id)
            try:
                batch = self.encode(events, metadata)
            except EventlabError as exc:
                raise type(exc)(f"append #{number} (stream {stream_id!r}): {exc}") from exc
            groups.append((stream_id, check_expected(expected_version), batch))
        check_unique_ids([p.event_id for _, _, batch in groups for p in batch], "event #{}")
        return self._write(groups) if groups else []

    def encode(self, events: Iterable[Any],
               metadata: dict[str, Any] | None = None) -> list[Pending]:
        """Serialize events (bare dataclasses or ``NewEvent``) into rows to write."""
        if isinstance(events, (NewEvent, str, bytes, dict)) or not isinstance(events, Iterable):
            raise InvalidInputError(
                "events must be a list of events, e.g. store.append(id, [event])")
        now = datetime.now(UTC)
        shared = dict(check_metadata(metadata))
        shared_text = encode_json(shared, "metadata") if shared else "{}"
        encoding, known, to_json = self.registry.encoding, {}, json_encoder.encode
        batch: list[Pending] = []
        index, event = 0, None
        try:
            # the write hot path: one dict lookup, one msgspec call and one tuple per event
            for index, event in enumerate(events):  # noqa: B007  (index names a failure)
                cls = type(event)
                if cls is NewEvent:
                    batch.append(self._encode_new_event(event, shared, now))
                    continue
                stored_as = known.get(cls) or known.setdefault(cls, encoding(event))
                text = to_json(event).decode()
                if "null" in text:   # NaN and infinity are written as null: look closer
                    check_finite(event, f"event {stored_as[0]!r}")
                batch.append(tuple.__new__(Pending, (stored_as[0], text, shared_text, None,
                                                     now, stored_as[1])))
        except EventlabError as exc:  # first: some are TypeErrors too
            raise type(exc)(f"event #{index + 1} of the batch: {exc}") from exc
        except ENCODE_ERRORS as exc:
            name = self.registry.name_of_class(type(event))
            raise SerializationError(
                f"event #{index + 1} of the batch: "
                f"{encode_error(f'event {name!r}', exc)}") from exc
        if len(batch) > 1:
            check_unique_ids([p.event_id for p in batch], "event #{}")
        return batch

    def _encode_new_event(self, event: NewEvent, shared: dict[str, Any],
                          now: datetime) -> Pending:
        own = check_metadata(event.metadata, "NewEvent metadata")
        meta = {**shared, **own} if own else shared
        data, type_name = event.data, event.type
        if type_name is not None:
            if not isinstance(type_name, str) or not type_name:
                raise InvalidInputError(f"a type name must be non-empty text, got {type_name!r}")
            check_text(type_name, "type name")
        if isinstance(data, dict):
            if not type_name:
                raise InvalidEventError(
                    "a dict event needs a type name: NewEvent(data, type='Name')")
            text, schema = encode_json(data, f"event {type_name!r}"), 1
        else:
            name, text, schema = self.registry.encode(data)
            type_name = type_name or name
        return Pending(type_name, text, encode_json(meta, "metadata") if meta else "{}",
                       event_id_text(event.event_id),
                       utc(event.recorded_at) if event.recorded_at is not None else now, schema)

    def append_batch(self, rows: Any) -> int:
        """Append many streams at once from an Arrow table or DataFrame (``ANY`` each).

        Columns: ``stream_id``, ``type``, ``data`` (JSON text or dict), and optionally
        ``metadata``, ``event_id``, ``recorded_at``, ``schema_version``. Rows of one
        stream keep their order. A ``version`` column pins each row's version: a
        stream not at the version before its first row raises ``ConcurrencyError``.
        All or nothing; returns how many events were written.
        """
        from .batches import batch_table, groups_of  # pandas and pyarrow only when used

        self._check_open()
        table = batch_table(rows)
        if table.num_rows == 0:
            return 0
        pinned = "version" in table.column_names
        with (contextlib.nullcontext(table) if self.sealer is None
              else self.sealer.sealing_table(table)) as table:
            with self._writing():
                self._check_open()
                head = self._insert_new(table, pinned)
            if head is None:   # rows stored before: the per-event path treats them as retries
                if pinned:
                    raise InvalidInputError(
                        "a batch with versions must not hold events already stored "
                        "(el.copy leaves those out)")
                self._write([(sid, ANY, batch) for sid, batch in groups_of(table)])
            else:
                self._notify(head)
        return table.num_rows

    def _insert_new(self, table: Any, pinned: bool) -> int | None:
        """Insert a batch none of whose event ids is stored yet and return the head, or
        return ``None`` when some are (a retry). Rows that expect ``ANY`` are tried
        again when another process moved one of their streams meanwhile."""
        ids = table.column("event_id").drop_null().to_pylist()
        for attempt in range(_ANY_RETRIES):
            # a backend with a unique index on ids finds stored ones as it inserts
            if ids and not self._insert_table_refuses_stored_ids and self._find_ids(ids):
                return None
            if pinned:
                self._check_pinned(table)
            try:
                return self._insert_table(table)
            except IdsStored:
                return None
            except StreamMoved as moved:
                if pinned or attempt == _ANY_RETRIES - 1:
                    stream_id = moved.args[0]
                    raise ConcurrencyError(stream_id, ANY, self._versions(
                        [stream_id])[stream_id]) from moved
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _check_pinned(self, table: Any) -> None:
        """Each stream's rows must continue it: versions version+1, version+2, ..."""
        streams, pinned = (table.column(c).to_pylist() for c in ("stream_id", "version"))
        versions = self._versions(list(dict.fromkeys(streams)))
        for stream_id, version in zip(streams, pinned, strict=True):
            if version != versions[stream_id] + 1:
                raise ConcurrencyError(stream_id, version - 1, versions[stream_id])
            versions[stream_id] = version

    def _write(self, groups: list[tuple[str, Expected, list[Pending]]]) -> list[int]:
        """The one write loop: check every group against its stream, then insert them
        all at once through the backend's ``_insert``; return each stream's new version.

        A batch whose event ids are all stored in place is a retry and writes
        nothing; a stream that moves between the check and the insert (another
        process got there first) is a ``ConcurrencyError``, unless every stream
        that moved expected ``ANY``: then the loop runs again.
        """
        with (contextlib.nullcontext(groups) if self.sealer is None
              else self.sealer.sealing(groups)) as groups:
            for attempt in range(_ANY_RETRIES):
                try:
                    return self._write_once(groups, retry_any=attempt < _ANY_RETRIES - 1)
                except _MovedUnderAny:
                    continue
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _write_once(self, groups: list[tuple[str, Expected, list[Pending]]],
                    retry_any: bool) -> list[int]:
        ids = [p.event_id for _, _, batch in groups for p in batch if p.event_id is not None]
        with self._writing():
            self._check_open()
            # A backend whose insert checks the versions itself needs no read first
            # for a stream the caller names an exact version of: one round trip.
            presumed: dict[str, int] = {}
            if self._insert_checks_versions and not ids:
                firsts: dict[str, tuple[Expected, list[Pending]]] = {}
                for sid, expected, batch in groups:
                    firsts.setdefault(sid, (expected, batch))   # where each stream starts
                presumed = {sid: expected for sid, (expected, batch) in firsts.items()
                            if batch and type(expected) is int}
            asked = [sid for sid, _, _ in groups if sid not in presumed]
            versions = {**presumed, **(self._versions(list(dict.fromkeys(asked)))
                                       if asked else {})}
            found = self._find_ids(ids) if ids else {}
            results, plan, expectations = [], [], []
            for stream_id, expected, batch in groups:
                actual = versions[stream_id]
                retry = self._resolve(stream_id, expected, actual, batch, found)
                if retry is not None or not batch:
                    results.append(actual if retry is None else retry)
                    continue
                versions[stream_id] = actual + len(batch)
                results.append(actual + len(batch))
                plan.append((stream_id, actual, batch))
                expectations.append(expected)
            if not plan:
                return results
            try:
                head = self._insert(plan)
            except StreamMoved as moved:
                now = self._versions([sid for sid, _, _ in plan])
                changed = [(sid, expected) for (sid, actual, _), expected
                           in zip(plan, expectations, strict=True) if now[sid] != actual]
                if retry_any and changed and all(e is ANY for _, e in changed):
                    raise _MovedUnderAny from moved
                stream_id, expected = changed[0] if changed else (plan[0][0], expectations[0])
                raise ConcurrencyError(stream_id, expected, now[stream_id]) from moved
        self._notify(head)
        return results

    def _resolve(self, stream_id: str, expected: Expected, actual: int,
                 batch: Sequence[Pending], found: dict[str, tuple[str, int]]) -> int | None:
        """Check an append against the stream; return a version if it is a retry.

        Returns ``None`` when the batch must be written, or the version the
        stream already reached if every event id is already stored in place.
        ``found`` says where the batch's ids are stored (``_find_ids``).
        An id stored in another stream is refused: ids are unique in the log.
        """
        ids = [p.event_id for p in batch if p.event_id is not None]
        if ids and any(i in found for i in ids):
            versions = []
            for number, p in enumerate(batch, start=1):
                where = found.get(p.event_id) if p.event_id is not None else None
                if where is not None and where[0] != stream_id:
                    raise InvalidInputError(
                        f"event #{number} of the batch: event_id {p.event_id} is already "
                        f"stored in stream {where[0]!r} (version {where[1]}); an event id "
                        "names one event in the whole log")
                versions.append(None if where is None else where[1])
            first = versions[0]
            in_place = first is not None and versions == list(
                range(first, first + len(batch)))
            if in_place and expectation_met(expected, first - 1):
                return versions[-1]
            raise ConcurrencyError(stream_id, expected, actual)
        if not expectation_met(expected, actual):
            raise ConcurrencyError(stream_id, expected, actual)
        return None

    # -- reading --------------------------------------------------------------------

    def read_stream(self, stream_id: str, from_version: int = 1,
                    to_version: int | None = None) -> Iterator[RecordedEvent]:
        """The events of one stream, ``from_version`` to ``to_version`` inclusive."""
        self._check_open()
        check_stream_id(stream_id)
        check_position("from_version", from_version)
        if to_version is not None:
            check_position("to_version", to_version)
        return self._decode(self._read_stream_rows(stream_id, max(from_version, 1), to_version))

    def read_all(self, from_position: int = 1, limit: int | None = None,
                 types: Iterable[str] | None = None) -> Iterator[RecordedEvent]:
        """The global log in position order, from ``from_position`` (inclusive).

        The log is read in slices, so a big log starts arriving at once and the
        memory it takes stays flat; a repeated reader never skips an event.
        """
        self._check_open()
        check_position("from_position", from_position)
        if limit is not None:
            check_position("limit", limit)
        type_list = type_names(self.registry, types)
        return self._decode(self._read_all_rows(max(from_position, 1), limit, type_list))

    def read_arrow(self, from_position: int = 1, to_position: int | None = None, *,
                   stream_id: str | None = None, types: Iterable[Any] | None = None) -> Any:
        """The stored rows from ``from_position`` to ``to_position`` (inclusive) as a
        ``pyarrow.Table``: ``position, stream_id, version, type, data, metadata,
        event_id, recorded_at, schema_version``, payloads as JSON text, in position
        order. Each store reads it natively; frames, SQL and copies start from it.

        >>> from eventlab import InMemoryEventStore, NewEvent
        >>> store = InMemoryEventStore()
        >>> _ = store.append("a-1", [NewEvent({"n": 1}, type="T")])
        >>> store.read_arrow(stream_id="a-1").column("data").to_pylist()
        ['{"n":1}']
        """
        self._check_open()
        check_position("from_position", from_position)
        if to_position is not None:
            check_position("to_position", to_position)
        if stream_id is not None:
            check_stream_id(stream_id)
        return self._read_arrow(max(from_position, 1), to_position, stream_id,
                                type_names(self.registry, types))

    def _decode(self, rows: Iterable[StoredRow]) -> Iterator[RecordedEvent]:
        """Stored rows to ``RecordedEvent``; stops once the store is closed."""
        return recorded_events(self.registry, rows, self._check_reading)

    def _check_reading(self) -> None:
        if self._closed:  # an iterator handed out before close() stops with it
            raise StoreClosedError(f"{self!r} was closed while this read was under way")

    def locate(self, event_ids: Iterable[uuid.UUID | str]) -> dict[str, tuple[str, int]]:
        """Where events are stored, by id: ``{id: (stream_id, version)}`` (ids as text).

        Ids the log does not hold are left out.

        >>> from eventlab import InMemoryEventStore, NewEvent
        >>> import uuid
        >>> store, known = InMemoryEventStore(), uuid.uuid4()
        >>> _ = store.append("a-1", [NewEvent({"n": 1}, type="T", event_id=known)])
        >>> store.locate([known, uuid.uuid4()]) == {str(known): ("a-1", 1)}
        True
        """
        self._check_open()
        ids = [event_id_text(i) for i in event_ids]
        return self._find_ids(ids) if ids else {}

    def load_events(self, stream_id: str, from_version: int = 1,
                    to_version: int | None = None) -> list[Any]:
        """Only the decoded event objects of a stream: the fast path for rehydration."""
        decode = self.registry.decode
        return [decode(t, d, s) for t, d, s in
                self._read_payloads(stream_id, max(from_version, 1), to_version)]

    def _read_payloads(self, stream_id: str, from_version: int,
                       to_version: int | None) -> list[tuple[str, str, int]]:
        """``(type, data, schema)`` of a stream's events; stores may read less than rows."""
        return [(r.type, r.data, r.schema)
                for r in self._read_stream_rows(stream_id, from_version, to_version)]

    # -- the log as data (implemented in store.frames and store.export) -----------

    def to_df(self, stream_id: str | None = None, types: Iterable[Any] | None = None,
              from_position: int | None = None, to_position: int | None = None,
              since: datetime | str | None = None, until: datetime | str | None = None,
              *, filter: Any = None) -> Any:
        """One row per event: envelope columns plus one column per payload field;
        ``filter=`` (an ``eventlab.Filter``) keeps only some cases.

        >>> from eventlab import InMemoryEventStore, NewEvent
        >>> store = InMemoryEventStore()
        >>> _ = store.append("a-1", [NewEvent({"amount": 5}, type="Deposited")])
        >>> store.to_df()[["stream_id", "type", "amount"]].values.tolist()
        [['a-1', 'Deposited', 5]]
        """
        from .frames import to_df

        return to_df(self, stream_id, types, from_position, to_position, since, until, filter)

    def to_arrow(self, stream_id: str | None = None, types: Iterable[Any] | None = None,
                 from_position: int | None = None, to_position: int | None = None,
                 since: datetime | str | None = None, until: datetime | str | None = None,
                 *, filter: Any = None) -> Any:
        """The same columns as ``to_df``, as a ``pyarrow.Table``."""
        from .frames import to_arrow

        return to_arrow(self, stream_id, types, from_position, to_position, since, until,
                        filter)

    def sql(self, query: str, params: Any = None, *, filter: Any = None) -> Any:
        """A DataFrame from SQL over the view ``events`` (or ``events_flat``: one column
        per payload field). ``store.sql("select type, count(*) n from events group by 1")``;
        ``filter=`` (an ``eventlab.Filter``) narrows both views to the cases it keeps."""
        from .frames import sql

        return sql(self, query, params, filter)

    def export_parquet(self, path: Any, partition_by: Any = ("type",),
                       overwrite: bool = False, incremental: bool = False) -> Any:
        """Write the ``to_df`` columns as Hive-partitioned Parquet; returns the directory
        (a ``Path`` whose ``.rows`` says how many events this call wrote).

        ``overwrite=True`` replaces an earlier export in that folder, and nothing else.
        ``incremental=True`` writes only the events after the ones the folder already
        holds, with one schema in every file (the envelope plus ``data`` as JSON
        text), in folders by UTC date (``date=2024-05-01/``): see
        ``eventlab.store.export``."""
        from .export import export_parquet

        return export_parquet(self, path, partition_by, overwrite, incremental)

    def sql_session(self) -> contextlib.AbstractContextManager[Any]:
        """A ``SqlSession``: SQL over the log in one transaction, tables kept beside it
        (what SQL projections are built on; see ``eventlab.store.sqlsession``)."""
        self._check_open()
        return self._sql_store()._session()

    # -- subscriptions ----------------------------------------------------------------

    def add_listener(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(head)`` after every committed write (used by subscriptions)."""
        with self._listeners_lock:
            self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[int], None]) -> None:
        with self._listeners_lock, contextlib.suppress(ValueError):
            self._listeners.remove(callback)

    def _notify(self, head: int) -> None:
        """Tell listeners the log moved. The write has committed by now, so a listener
        that raises is logged and never makes the write look as if it failed."""
        for callback in list(self._listeners):
            try:
                callback(head)
            except Exception as exc:
                log.error("a store listener (%r) raised after position %d was committed: %s",
                          callback, head, exc, exc_info=exc)

    def subscribe(self, handler: Callable[[RecordedEvent], Any], from_position: int = 1,
                  types: Iterable[str] | None = None) -> Any:
        """Catch up from ``from_position``, then deliver each new event, in order, once."""
        from .subscription import Subscription

        return Subscription(self, handler, from_position=from_position, types=types)

    # -- what a backend provides: rows in, rows out --------------------------------------

    @abstractmethod
    def _writing(self) -> contextlib.AbstractContextManager[Any]:
        """A block in which this process writes alone (a lock, a transaction): the
        write loop checks versions and inserts inside it. Reentrant."""

    @abstractmethod
    def _versions(self, stream_ids: list[str]) -> dict[str, int]:
        """Each stream's current version (0 when it has no events)."""

    @abstractmethod
    def _find_ids(self, event_ids: list[str]) -> dict[str, tuple[str, int]]:
        """Where those event ids are stored in the whole log: ``{id: (stream_id, version)}``."""

    #: True when ``_insert_table`` raises ``IdsStored`` for an event id already stored.
    _insert_table_refuses_stored_ids: bool = False

    #: True when ``_insert`` reads each stream's version in the same atomic step and
    #: raises ``StreamMoved`` on a difference: the write loop then skips its own read
    #: for appends that name an exact version.
    _insert_checks_versions: bool = False

    @abstractmethod
    def _insert(self, plan: list[tuple[str, int, list[Pending]]]) -> int:
        """Store each ``(stream_id, version before, events)`` at the next positions, all
        or nothing; return the last position written. Raise ``StreamMoved`` when a
        stream's version is no longer the one given (another writer got there first)."""

    def _insert_table(self, table: Any) -> int:
        """Store checked ``append_batch`` rows (none of their ids stored yet), positions
        in row order; return the last position. Backends may do this in bulk."""
        from .batches import groups_of

        groups = groups_of(table)
        versions = self._versions(list(dict.fromkeys(sid for sid, _ in groups)))
        plan = []
        for stream_id, batch in groups:
            plan.append((stream_id, versions[stream_id], batch))
            versions[stream_id] += len(batch)
        return self._insert(plan)

    @abstractmethod
    def _read_stream_rows(self, stream_id: str, from_version: int,
                          to_version: int | None) -> Iterable[StoredRow]: ...

    @abstractmethod
    def _read_all_rows(self, from_position: int, limit: int | None,
                       types: list[str] | None) -> Iterable[StoredRow]: ...

    @abstractmethod
    def _read_arrow(self, from_position: int, to_position: int | None,
                    stream_id: str | None, types: list[str] | None) -> Any:
        """Rows in that range as an Arrow table with ``LOG_SCHEMA``, in position order."""

    @abstractmethod
    def _delete(self, stream_id: str) -> int:
        """Delete the stream's events and snapshots; bump ``generation``; return the count."""

    @abstractmethod
    def _sql_store(self) -> Any:
        """A DuckDB store holding this log up to its head (the store itself, or a local
        mirror brought up to date): what SQL, SQL projections and frames run in."""

    def _duckdb(self) -> contextlib.AbstractContextManager[Any]:
        """A DuckDB cursor in which this store's log is the table ``eventlab_events``."""
        return self._sql_store()._duckdb()

    def stream_version(self, stream_id: str) -> int:
        """The version of the stream's last event (0 when it has none)."""
        self._check_open()
        return self._versions([check_stream_id(stream_id)])[stream_id]

    @abstractmethod
    def head(self) -> int:
        """The last global position (0 when the log is empty)."""

    @abstractmethod
    def stream_ids(self) -> list[str]:
        """Every stream id with at least one event, in order of first appearance."""

    #: Counts ``delete_stream`` calls on this log: a state cached under an older
    #: generation may describe a stream that has since been deleted and rewritten.
    generation: int = 0

    def delete_stream(self, stream_id: str) -> int:
        """Delete a stream's events (and its snapshots) for good; return how many.

        Positions are never reused; caches keyed by ``generation`` see the delete.
        """
        check_stream_id(stream_id)
        with self._writing():
            self._check_open()
            return self._delete(stream_id)

    def close(self) -> None:
        """Release the store at once. Reads and writes raise ``StoreClosedError`` from now
        on, iterators already handed out included; subscriptions on it end. Closing
        twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._release()
        self._notify(0)  # wakes subscriptions, which find the store closed and stop

    def _release(self) -> None:
        """Let go of what the store holds (connections, files)."""

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
