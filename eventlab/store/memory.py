"""A pure-Python event store: the same contract as DuckDB, kept in lists and dicts.

Fast for unit tests and exercises; it keeps the encoded JSON, so what reads
back is exactly what a DuckDB store would give.

>>> store = InMemoryEventStore()
>>> store.head()
0
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from .base import EventStore
from .rows import Expected, Pending, Row, check_checkpoint_forward, check_stream_id


class InMemoryEventStore(EventStore):
    """Events in memory; thread-safe; gone when the object is."""

    def __init__(self, registry=None) -> None:
        super().__init__(registry)
        self._lock = threading.RLock()
        self._log: list[Row] = []                 # in position order
        self._streams: dict[str, list[Row]] = {}
        self._snapshots: dict[tuple[str, str], tuple[int, str]] = {}
        self._checkpoints: dict[str, tuple[int, str | None]] = {}
        self._ids: dict[str, Row] = {}            # every stored event by its id
        self._head = 0
        self.generation = 0   # bumped by every delete: cached states before it are stale

    def _write(self, groups: list[tuple[str, Expected, list[Pending]]]) -> list[int]:
        with self._lock:
            self._check_open()
            results, plan = [], []
            planned: dict[str, int] = {}
            for stream_id, expected, batch in groups:
                actual = planned.get(stream_id, self.stream_version(stream_id))
                retry = self._resolve(stream_id, expected, actual, batch)
                if retry is not None or not batch:
                    results.append(actual if retry is None else retry)
                    continue
                planned[stream_id] = actual + len(batch)
                results.append(actual + len(batch))
                plan.append((stream_id, actual, batch))
            position = self._head
            for stream_id, actual, batch in plan:
                rows = self._streams.setdefault(stream_id, [])
                for offset, p in enumerate(batch, start=1):
                    position += 1
                    row = Row(position, stream_id, actual + offset, p.type, p.data,
                              p.metadata, p.event_id or str(uuid.uuid4()), p.recorded_at,
                              p.schema)
                    rows.append(row)
                    self._log.append(row)
                    self._ids[row.event_id] = row
            wrote = position != self._head
            self._head = position
        if wrote:
            self._notify(position)
        return results

    def _find_ids(self, event_ids: list[str]) -> dict[str, tuple[str, int]]:
        found = {i: self._ids.get(i) for i in event_ids}
        return {i: (r.stream_id, r.version) for i, r in found.items() if r is not None}

    def _read_stream_rows(self, stream_id: str, from_version: int,
                          to_version: int | None) -> Iterable[Row]:
        with self._lock:
            self._check_open()
            rows = self._streams.get(stream_id, [])
            end = len(rows) if to_version is None else min(to_version, len(rows))
            return rows[from_version - 1:end]

    def _read_all_rows(self, from_position: int, limit: int | None,
                       types: list[str] | None) -> Iterable[Row]:
        with self._lock:
            self._check_open()
            start = bisect.bisect_left(self._log, from_position, key=lambda r: r.position)
            rows = self._log[start:]
        if types is not None:
            wanted = set(types)
            rows = [r for r in rows if r.type in wanted]
        return rows if limit is None else rows[:limit]

    def stream_version(self, stream_id: str) -> int:
        self._check_open()
        rows = self._streams.get(check_stream_id(stream_id))
        return rows[-1].version if rows else 0

    def head(self) -> int:
        self._check_open()
        return self._head

    def stream_ids(self) -> list[str]:
        with self._lock:
            self._check_open()
            return list(self._streams)

    def delete_stream(self, stream_id: str) -> int:
        check_stream_id(stream_id)
        with self._lock:
            self._check_open()
            self.generation += 1
            rows = self._streams.pop(stream_id, [])
            if rows:
                self._log = [r for r in self._log if r.stream_id != stream_id]
                for row in rows:
                    self._ids.pop(row.event_id, None)
            for key in [k for k in self._snapshots if k[0] == stream_id]:
                del self._snapshots[key]
            return len(rows)

    def save_snapshot(self, stream_id: str, key: str, version: int, state: str) -> None:
        with self._lock:
            self._check_open()
            self._snapshots[(stream_id, key)] = (version, state)

    def load_snapshot(self, stream_id: str, key: str) -> tuple[int, str] | None:
        self._check_open()
        return self._snapshots.get((stream_id, key))

    def load_checkpoint(self, name: str) -> tuple[int, str | None] | None:
        self._check_open()
        return self._checkpoints.get(name)

    def save_checkpoint(self, name: str, position: int, state: str | None,
                        reset: bool = False) -> None:
        with self._lock:
            self._check_open()
            if not reset:
                stored = self._checkpoints.get(name)
                check_checkpoint_forward(name, stored[0] if stored else None, position)
            self._checkpoints[name] = (position, state)

    @contextlib.contextmanager
    def _duckdb(self) -> Iterator[Any]:
        """The log copied into a temporary DuckDB database, for the block's duration."""
        from .duckdb import DuckDBEventStore

        with DuckDBEventStore() as temp:
            temp.copy_rows(self._read_all_rows(1, None, None))
            with temp._duckdb() as cursor:
                yield cursor

    def _release(self) -> None:
        with self._lock:   # what was kept goes at once, not when the object does
            self._log, self._streams, self._ids = [], {}, {}
            self._snapshots, self._checkpoints = {}, {}

    def __repr__(self) -> str:
        if self._closed:
            return "InMemoryEventStore(closed)"
        return f"InMemoryEventStore(streams={len(self._streams)}, head={self._head})"
