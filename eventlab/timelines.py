"""Timelines: one stream under one aggregate, ready for ``state_at`` any version.

A ``Timeline`` does not keep the stream's events. It holds:

* sparse checkpoints: the state at versions ``0, span, 2 * span, ...``. The span
  starts at ``every`` and doubles whenever more than ``max_checkpoints`` states
  would be kept, so their count stays bounded however long the stream grows;
* compact per-version columns in numpy: each event's type (a small int into a
  list of names), ``recorded_at`` (int64 microseconds) and position;
* the state at the last version, the last state handed out (so stepping one
  version forward folds one event) and the last block of events read.

``state_at(v)`` folds forward from the checkpoint at or below ``v``, reading
that block of at most ``span`` events from the store: the payloads' text by
position range (``store.read_arrow``), decoded as they are folded, or the
recorded events (``read_stream``) for an aggregate that ``wants_recorded``.
``event``, ``events_between`` and ``history`` read the store on demand too.
The first look reads the stream once as Arrow, takes the columns from it, and
decodes and folds it a slice at a time; each event is dropped once folded, so
the garbage collector has almost nothing to scan. Each call extends the
timeline when the stream has grown and starts it over after a delete
(``store.generation``); ``timeline()`` caches one per store, aggregate and
stream, and every method holds the timeline's lock.

>>> import eventlab as el
>>> from eventlab.examples.bank import Account, Deposited, Opened
>>> store = el.InMemoryEventStore()
>>> _ = store.append("acc-1", [Opened("ada")] + [Deposited(1)] * 99)
>>> line = timeline(store, Account(), "acc-1")
>>> line.state_at(42).balance, line.types[41], line.time_of(42) <= line.time_of(43)
(41.0, 'Deposited', True)
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from datetime import UTC, datetime, timedelta
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pyarrow as pa

from .aggregate import Aggregate
from .diffs import Diff, diff, state_frame, state_row
from .envelope import RecordedEvent
from .errors import ApplyError, EventlabError, InvalidInputError
from .events import DECODE_ERRORS
from .store.rows import check_stream_id, utc

if TYPE_CHECKING:
    import pandas as pd

    from .store.base import EventStore

ENVELOPE = ("version", "position", "type", "recorded_at")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_SLICE = 65_536          # rows decoded at a time on a full read
HISTORY_BLOCK = 16_384   # events read at a time by history() and what_if()
_BLOCK = 64              # events event() reads around the one asked for
_TRIES = 5               # reads retried when the stream changes under them
_T = TypeVar("_T")


class _Changed(Exception):
    """The stream changed (deleted, rewritten) between two reads: start over."""


class _Column:
    """A growing numpy column: appends are amortised, views taken earlier never change."""

    def __init__(self, dtype: Any) -> None:
        self.data, self.size = np.empty(0, dtype), 0

    def extend(self, values: Any) -> None:
        end = self.size + len(values)
        if end > len(self.data):
            grown = np.empty(max(end, 2 * len(self.data), 1024), self.data.dtype)
            grown[:self.size] = self.data[:self.size]
            self.data = grown
        self.data[self.size:end] = values
        self.size = end

    def view(self) -> np.ndarray:
        view = self.data[:self.size]
        view.flags.writeable = False
        return view


class Types(Sequence[str]):
    """The type name of the event at each version (``types[v - 1]``), held as small ints.

    >>> t = Types(np.array([0, 1, 1]), ("Opened", "Deposited"))
    >>> len(t), t[0], t[-1], t[1:], list(t)
    (3, 'Opened', 'Deposited', ['Deposited', 'Deposited'], ['Opened', 'Deposited', 'Deposited'])
    """

    __slots__ = ("codes", "names")

    def __init__(self, codes: np.ndarray, names: Sequence[str]) -> None:
        self.codes, self.names = codes, tuple(names)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self.names[c] for c in self.codes[index].tolist()]
        return self.names[self.codes[index]]

    def __iter__(self) -> Iterator[str]:
        return map(self.names.__getitem__, self.codes.tolist())

    def __repr__(self) -> str:
        return f"<Types of {len(self)} events: {', '.join(self.names[:8])}>"


class Timeline:
    """One stream under one aggregate: sparse checkpoints for fast ``state_at``.

    ``version`` is the last version loaded, ``versions`` is ``range(0, version + 1)``,
    ``types[v - 1]`` and ``time_of(v)`` say what happened at ``v`` and when;
    ``event(v)``, ``events_between(a, b)`` and ``history()`` read the store.
    Every call that reads checks the stream's version first and folds in new
    events. ``checkpoints`` are the versions whose state is kept: at most
    ``max_checkpoints``, ``every`` apart at first, spread wider as the stream
    grows. Usually got through ``timeline(store, aggregate, stream_id)``, which
    caches it.

    >>> import eventlab as el
    >>> from eventlab.examples.bank import Account, Deposited, Opened
    >>> store = el.InMemoryEventStore()
    >>> _ = store.append("acc-1", [Opened("ada")] + [Deposited(1)] * 99)
    >>> line = Timeline(store, Account(), "acc-1", every=4, max_checkpoints=10)
    >>> line.state_at(42).balance, line.types[41], line.checkpoints
    (41.0, 'Deposited', range(0, 97, 16))
    """

    def __init__(self, store: EventStore, aggregate: Aggregate, stream_id: str,
                 every: int = 64, max_checkpoints: int = 1024) -> None:
        for name, value, low in (("every", every, 1), ("max_checkpoints", max_checkpoints, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidInputError(f"{name} must be an int of at least {low}, got {value!r}")
        self.store, self.aggregate = store, aggregate
        self.stream_id = check_stream_id(stream_id)
        self.every, self.max_checkpoints = every, max_checkpoints
        self._recorded = bool(getattr(aggregate, "wants_recorded", False))
        self._lock = threading.RLock()
        self._reset()
        self.refresh()

    def _reset(self) -> None:
        initial = self.aggregate.initial_state()
        self._n = 0                          # the version loaded
        self._span = self.every
        self._marks: list[Any] = [initial]   # the state at versions 0, span, 2 * span, ...
        self._tip = initial                  # the state at self._n
        self._last = (0, initial)            # the last state handed out, for stepping
        self._codes, self._names, self._name_codes = _Column(np.int32), [], {}
        self._times, self._positions = _Column(np.int64), _Column(np.int64)
        self._sorted_times = True
        self._window = (1, _Rows(([],)))     # the last block folded from, and its first version
        self._block: tuple[int, list[RecordedEvent]] = (1, [])  # the last block event() read
        self._generation = self.store.generation  # a delete since then: start over

    # -- what is loaded -------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._n

    @property
    def versions(self) -> range:
        return range(0, self._n + 1)

    @property
    def checkpoints(self) -> range:
        """The versions whose state the timeline keeps."""
        return range(0, (len(self._marks) - 1) * self._span + 1, self._span)

    @property
    def types(self) -> Sequence[str]:
        """The type name of the event at each loaded version (index ``v - 1``)."""
        with self._lock:
            return Types(self._codes.view(), self._names)

    def time_of(self, version: int) -> datetime:
        """When the event at ``version`` was recorded (timezone-aware UTC)."""
        with self._lock:
            self._check(version, low=1)
            return _EPOCH + timedelta(microseconds=int(self._times.data[version - 1]))

    # -- reading the stream ---------------------------------------------------------------

    def refresh(self) -> int:
        """Load events appended since the last look; return the stream's version."""
        return self._again(lambda: self._n)

    def _again(self, read: Callable[[], _T]) -> _T:
        """Refresh, then ``read``; both again from scratch if the stream changes meanwhile."""
        with self._lock:
            for _ in range(_TRIES):
                try:
                    self._refresh()
                    return read()
                except _Changed:
                    self._reset()
            raise EventlabError(f"stream {self.stream_id!r} changed while it was read, "
                                f"{_TRIES} times in a row; try again")

    def _refresh(self) -> None:
        if self._generation != self.store.generation:
            self._reset()
        current = self.store.stream_version(self.stream_id)
        if current < self._n:
            self._reset()
        if current != self._n:
            try:
                self._load()
            except BaseException:
                self._reset()   # half-loaded: the next call starts over
                raise
        if self._generation != self.store.generation:
            raise _Changed

    def _load(self) -> None:
        """Read the events after ``self._n`` once, as Arrow; keep columns and checkpoints."""
        n = self._n
        table = self.store.read_arrow(from_position=self._next_position(), stream_id=self.stream_id)
        versions = table.column("version").to_numpy()
        if not len(versions):
            return             # not visible to this read yet
        if np.any(versions[1:] < versions[:-1]):
            order = np.argsort(versions, kind="stable")
            table, versions = table.take(order), versions[order]
        if versions[0] != n + 1 or versions[-1] != n + len(versions):
            raise _Changed     # rewritten since the last look, or read across a delete
        self._extend_columns(table)
        self._n = end = n + len(versions)
        decode = _decoder(self.store)
        blocks = ((self._rows(first, min(first + _SLICE - 1, end))
                   for first in range(n + 1, end + 1, _SLICE)) if self._recorded else
                  (_payloads(table.slice(first, _SLICE), decode)
                   for first in range(0, len(versions), _SLICE)))
        items = chain.from_iterable(blocks)
        while end // self._span >= self.max_checkpoints:
            self._thin()
        self._tip = self._fold_on(self._tip, items, n, end)

    def _next_position(self) -> int:
        return int(self._positions.data[self._n - 1]) + 1 if self._n else 1

    def _extend_columns(self, table: pa.Table) -> None:
        times = table.column("recorded_at").cast(pa.int64()).to_numpy()
        last = self._times.data[self._n - 1] if self._n else times[0]
        if self._sorted_times and (times[0] < last or np.any(times[1:] < times[:-1])):
            self._sorted_times = False
        types = table.column("type").combine_chunks().dictionary_encode()
        codes = np.array([self._code(name) for name in types.dictionary.to_pylist()], np.int32)
        self._codes.extend(codes[types.indices.to_numpy()])
        self._times.extend(times)
        self._positions.extend(table.column("position").to_numpy())

    def _code(self, name: str) -> int:
        code = self._name_codes.get(name)
        if code is None:
            code = self._name_codes[name] = len(self._names)
            self._names.append(name)
        return code

    def _fold_on(self, state: Any, items: Iterator[Any], version: int, end: int) -> Any:
        """Fold ``items`` (versions ``version + 1`` to ``end``), keeping checkpoints."""
        while version < end:
            stop = min((version // self._span + 1) * self._span, end)
            state = self._fold(state, islice(items, stop - version), version + 1)
            version = stop
            if version % self._span == 0:
                self._marks.append(state)
                if len(self._marks) > self.max_checkpoints:
                    self._thin()
        return state

    def _thin(self) -> None:
        """Keep every other checkpoint: twice the span, half the states."""
        self._marks = self._marks[::2]
        self._span *= 2

    def _fold(self, state: Any, items: Iterable[Any], first: int) -> Any:
        """``state`` after ``items`` (the events at versions ``first``, ...): the hot loop."""
        apply = self.aggregate.apply
        for version, item in enumerate(items, first):
            try:   # inside the loop: an error of the items' iterator is not apply's
                state = apply(state, item)
            except EventlabError:
                raise
            except Exception as exc:
                raise self._failed(exc, version) from exc
        return state

    def _each(self, state: Any, items: Iterable[Any], first: int) -> Iterator[Any]:
        """The state after each of ``items`` in turn."""
        apply, version = self.aggregate.apply, first - 1
        try:
            for version, item in enumerate(items, first):  # noqa: B007
                state = apply(state, item)
                yield state
        except EventlabError:
            raise
        except Exception as exc:
            raise self._failed(exc, version) from exc

    def _failed(self, exc: Exception, version: int) -> ApplyError:
        known = 0 < version <= self._n
        return ApplyError(
            f"{self.aggregate.name}.apply", exc, stream_id=self.stream_id, version=version,
            position=int(self._positions.data[version - 1]) if known else None,
            type=self._names[self._codes.data[version - 1]] if known else None)

    def _rows(self, first: int, last: int) -> _Rows:
        """The events ``first`` to ``last`` as ``apply`` takes them, read from the store:
        recorded events, or the payloads' text, decoded as they are folded."""
        if self._recorded:
            return _Rows((self._read_recorded(first, last),))
        positions = self._positions.data
        table = self.store.read_arrow(int(positions[first - 1]), int(positions[last - 1]),
                                      stream_id=self.stream_id)
        versions = table.column("version")
        self._checked(versions, first, last)
        if versions[0].as_py() != first or versions[-1].as_py() != last:
            raise _Changed
        return _payloads(table, _decoder(self.store))

    def _read_recorded(self, first: int, last: int) -> list[RecordedEvent]:
        return self._checked(list(self.store.read_stream(self.stream_id, first, last)),
                             first, last)

    def _checked(self, items: Sized, first: int, last: int) -> Any:
        if len(items) != last - first + 1 or self._generation != self.store.generation:
            raise _Changed
        return items

    # -- states ---------------------------------------------------------------------------

    def state_at(self, version: int | None = None) -> Any:
        """The state after ``version`` (0: the initial state; None: the latest)."""
        return self._again(lambda: self._state_at(self._n if version is None else version))

    def _state_at(self, version: int) -> Any:
        self._check(version)
        if version == self._n:
            return self._tip
        start = version - version % self._span
        state = self._marks[start // self._span]
        last_version, last_state = self._last
        if start <= last_version <= version:
            start, state = last_version, last_state
        if start < version:
            begin, rows = self._window
            if not (begin <= start + 1 and version < begin + len(rows)):
                begin = start - start % self._span + 1
                rows = self._rows(begin, min(begin + self._span - 1, self._n))
                self._window = (begin, rows)
            state = self._fold(state, rows.items(start + 1 - begin, version + 1 - begin),
                               start + 1)
        self._last = (version, state)
        return state

    def _check(self, version: Any, low: int = 0) -> None:
        check_version(self.stream_id, version, self._n, low)

    def version_at(self, at: datetime) -> int:
        """The version of the last event recorded at or before ``at`` (0 if none)."""
        if not isinstance(at, datetime):
            raise InvalidInputError(f"at must be a datetime, got {at!r}")
        moment = (utc(at) - _EPOCH) // _US
        with self._lock:
            self.refresh()
            times = self._times.view()
            if self._sorted_times:
                return int(np.searchsorted(times, moment, side="right"))
            found = np.flatnonzero(times <= moment)
            return int(found[-1]) + 1 if len(found) else 0

    def event(self, version: int) -> RecordedEvent:
        """The event that made ``version`` (1-based), read from the store."""
        def read() -> RecordedEvent:
            self._check(version, low=1)
            begin, block = self._block
            if not begin <= version < begin + len(block):
                begin = version - (version - 1) % _BLOCK
                block = self._read_recorded(begin, min(begin + _BLOCK - 1, self._n))
                self._block = (begin, block)
            return block[version - begin]
        return self._again(read)

    def events_between(self, first: int, last: int) -> list[RecordedEvent]:
        """The events at versions ``first`` to ``last`` (inclusive), read from the store."""
        def read() -> list[RecordedEvent]:
            self._check(last)
            if isinstance(first, int) and 1 <= first == last + 1:
                return []   # an empty range
            self._check(first, low=1)
            if first > last:
                raise InvalidInputError(f"events_between({first}, {last}): first is after last")
            return self._read_recorded(first, last)
        return self._again(read)

    def changes(self, version: int) -> Diff:
        """What the event at ``version`` changed."""
        with self._lock:
            if version == 0:
                self._check(version)
                return Diff({})
            return diff(self.state_at(version - 1), self.state_at(version))

    def history(self) -> pd.DataFrame:
        """One row per event: version, position, type, recorded_at, then the state after it.

        Reads the stream in blocks; only the frame being built is kept.
        """
        import pandas as pd

        def read() -> pd.DataFrame:
            initial, n = self._marks[0], self._n
            state, frames = initial, []
            for first in range(1, n + 1, HISTORY_BLOCK):
                events = self._read_recorded(first, min(first + HISTORY_BLOCK - 1, n))
                items = events if self._recorded else [e.data for e in events]
                states = list(self._each(state, items, first))
                frames.append(pd.DataFrame([
                    state_row({"version": e.version, "position": e.position, "type": e.type,
                               "recorded_at": e.recorded_at}, after)
                    for e, after in zip(events, states, strict=True)]))
                state = states[-1]
            return state_frame(pd, frames, ENVELOPE, initial)
        return self._again(read)

    def __repr__(self) -> str:
        return (f"<Timeline {self.aggregate.name} {self.stream_id!r} version {self._n}, "
                f"{len(self._marks)} checkpoints {self._span} apart>")


class _Rows:
    """Consecutive events as ``apply`` takes them: one column of recorded events, or the
    columns ``type``, ``data`` (JSON text) and ``schema_version`` and a ``decode`` that
    makes each payload as it is folded. Text is not tracked by the garbage collector,
    and a decoded event is gone once folded, so a long read leaves nothing to scan."""

    __slots__ = ("columns", "decode")

    def __init__(self, columns: tuple[list[Any], ...],
                 decode: Callable[..., Any] | None = None) -> None:
        self.columns, self.decode = columns, decode

    def __len__(self) -> int:
        return len(self.columns[0])

    def __iter__(self) -> Iterator[Any]:
        return self.items(0, len(self))

    def items(self, start: int, stop: int) -> Iterator[Any]:
        """The events at ``start`` to ``stop - 1`` (indexes into these rows)."""
        if self.decode is None:
            return iter(self.columns[0][start:stop])
        return map(self.decode, *(column[start:stop] for column in self.columns))


def _payloads(table: pa.Table, decode: Callable[..., Any]) -> _Rows:
    return _Rows(tuple(table.column(name).to_pylist()
                       for name in ("type", "data", "schema_version")), decode)


def _decoder(store: EventStore) -> Callable[[str, str, int], Any]:
    """Stored text to the event object, as reads decode it (a failure names the type)."""
    registry, decoders = store.registry, {}

    def decode(kind: str, text: str, schema: int) -> Any:
        found = decoders.get((kind, schema))
        if found is None:
            found = decoders[kind, schema] = registry.decoder_for(kind, schema)
        try:
            return found(text)
        except DECODE_ERRORS:   # decode it again, for an error that names the type
            return registry.decode(kind, text, schema)
    return decode


_timelines: weakref.WeakKeyDictionary[Any, OrderedDict[Any, Timeline]] = (
    weakref.WeakKeyDictionary())
_timelines_lock = threading.Lock()
_PER_STORE = 32


def check_version(stream_id: str, version: Any, last: int, low: int = 0) -> int:
    """``version`` if it is an int from ``low`` to ``last``, else a clear error.

    >>> check_version("acc-1", 2, 3)
    2
    """
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidInputError(f"version must be an int, got {version!r}")
    if not low <= version <= last:
        raise InvalidInputError(
            f"stream {stream_id!r} has versions {low} to {last}; "
            f"there is no version {version}" +
            (" (version 0 is the initial state; no event made it)" if version == 0 else ""))
    return version


def _aggregate_key(aggregate: Aggregate) -> Any:
    # What the fold is handed (events or recorded events) is part of the key: a class
    # that changes its mind needs a timeline folded the new way.
    shape = bool(getattr(aggregate, "wants_recorded", False))
    try:
        key = (type(aggregate), shape, tuple(sorted(vars(aggregate).items())))
        hash(key)
        return key
    except TypeError:  # unhashable settings: only this very object shares the cache
        return (type(aggregate), shape, id(aggregate))


def timeline(store: EventStore, aggregate: Aggregate, stream_id: str) -> Timeline:
    """The cached ``Timeline`` of that stream (made on first use, extended as it grows).

    Aggregates of one class with equal settings share a timeline.
    """
    if not isinstance(aggregate, Aggregate):
        raise InvalidInputError(f"aggregate must be an el.Aggregate instance, got {aggregate!r}")
    key = (_aggregate_key(aggregate), check_stream_id(stream_id))
    with _timelines_lock:
        per_store = _timelines.setdefault(store, OrderedDict())
        found = per_store.get(key)
        if found is not None:
            per_store.move_to_end(key)
            return found
    made = Timeline(store, aggregate, stream_id)
    with _timelines_lock:
        per_store[key] = made
        if len(per_store) > _PER_STORE:
            per_store.popitem(last=False)
    return made


__all__ = ["ENVELOPE", "Timeline", "Types", "check_version", "timeline"]
