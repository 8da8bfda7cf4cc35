"""Copy a whole log from one store into another: ids, order, versions and times kept.

``el.copy(source, target)`` reads the source in slices of positions (``read_arrow``)
and appends what the target lacks (``append_batch`` with each row's version
pinned). Events already in the target, by id, are left out, so a copy can be
run again, or resumed after it was stopped: only what is missing is written.
Positions are the target's own; their order is the source's.

>>> import eventlab as el
>>> shared, local = el.InMemoryEventStore(), el.connect()
>>> _ = shared.append("a-1", [el.NewEvent({"n": 1}, type="T"), el.NewEvent({"n": 2}, type="T")])
>>> el.copy(shared, local), el.copy(shared, local)
(2, 0)
>>> [(e.stream_id, e.version, e.data) for e in local.read_all()]
[('a-1', 1, {'n': 1}), ('a-1', 2, {'n': 2})]
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .errors import InvalidInputError
from .store import EventStore

_COPIED = ["stream_id", "version", "type", "data", "metadata", "event_id", "recorded_at",
           "schema_version"]


def copy(source: EventStore, target: EventStore, *, slice_size: int = 50_000,
         progress: bool = False) -> int:
    """Append every event of ``source`` that ``target`` does not hold; return how many.

    An event the target holds under the same id but in another stream or at
    another version raises ``InvalidInputError``; a target stream that holds
    other events where the source's go raises ``ConcurrencyError``. Each
    slice is all or nothing.
    """
    if source is target:
        raise InvalidInputError("el.copy needs two stores; source and target are one")
    if not isinstance(slice_size, int) or slice_size < 1:
        raise InvalidInputError(f"slice_size must be a whole number from 1 up, got {slice_size!r}")
    head = source.head()
    bar = _progress(head, progress)
    written, position = 0, 1
    try:
        while position <= head:
            last = min(position + slice_size - 1, head)
            table = source.read_arrow(position, last)
            bar.update(last - position + 1)
            position = last + 1
            missing = _missing(table, target)
            if missing.num_rows:
                written += target.append_batch(missing.select(_COPIED))
    finally:
        bar.close()
    return written


def _missing(table: pa.Table, target: EventStore) -> pa.Table:
    """The rows whose ids ``target`` lacks; the others must sit where they sit here."""
    if table.num_rows == 0:
        return table
    ids = table.column("event_id").to_pylist()
    found = target.locate(ids)
    if not found:
        return table
    streams, versions = table.column("stream_id").to_pylist(), table.column("version").to_pylist()
    for event_id, stream_id, version in zip(ids, streams, versions, strict=True):
        where = found.get(event_id)
        if where is not None and where != (stream_id, version):
            raise InvalidInputError(
                f"event {event_id} is stream {stream_id!r} version {version} in the source "
                f"but stream {where[0]!r} version {where[1]} in the target: these are not "
                "copies of one log")
    return table.filter(pc.invert(pc.is_in(table.column("event_id"),
                                           pa.array(list(found), pa.string()))))


def _progress(total: int, shown: bool) -> Any:
    from .progress import Progress

    return Progress(total, "copy", unit="position", delay=0.0, shown=shown,
                    finished="copied", leave=True)
