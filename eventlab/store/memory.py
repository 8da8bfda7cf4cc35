"""A pure-Python event store: the same contract as DuckDB, kept in lists and dicts.

Fast for unit tests and exercises; it keeps the encoded JSON, so what reads
back is exactly what a DuckDB store would give.

>>> store = InMemoryEventStore()
>>> store.head()
0
"""

from __future__ import annotations

import bisect
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from .base import EventStore
from .rows import Pending, Row, StreamMoved


def _position(row: Row) -> int:
    return row.position


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
        self._mirror: Any = None

    def _writing(self) -> threading.RLock:
        return self._lock

    def _versions(self, stream_ids: list[str]) -> dict[str, int]:
        streams = self._streams
        return {s: streams[s][-1].version if s in streams else 0 for s in stream_ids}

    def _insert(self, plan: list[tuple[str, int, list[Pending]]]) -> int:
        checked: set[str] = set()
        for stream_id, before, _ in plan:   # every stream checked first: all or nothing
            if stream_id not in checked:
                checked.add(stream_id)
                if len(self._streams.get(stream_id, ())) != before:
                    raise StreamMoved(stream_id)
        position = self._head
        new_id = uuid.uuid4
        for stream_id, before, batch in plan:
            rows = self._streams.setdefault(stream_id, [])
            for offset, p in enumerate(batch, start=1):
                position += 1
                row = Row(position, stream_id, before + offset, p.type, p.data,
                          p.metadata, p.event_id or str(new_id()), p.recorded_at, p.schema)
                rows.append(row)
                self._log.append(row)
                self._ids[row.event_id] = row
        self._head = position
        return position

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
        rows = self._rows(from_position, None, None, types)
        return rows if limit is None else rows[:limit]

    def _rows(self, from_position: int, to_position: int | None, stream_id: str | None,
              types: list[str] | None) -> list[Row]:
        """The stored rows in that range of positions (of one stream, of some types)."""
        with self._lock:
            self._check_open()
            rows = self._streams.get(stream_id, []) if stream_id is not None else self._log
            start = bisect.bisect_left(rows, from_position, key=_position)
            end = (len(rows) if to_position is None
                   else bisect.bisect_right(rows, to_position, key=_position))
            rows = rows[start:end]
        if types is not None:
            wanted = set(types)
            rows = [r for r in rows if r.type in wanted]
        return rows

    def head(self) -> int:
        self._check_open()
        return self._head

    def stream_ids(self) -> list[str]:
        with self._lock:
            self._check_open()
            return list(self._streams)

    def _delete(self, stream_id: str) -> int:
        self.generation += 1
        rows = self._streams.pop(stream_id, [])
        if rows:
            self._log = [r for r in self._log if r.stream_id != stream_id]
            for row in rows:
                self._ids.pop(row.event_id, None)
        for key in [k for k in self._snapshots if k[0] == stream_id]:
            del self._snapshots[key]
        return len(rows)

    # -- snapshots and checkpoints ------------------------------------------------------

    def _put_snapshot(self, stream_id: str, key: str, version: int, state: str) -> None:
        self._snapshots[(stream_id, key)] = (version, state)

    def _get_snapshot(self, stream_id: str, key: str) -> tuple[int, str] | None:
        return self._snapshots.get((stream_id, key))

    def _put_checkpoint(self, name: str, position: int, state: str | None) -> None:
        self._checkpoints[name] = (position, state)

    def _get_checkpoint(self, name: str) -> tuple[int, str | None] | None:
        return self._checkpoints.get(name)

    # -- the log as Arrow and SQL -------------------------------------------------------

    def _read_arrow(self, from_position: int, to_position: int | None,
                    stream_id: str | None, types: list[str] | None) -> Any:
        from .arrow import rows_table

        return rows_table(self._rows(from_position, to_position, stream_id, types))

    def _sql_store(self) -> Any:
        """A DuckDB database in memory mirroring this log; each use copies what is new."""
        from .mirror import Mirror

        with self._lock:
            self._check_open()
            if self._mirror is None:
                self._mirror = Mirror(self)
        return self._mirror.synced()

    def _release(self) -> None:
        with self._lock:   # what was kept goes at once, not when the object does
            self._log, self._streams, self._ids = [], {}, {}
            self._snapshots, self._checkpoints = {}, {}
            if self._mirror is not None:
                self._mirror.close()

    def __repr__(self) -> str:
        if self._closed:
            return "InMemoryEventStore(closed)"
        return f"InMemoryEventStore(streams={len(self._streams)}, head={self._head})"
