"""The log as Arrow: the one schema every store's ``read_arrow`` gives.

Stored rows as columns: payload and metadata stay JSON text, ids canonical UUID
text, times UTC microseconds. Frames, SQL and exports start from this table,
whichever store it came from.

>>> LOG_SCHEMA.names[:4], len(LOG_SCHEMA)
(['position', 'stream_id', 'version', 'type'], 9)
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from .rows import Row

UTC_MICROS = pa.timestamp("us", tz="UTC")
#: The same values; ``to_pylist`` turns them into datetimes with ``datetime.timezone.utc``.
UTC_MICROS_PY = pa.timestamp("us", tz="+00:00")

LOG_SCHEMA = pa.schema([
    ("position", pa.int64()), ("stream_id", pa.string()), ("version", pa.int64()),
    ("type", pa.string()), ("data", pa.string()), ("metadata", pa.string()),
    ("event_id", pa.string()), ("recorded_at", UTC_MICROS), ("schema_version", pa.int32()),
])


def rows_table(rows: Sequence[Row]) -> pa.Table:
    """Stored rows (``Row``) as a table with ``LOG_SCHEMA``."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(LOG_SCHEMA)
    return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, LOG_SCHEMA,
                                                                      strict=True)],
                                schema=LOG_SCHEMA)


def conform(table: pa.Table) -> pa.Table:
    """A backend's read with exactly ``LOG_SCHEMA`` (names, types, time zone)."""
    if table.schema.equals(LOG_SCHEMA):
        return table
    return pa.Table.from_arrays([table.column(i).cast(f.type) for i, f in
                                 enumerate(LOG_SCHEMA)], schema=LOG_SCHEMA)
