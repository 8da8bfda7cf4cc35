"""Leave out of an import batch the events a DuckDB store already holds, in one query.

A store treats a batch whose event ids it already holds as a retry, but it
checks stream by stream; for a log of thousands of cases imported again that
is thousands of queries. On a ``DuckDBEventStore`` one join answers for every
stream at once. A stream whose first events in the batch are stored, in the
same order and nothing else of it is, keeps only the rest (none when all are
stored): a log that grew since the last import adds just its new events. A
stream with stored events after a new one, or elsewhere, cannot be imported.
Other stores get the batch unchanged and check it themselves.

>>> import eventlab as el, pyarrow as pa
>>> store = el.connect()
>>> batch = pa.table({"stream_id": ["a"], "type": ["T"], "data": ["{}"], "metadata": [None],
...                   "recorded_at": pa.nulls(1, pa.timestamp("us", tz="UTC")),
...                   "event_id": ["00000000-0000-5000-8000-000000000001"]})
>>> store.append_batch(batch)
1
>>> drop_stored(store, batch, "the table").num_rows
0
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pyarrow as pa

from .errors import LogImportError

if TYPE_CHECKING:
    from ..store.base import EventStore


def drop_stored(store: EventStore, batch: pa.Table, where: str) -> pa.Table:
    """``batch`` without the events ``store`` already holds in place (DuckDB stores).

    Raises ``LogImportError`` naming a stream whose stored events are not the
    first of its rows in the batch, in the same order.
    """
    from ..store.duckdb import TABLE, DuckDBEventStore

    if not isinstance(store, DuckDBEventStore) or batch.num_rows == 0:
        return batch
    view = f"_eventlab_import_{uuid.uuid4().hex}"
    con = store.connection
    try:
        con.register(view, batch.select(["stream_id", "event_id"]).append_column(
            "_n", pa.array(range(batch.num_rows), pa.int64())))
        rows = f"""(select _n, stream_id, event_id::uuid as event_id,
                           row_number() over (partition by stream_id order by _n) as rn,
                           count(*) over (partition by stream_id) as size
                    from {view})"""
        # per stream: its rows whose ids are stored, how many of those in this stream,
        # the last such row, and whether their versions follow the batch's order
        found = con.execute(f"""
            select b.stream_id, any_value(b.size), count(*),
                   count(*) filter (where e.stream_id = b.stream_id), max(b.rn),
                   count(distinct e.version - b.rn) filter (where e.stream_id = b.stream_id)
            from {rows} b join {TABLE} e on e.event_id = b.event_id
            group by b.stream_id""").fetchall()
        stored: dict[str, int] = {}
        for stream_id, size, matched, same_stream, last, offsets in found:
            if not (matched == same_stream == last and offsets == 1):
                raise LogImportError(
                    f"{where}: stream {stream_id!r} already holds {same_stream} of its "
                    f"{size} events, but not as its first ones in the same order (or "
                    "some are stored in another stream); was another version of this log "
                    "imported? nothing was imported")
            stored[stream_id] = matched
        if not stored:
            return batch
        known = pa.table({"stream_id": pa.array(list(stored), pa.string()),
                          "done": pa.array(list(stored.values()), pa.int64())})
        con.register(f"{view}_done", known)
        try:
            drop = con.sql(f"""select b._n from {rows} b join {view}_done d using (stream_id)
                               where b.rn <= d.done""").to_arrow_table().column(0)
        finally:
            con.unregister(f"{view}_done")
    finally:
        con.unregister(view)
        con.close()
    import pyarrow.compute as pc

    keep = pc.invert(pc.is_in(pa.array(range(batch.num_rows), pa.int64()), drop))
    return batch.filter(keep)
