"""A local DuckDB copy of a store's log, for SQL over stores that are not DuckDB.

SQL (``store.sql``, SQL projections, analytics) is DuckDB's, whatever holds the
log. A store that is not a DuckDB database keeps a mirror: a DuckDB database in
memory holding a copy of its log, brought up to date on each use by reading
only what is new (``read_arrow`` from the mirrored head on). A delete in the
source (its ``generation`` moves) makes the mirror copy the log again.

>>> import eventlab as el
>>> store = el.InMemoryEventStore()
>>> _ = store.append("a-1", [el.NewEvent({"n": 1}, type="T")])
>>> mirror = Mirror(store)
>>> mirror.synced().head()
1
>>> _ = store.append("a-1", [el.NewEvent({"n": 2}, type="T")])
>>> mirror.synced().head(), mirror.copied
(2, 2)
>>> mirror.close()
"""

from __future__ import annotations

import threading
from typing import Any

from .duckdb import DuckDBEventStore


class Mirror:
    """A DuckDB store in memory that follows ``source``'s log."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.store = DuckDBEventStore(registry=source.registry)
        self.copied = 0            # how many events were copied over the mirror's life
        self._generation = source.generation
        self._lock = threading.Lock()

    def synced(self) -> DuckDBEventStore:
        """The mirror, holding every event of the source up to its head now."""
        with self._lock:
            source, store = self.source, self.store
            head = source.head()   # first: a store may read its generation with it
            if source.generation != self._generation:
                store._clear_log()
                self._generation = source.generation
                head = source.head()
            if head > store.head():
                table = source.read_arrow(store.head() + 1, head)
                store._copy_arrow(table, head)
                self.copied += table.num_rows
        return store

    def close(self) -> None:
        self.store.close()
