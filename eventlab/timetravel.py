"""Time travel: an aggregate's state at any version or moment, its history, diffs, what-ifs.

A ``Timeline`` holds one stream's events and the state at every ``every``-th
version, so ``state_at`` any version folds at most ``every - 1`` events (and
stepping one version forward folds one). Timelines are cached per store,
aggregate and stream, and extend themselves when the stream grows: a slider
can scrub a 100,000-event stream.

>>> import eventlab as el
>>> from eventlab.examples.bank import Account, Deposited, Opened
>>> store = el.InMemoryEventStore()
>>> _ = store.append("acc-1", [Opened("ada"), Deposited(10), Deposited(5)])
>>> el.state_at(store, Account(), "acc-1", version=2).balance
10.0
>>> el.diff(el.state_at(store, Account(), "acc-1", version=2),
...         el.state_at(store, Account(), "acc-1", version=3))
Diff(balance: 10.0 -> 15.0, transactions: 1 -> 2)
>>> el.history(store, Account(), "acc-1")[["version", "type", "balance"]].values.tolist()
[[1, 'Opened', 0.0], [2, 'Deposited', 10.0], [3, 'Deposited', 15.0]]
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from .aggregate import Aggregate, replayed
from .envelope import NewEvent, RecordedEvent
from .errors import ApplyError, EventlabError, InvalidInputError
from .store.rows import check_stream_id, utc

if TYPE_CHECKING:
    import pandas as pd

    from .store.base import EventStore

ENVELOPE = ("version", "position", "type", "recorded_at")


# -- states as table rows ------------------------------------------------------------

def state_record(state: Any) -> dict[Any, Any]:
    """A state as columns: dataclass fields, dict keys, or a single ``state`` column.

    Mutable values are copied, so a row never changes when the state later does.
    """
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return {f.name: _copied(getattr(state, f.name)) for f in dataclasses.fields(state)}
    if isinstance(state, Mapping):
        return {k: _copied(v) for k, v in state.items()}
    fields = getattr(state, "__struct_fields__", None) or getattr(state, "_fields", None)
    if isinstance(fields, tuple):  # a msgspec Struct or a namedtuple
        return {f: _copied(getattr(state, f)) for f in fields}
    return {"state": _copied(state)}


def _copied(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, (list, dict, set)) else value


def _row(envelope: dict[str, Any], state: Any) -> dict[Any, Any]:
    row = dict(envelope)
    for key, value in state_record(state).items():
        row[f"state_{key}" if key in envelope else key] = value
    return row


# -- diffs ------------------------------------------------------------------------------

class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


#: Stands for the side of a ``Change`` where a key, field or item does not exist.
MISSING: Any = _Missing()


class Change(NamedTuple):
    """One changed value: ``old`` and ``new`` (``MISSING`` when added or removed)."""

    old: Any
    new: Any


class Diff(Mapping[str, Change]):
    """What changed between two states, as ``{path: Change(old, new)}``.

    Paths name fields and keys with dots (``owner.name``), list items with
    brackets (``items[2]``); ``""`` is the whole state when it is a plain value.
    ``fields`` is the set of top-level names that changed (handy to highlight).

    >>> d = diff({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 3], "c": 0})
    >>> dict(d)
    {'b[1]': Change(old=2, new=3), 'c': Change(old=<missing>, new=0)}
    >>> sorted(d.fields)
    ['b', 'c']
    """

    def __init__(self, changed: dict[str, Change]) -> None:
        self.changed = changed

    def __getitem__(self, path: str) -> Change:
        return self.changed[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self.changed)

    def __len__(self) -> int:
        return len(self.changed)

    @property
    def fields(self) -> set[str]:
        return {_top(path) for path in self.changed}

    def __repr__(self) -> str:
        body = ", ".join(f"{path or '(state)'}: {c.old!r} -> {c.new!r}"
                         for path, c in self.changed.items())
        return f"Diff({body})"

    def _repr_html_(self) -> str:
        import html

        if not self.changed:
            return "<p>no changes</p>"
        rows = "".join(
            f"<tr><td><code>{html.escape(path or '(state)')}</code></td>"
            f"<td>{html.escape(repr(c.old))}</td><td>{html.escape(repr(c.new))}</td></tr>"
            for path, c in self.changed.items())
        return f"<table><tr><th>path</th><th>before</th><th>after</th></tr>{rows}</table>"


def _top(path: str) -> str:
    for i, ch in enumerate(path):
        if ch in ".[" and i:
            return path[:i]
    return path


def diff(before: Any, after: Any) -> Diff:
    """What changed from ``before`` to ``after``, field by field, into nested dicts and lists.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class S:
    ...     n: int
    ...     tags: tuple = ()
    >>> diff(S(1, ("a",)), S(2, ("a", "b")))
    Diff(n: 1 -> 2, tags[1]: <missing> -> 'b')
    """
    changed: dict[str, Change] = {}
    _walk(before, after, "", changed)
    return Diff(changed)


def _equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):  # e.g. arrays whose == is elementwise
        return False


def _walk(a: Any, b: Any, path: str, out: dict[str, Change]) -> None:
    if _equal(a, b):
        return
    if (dataclasses.is_dataclass(a) and type(a) is type(b) and not isinstance(a, type)):
        for f in dataclasses.fields(a):
            _walk(getattr(a, f.name), getattr(b, f.name), _join(path, f.name), out)
    elif isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in [*a, *(k for k in b if k not in a)]:
            _walk(a.get(key, MISSING), b.get(key, MISSING), _join(path, key), out)
    elif _is_sequence(a) and _is_sequence(b):
        for i in range(max(len(a), len(b))):
            _walk(a[i] if i < len(a) else MISSING, b[i] if i < len(b) else MISSING,
                  f"{path}[{i}]", out)
    else:
        out[path] = Change(a, b)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and not hasattr(value, "_fields")


def _join(path: str, key: Any) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


# -- timelines --------------------------------------------------------------------------

class Timeline:
    """One stream under one aggregate: its events and a state cache for fast ``state_at``.

    ``events[v - 1]`` is the event at version ``v``; ``version`` is the last
    version loaded; ``versions`` is ``range(0, version + 1)``. Every call checks
    the stream's version and folds in new events. Usually got through
    ``timeline(store, aggregate, stream_id)``, which caches it.
    """

    def __init__(self, store: EventStore, aggregate: Aggregate, stream_id: str,
                 every: int = 64) -> None:
        if every < 1:
            raise InvalidInputError(f"every must be a positive number of versions, got {every!r}")
        self.store, self.aggregate = store, aggregate
        self.stream_id = check_stream_id(stream_id)
        self.every = every
        self._lock = threading.RLock()
        self._reset()
        self.refresh()

    def _reset(self) -> None:
        initial = self.aggregate.initial_state()
        self.events: list[RecordedEvent] = []
        self._marks: list[Any] = [initial]   # state at versions 0, every, 2 * every, ...
        self._tip = initial                  # state at self.version
        self._last = (0, initial)            # the last state handed out, for stepping
        self._times: list[datetime] = []
        self._sorted_times = True
        self._generation = self.store.generation  # a delete since then: start over

    @property
    def version(self) -> int:
        return len(self.events)

    @property
    def versions(self) -> range:
        return range(0, len(self.events) + 1)

    def refresh(self) -> int:
        """Load events appended since the last look; return the stream's version."""
        with self._lock:
            if self._generation != self.store.generation:
                self._reset()
            current = self.store.stream_version(self.stream_id)
            loaded = len(self.events)
            if current == loaded:
                return current
            new: list[RecordedEvent] = []
            if current > loaded:
                new = list(self.store.read_stream(self.stream_id, max(loaded, 1), current))
                if loaded and (not new or new[0].event_id != self.events[-1].event_id):
                    new = []  # the stream was deleted and written anew
                else:
                    new = new[1:] if loaded else new
            if not new:
                self._reset()
                new = list(self.store.read_stream(self.stream_id, 1, current))
            self._extend(new)
            return len(self.events)

    def _extend(self, new: Sequence[RecordedEvent]) -> None:
        state, every = self._tip, self.every
        for event in new:
            state = self._apply(state, event)
            self.events.append(event)
            if self._times and event.recorded_at < self._times[-1]:
                self._sorted_times = False
            self._times.append(event.recorded_at)
            if len(self.events) % every == 0:
                self._marks.append(state)
        self._tip = state

    def _apply(self, state: Any, event: RecordedEvent) -> Any:
        try:
            return self.aggregate.apply(state, replayed(self.aggregate, event))
        except EventlabError:
            raise
        except Exception as exc:
            raise ApplyError(f"{self.aggregate.name}.apply", exc, stream_id=event.stream_id,
                             version=event.version, position=event.position,
                             type=event.type) from exc

    def state_at(self, version: int | None = None) -> Any:
        """The state after ``version`` (0: the initial state; None: the latest)."""
        with self._lock:
            self.refresh()
            if version is None:
                version = len(self.events)
            self._check(version)
            if version == len(self.events):
                return self._tip
            start = version - version % self.every
            state = self._marks[start // self.every]
            last_version, last_state = self._last
            if start <= last_version <= version:
                start, state = last_version, last_state
            for event in self.events[start:version]:
                state = self._apply(state, event)
            self._last = (version, state)
            return state

    def _check(self, version: Any) -> None:
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidInputError(f"version must be an int, got {version!r}")
        if not 0 <= version <= len(self.events):
            raise InvalidInputError(
                f"stream {self.stream_id!r} has versions 0 to {len(self.events)}; "
                f"there is no version {version}")

    def version_at(self, at: datetime) -> int:
        """The version of the last event recorded at or before ``at`` (0 if none)."""
        if not isinstance(at, datetime):
            raise InvalidInputError(f"at must be a datetime, got {at!r}")
        moment = utc(at)
        with self._lock:
            self.refresh()
            if self._sorted_times:
                return bisect.bisect_right(self._times, moment)
            for version in range(len(self._times), 0, -1):
                if self._times[version - 1] <= moment:
                    return version
            return 0

    def event(self, version: int) -> RecordedEvent:
        """The event that made ``version`` (1-based)."""
        self._check(version)
        if version == 0:
            raise InvalidInputError("version 0 is the initial state; no event made it")
        return self.events[version - 1]

    def changes(self, version: int) -> Diff:
        """What the event at ``version`` changed."""
        return diff(self.state_at(version - 1), self.state_at(version)) if version else Diff({})

    def history(self) -> pd.DataFrame:
        """One row per event: version, position, type, recorded_at, then the state after it."""
        import pandas as pd

        with self._lock:
            self.refresh()
            state, rows = self._marks[0], []
            for event in self.events:
                state = self._apply(state, event)
                rows.append(_row({"version": event.version, "position": event.position,
                                  "type": event.type, "recorded_at": event.recorded_at}, state))
        return _frame(pd, rows, ENVELOPE, self._marks[0])

    def __repr__(self) -> str:
        return (f"<Timeline {self.aggregate.name} {self.stream_id!r} "
                f"version {len(self.events)}>")


def _frame(pd: Any, rows: list[dict[Any, Any]], envelope: Sequence[str], initial: Any
           ) -> pd.DataFrame:
    if rows:
        return pd.DataFrame(rows)
    return pd.DataFrame(columns=list(_row(dict.fromkeys(envelope), initial)))


_timelines: weakref.WeakKeyDictionary[Any, OrderedDict[Any, Timeline]] = (
    weakref.WeakKeyDictionary())
_timelines_lock = threading.Lock()
_PER_STORE = 32


def _aggregate_key(aggregate: Aggregate) -> Any:
    try:
        key = (type(aggregate), tuple(sorted(vars(aggregate).items())))
        hash(key)
        return key
    except TypeError:  # unhashable settings: only this very object shares the cache
        return (type(aggregate), id(aggregate))


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


# -- the public functions ---------------------------------------------------------------

def state_at(store: EventStore, aggregate: Aggregate, stream_id: str,
             version: int | None = None, *, at: datetime | None = None) -> Any:
    """The stream's state after ``version``, or after the last event recorded by ``at``.

    Give one of ``version`` and ``at`` (neither: the latest state). ``at`` uses
    ``recorded_at``; a naive datetime is taken as UTC.
    """
    if version is not None and at is not None:
        raise InvalidInputError("give version= or at=, not both")
    line = timeline(store, aggregate, stream_id)
    if at is not None:
        version = line.version_at(at)
    return line.state_at(version)


def history(store: EventStore, aggregate: Aggregate, stream_id: str) -> pd.DataFrame:
    """One row per event of the stream, with the state after it.

    Columns: ``version``, ``position``, ``type``, ``recorded_at``, then the
    state's dataclass fields, dict keys, or one ``state`` column (a state
    column named like an envelope column gets a ``state_`` prefix).
    """
    return timeline(store, aggregate, stream_id).history()


@dataclasses.dataclass
class WhatIf:
    """An edited replay next to the real one (nothing is written to the store).

    ``actual`` and ``alternative`` are history frames (the alternative has
    ``original_version`` and ``edit``: kept, inserted or replaced); ``diff``
    compares the two final states.
    """

    stream_id: str
    actual: pd.DataFrame
    alternative: pd.DataFrame
    actual_state: Any
    alternative_state: Any
    events: list[Any]

    @property
    def diff(self) -> Diff:
        return diff(self.actual_state, self.alternative_state)

    def __repr__(self) -> str:
        return (f"<WhatIf {self.stream_id!r}: {len(self.actual)} events actual, "
                f"{len(self.alternative)} alternative; {self.diff!r}>")


def what_if(store: EventStore, aggregate: Aggregate, stream_id: str, *,
            drop: Iterable[int] = (), insert: Mapping[int, Sequence[Any]] | None = None,
            replace: Mapping[int, Any] | None = None) -> WhatIf:
    """Replay an edited copy of a stream: drop versions, insert events, replace some.

    ``insert={after_version: [events]}`` (0 inserts before the first event);
    ``replace={version: event}``. Versions refer to the stored stream.

    >>> import eventlab as el
    >>> from eventlab.examples.bank import Account, Deposited, Opened
    >>> store = el.InMemoryEventStore()
    >>> _ = store.append("acc-1", [Opened("ada"), Deposited(10), Deposited(5)])
    >>> w = el.what_if(store, Account(), "acc-1", drop=[2], insert={3: [Deposited(1)]})
    >>> w.alternative_state.balance, dict(w.diff)["balance"]
    (6.0, Change(old=15.0, new=6.0))
    """
    import pandas as pd

    line = timeline(store, aggregate, stream_id)
    actual = line.history()
    current = line.version
    drop_set, insert, replace = set(drop), dict(insert or {}), dict(replace or {})
    for label, versions, low in (("drop", drop_set, 1), ("replace", replace, 1),
                                 ("insert after", insert, 0)):
        for v in versions:
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= current:
                raise InvalidInputError(
                    f"what_if on stream {stream_id!r}: cannot {label} version {v!r}; "
                    f"the stream has versions 1 to {current}")
    both = drop_set & set(replace)
    if both:
        raise InvalidInputError(
            f"what_if on stream {stream_id!r}: version(s) {sorted(both)} are both dropped "
            "and replaced")
    edited: list[tuple[Any, int | None, str]] = [(e, None, "inserted") for e in insert.get(0, ())]
    for event in line.events:
        v = event.version
        if v in replace:
            edited.append((replace[v], v, "replaced"))
        elif v not in drop_set:
            edited.append((event, v, "kept"))
        edited.extend((e, None, "inserted") for e in insert.get(v, ()))
    state, rows, events = line.state_at(0), [], []
    for version, (event, original, edit) in enumerate(edited, start=1):
        data = event.data if isinstance(event, (NewEvent, RecordedEvent)) else event
        kind = event.type if isinstance(event, RecordedEvent) else _type_name(store, data)
        try:
            state = aggregate.apply(state, replayed(aggregate, event)
                                    if isinstance(event, RecordedEvent) else data)
        except Exception as exc:
            raise ApplyError(f"{aggregate.name}.apply (what-if)", exc, stream_id=stream_id,
                             version=version, type=kind) from exc
        events.append(data)
        rows.append(_row({"version": version, "original_version": original, "type": kind,
                          "edit": edit}, state))
    alternative = _frame(pd, rows, ("version", "original_version", "type", "edit"),
                         line.state_at(0))
    if len(alternative):
        alternative["original_version"] = alternative["original_version"].astype("Int64")
    return WhatIf(stream_id, actual, alternative, line.state_at(), state, events)


def _type_name(store: EventStore, data: Any) -> str:
    return type(data).__name__ if isinstance(data, dict) else store.registry.name_of_class(
        type(data))


__all__ = ["MISSING", "Change", "Diff", "Timeline", "WhatIf", "diff", "history", "state_at",
           "state_record", "timeline", "what_if"]
