"""The repository: load an aggregate root from its stream, save its new events.

Loaded states are kept per stream (states are immutable), so loading a stream
that only this process writes reads nothing but the events it has not seen.
Optional snapshots every N events make a cold load of a long stream cheap.

>>> import eventlab as el
>>> from eventlab.examples.bank import Account, Deposit, Open
>>> repo = el.Repository(el.InMemoryEventStore(), Account())
>>> repo.execute("acc-1", Open("ada")).version
1
>>> repo.execute("acc-1", Deposit(10)).state.balance
10.0
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from .aggregate import Aggregate, AggregateRoot
from .errors import ApplyError, ConcurrencyError, InvalidInputError, SerializationError
from .statecodec import decode_state, encode_state
from .store.base import EventStore
from .store.rows import check_position


class Repository:
    """Gets and saves aggregate roots of one aggregate kind in one store.

    ``snapshot_every=N`` stores the state every N events and starts loads from
    the latest snapshot; ``cache_size`` bounds how many streams' states are kept.
    """

    def __init__(self, store: EventStore, aggregate: Aggregate, *,
                 snapshot_every: int | None = None, cache_size: int = 10_000) -> None:
        if snapshot_every is not None:
            check_position("snapshot_every", snapshot_every, 1)
        self.store = store
        self.aggregate = aggregate
        self.snapshot_every = snapshot_every
        self._cache: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._cache_size = cache_size
        self._generation = store.generation
        self._state_type = type(aggregate.initial_state())
        version = getattr(aggregate, "snapshot_version", 1)
        self.snapshot_key = f"{type(aggregate).__module__}.{aggregate.name}@{version}"

    def get(self, stream_id: str) -> AggregateRoot:
        """The root at the stream's current version (a new, empty root if none)."""
        current = self.store.stream_version(stream_id)
        if self._generation != self.store.generation:  # a stream was deleted meanwhile
            self._cache.clear()
            self._generation = self.store.generation
        version, state = self._start(stream_id, current)
        if version < current:
            events = self.store.load_events(stream_id, version + 1, current)
            try:
                state = self.aggregate.fold(events, state, stream_id=stream_id,
                                            first_version=version + 1)
            except ApplyError as failed:
                raise self._with_stored_type(failed) from failed.cause
            version += len(events)
        self._remember(stream_id, version, state)
        return AggregateRoot(self.aggregate, stream_id, state, version)

    def _start(self, stream_id: str, current: int) -> tuple[int, Any]:
        cached = self._cache.get(stream_id)
        if cached is not None and cached[0] <= current:
            self._cache.move_to_end(stream_id)
            return cached
        if self.snapshot_every:
            snapshot = self._load_snapshot(stream_id, current)
            if snapshot is not None:
                return snapshot
        return 0, self.aggregate.initial_state()

    def save(self, root: AggregateRoot, metadata: dict[str, Any] | None = None) -> int:
        """Append the root's pending events, expecting its loaded version."""
        if not root.pending:
            return root.version
        try:
            version = self.store.append(root.id, root.pending,
                                        expected_version=root.loaded_version,
                                        metadata=metadata)
        except ConcurrencyError:
            self._cache.pop(root.id, None)
            raise
        self._saved(root, version)
        return version

    def _saved(self, root: AggregateRoot, version: int) -> None:
        before = root.loaded_version
        root.loaded_version, root.pending = version, []
        self._remember(root.id, version, root.state)
        if self.snapshot_every and version // self.snapshot_every > before // self.snapshot_every:
            self.store.save_snapshot(root.id, self.snapshot_key, version,
                                     encode_state(root.state, "aggregate state"))

    def execute(self, stream_id: str, command: Any, retries: int = 0,
                metadata: dict[str, Any] | None = None) -> AggregateRoot:
        """Get, handle, save; on a concurrency conflict reload and retry ``retries`` times."""
        check_position("retries", retries)
        for attempt in range(retries + 1):
            root = self.get(stream_id)
            root.handle(command)
            try:
                self.save(root, metadata)
                return root
            except ConcurrencyError:
                if attempt == retries:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def snapshot(self, stream_id: str) -> int:
        """Store a snapshot of the stream's current state now; return its version."""
        root = self.get(stream_id)
        self.store.save_snapshot(stream_id, self.snapshot_key, root.version,
                                 encode_state(root.state, "aggregate state"))
        return root.version

    def forget(self, stream_id: str | None = None) -> None:
        """Drop cached states (one stream's, or all) so the next get reads the store."""
        if stream_id is None:
            self._cache.clear()
        else:
            self._cache.pop(stream_id, None)

    def _with_stored_type(self, failed: ApplyError) -> ApplyError:
        """The error, naming the event's stored type rather than its Python class."""
        if failed.stream_id is None or not failed.version:
            return failed
        stored = next(self.store.read_stream(failed.stream_id, failed.version,
                                             failed.version), None)
        if stored is None:
            return failed
        return ApplyError(failed.where, failed.cause, stream_id=failed.stream_id,
                          version=failed.version, position=stored.position, type=stored.type)

    def _remember(self, stream_id: str, version: int, state: Any) -> None:
        self._cache[stream_id] = (version, state)
        self._cache.move_to_end(stream_id)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _load_snapshot(self, stream_id: str, current: int) -> tuple[int, Any] | None:
        found = self.store.load_snapshot(stream_id, self.snapshot_key)
        if found is None or found[0] > current:
            return None
        version, text = found
        try:
            return version, decode_state(text, self._state_type)
        except SerializationError:
            return None  # a snapshot of an older state shape: replay instead



def save_all(saves: Iterable[tuple[Repository, AggregateRoot]],
             metadata: dict[str, Any] | None = None) -> list[int]:
    """Save several roots, of one or more repositories on one store, in one transaction:
    each expects its loaded version, and a conflict on any writes none.

    >>> import eventlab as el
    >>> from eventlab.examples.bank import Account, Open
    >>> repo = el.Repository(el.InMemoryEventStore(), Account())
    >>> a, b = repo.get("acc-a"), repo.get("acc-b")
    >>> _ = a.handle(Open("ada")), b.handle(Open("bob"))
    >>> save_all([(repo, a), (repo, b)])
    [1, 1]
    """
    pairs = [(repository, root) for repository, root in saves if root.pending]
    if not pairs:
        return []
    store = pairs[0][0].store
    if any(repository.store is not store for repository, _ in pairs):
        raise InvalidInputError("save_all saves roots of repositories on one store")
    try:
        versions = store.append_many(
            [(root.id, root.pending, root.loaded_version) for _, root in pairs], metadata)
    except ConcurrencyError:
        for repository, root in pairs:
            repository.forget(root.id)
        raise
    for (repository, root), version in zip(pairs, versions, strict=True):
        Repository._saved(repository, root, version)   # the class's own bookkeeping
    return versions
