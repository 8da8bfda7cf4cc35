"""Leave out of an import batch the events a store already holds.

A store treats a batch whose event ids it already holds as a retry, but it
checks stream by stream; for a log of thousands of cases imported again that
is thousands of checks. Here one ``store.locate`` answers for every stream at
once. A stream whose first events in the batch are stored, in the same order
and nothing else of it is, keeps only the rest (none when all are stored): a
log that grew since the last import adds just its new events. A stream with
stored events after a new one, or elsewhere, cannot be imported.

>>> import eventlab as el, pyarrow as pa
>>> store = el.InMemoryEventStore()
>>> batch = pa.table({"stream_id": ["a"], "type": ["T"], "data": ["{}"], "metadata": [None],
...                   "recorded_at": pa.nulls(1, pa.timestamp("us", tz="UTC")),
...                   "event_id": ["00000000-0000-5000-8000-000000000001"]})
>>> store.append_batch(batch)
1
>>> drop_stored(store, batch, "the table").num_rows
0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from .errors import LogImportError

if TYPE_CHECKING:
    from ..store.base import EventStore


def drop_stored(store: EventStore, batch: pa.Table, where: str) -> pa.Table:
    """``batch`` without the events ``store`` already holds in place.

    Raises ``LogImportError`` naming a stream whose stored events are not the
    first of its rows in the batch, in the same order.
    """
    if batch.num_rows == 0 or store.head() == 0:
        return batch
    streams = batch.column("stream_id").to_pylist()
    ids = batch.column("event_id").to_pylist()
    found = store.locate([i for i in ids if i is not None])
    if not found:
        return batch
    seen: dict[str, int] = {}            # rows of each stream so far: the row's rank
    matches: dict[str, list[tuple[int, str, int]]] = {}   # rank, stored stream, version
    for stream_id, event_id in zip(streams, ids, strict=True):
        rank = seen[stream_id] = seen.get(stream_id, 0) + 1
        place = found.get(event_id) if event_id is not None else None
        if place is not None:
            matches.setdefault(stream_id, []).append((rank, *place))
    stored: dict[str, int] = {}
    for stream_id, rows in matches.items():
        same = [(rank, version) for rank, other, version in rows if other == stream_id]
        last = max(rank for rank, _, _ in rows)
        if not (len(rows) == len(same) == last
                and len({version - rank for rank, version in same}) == 1):
            raise LogImportError(
                f"{where}: stream {stream_id!r} already holds {len(same)} of its "
                f"{seen[stream_id]} events, but not as its first ones in the same order (or "
                "some are stored in another stream); was another version of this log "
                "imported? nothing was imported")
        stored[stream_id] = len(rows)
    counts: dict[str, int] = {}
    keep = []
    for stream_id in streams:
        counts[stream_id] = counts.get(stream_id, 0) + 1
        keep.append(counts[stream_id] > stored.get(stream_id, 0))
    return batch.filter(pc.equal(pa.array(keep), True))
