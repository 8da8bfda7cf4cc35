"""A scratch DuckDB database in memory, shared by everything that runs SQL over Arrow.

Opening a DuckDB database costs tens of milliseconds; a cursor of an open one
about one. Each use gets a cursor of its own, and what a cursor registers (an
Arrow table as a view) only that cursor sees.

>>> import pyarrow as pa
>>> with scratch_cursor() as cursor:
...     _ = cursor.register("t", pa.table({"x": [1, 2]}))
...     cursor.execute("select sum(x) from t").fetchall()
[(3,)]
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import duckdb

_database: duckdb.DuckDBPyConnection | None = None
_lock = threading.Lock()


@contextlib.contextmanager
def scratch_cursor() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of the scratch database, times in UTC; closed when the block ends."""
    global _database
    with _lock:
        if _database is None:
            _database = duckdb.connect()
    cursor = _database.cursor()
    try:
        cursor.execute("set TimeZone = 'UTC'")
        yield cursor
    finally:
        cursor.close()
