"""Read OCEL 2.0 object-centric logs (JSON, XML or SQLite) and flatten them onto one object type.

An OCEL 2.0 log relates each event to any number of objects of several types
(a purchase order, its invoices, their payments). A stream tells one object's
story, so an import picks one object type (``object_type=``): each object of
that type becomes a stream (``stream_prefix`` + the object's id) holding, in
time order, every event related to it. An event related to two such objects
is in both streams, as a separate event each; events related to none are left
out, and ``ImportSummary.left_out`` counts them.

An event's type is its OCEL event type, ``recorded_at`` its time. Its payload
holds its own attributes (typed as the log declares them: ``integer``,
``float``, ``boolean``, ``string``; ``time`` values as UTC ISO text) and two
fields of eventlab's:

* ``ocel_event_id``: the event's id in the log, the same in every stream holding it;
* ``objects``: every object the event relates to, of every type, as a list of
  ``{"id", "type", "qualifier"}`` sorted by type, id and qualifier.

Objects' own attributes and object-to-object relations are not events, and
are not imported. Times written without an offset are UTC unless
``timezone=`` names their zone (the example's XML and SQLite forms hold
times one hour ahead of its JSON's: they were written in Central European
Time without saying so). An event's id derives from what the import makes of
it (object type, object, OCEL event id, type, time, payload), never from the
file's bytes: the same log as JSON, XML or SQLite gives the same events with
the same ids, and importing it again writes nothing.

Every relation of an event, of every type, stays queryable with SQL:

>>> from pathlib import Path
>>> import eventlab as el
>>> log = (Path(el.__file__).parents[1] / "data" / "ocel20-p2p-example"
...        / "ocel20_example.jsonocel")
>>> store = el.connect()
>>> el.import_log(store, log, object_type="Purchase Order")
ImportSummary(cases=2, events=5, activities=3, written=5, left_out=8)
>>> touched = store.sql('''
...     select stream_id as purchase_order, type, o->>'id' as invoice
...     from events, unnest(json_extract(data, '$.objects[*]')) as r(o)
...     where o->>'type' = 'Invoice'
...     order by position''')
>>> print(touched.to_string(index=False))
purchase_order                  type invoice
           PO1        Insert Invoice      R1
           PO1        Insert Invoice      R2
           PO2 Create Purchase Order      R3
"""

from __future__ import annotations

import os
import uuid
import zlib
from collections.abc import Callable, Collection
from datetime import tzinfo
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from .compressed import content
from .errors import LogImportError
from .identity import NAMESPACE
from .ocel_files import read_json, read_sqlite, read_xml
from .ocel_log import EVENT_ID, OBJECTS, Event, OcelLog, zone_of

__all__ = ["EVENT_ID", "OBJECTS", "OcelLog", "flatten", "form_of", "read_ocel"]

#: How a file's name says which OCEL 2.0 form it holds (``.gz`` also for JSON and XML).
SUFFIXES = {".jsonocel": "json", ".xmlocel": "xml", ".sqlite": "sqlite", ".sqlite3": "sqlite",
            ".db": "sqlite"}
_IDS = uuid.uuid5(NAMESPACE, "ocel")     # the namespace of every OCEL event's id
_CHUNK = 1 << 20
_SNIFF = 1 << 16
_encode = msgspec.json.Encoder(order="sorted").encode


# -- which files are OCEL logs --------------------------------------------------------------

def form_of(path: Path) -> str | None:
    """``"json"``, ``"xml"`` or ``"sqlite"`` when ``path`` holds an OCEL log (by its
    name; a ``.json`` file by its first bytes), else None."""
    if path.is_dir():
        return None
    name = path.name.lower()
    for suffix, form in SUFFIXES.items():
        if name.endswith(suffix) or (form != "sqlite" and name.endswith(suffix + ".gz")):
            return form
    if name.endswith((".json", ".json.gz")):
        with open(path, "rb") as raw:
            try:
                head = content(raw).read(_SNIFF)
            except (EOFError, OSError, zlib.error):
                return None
        if any(key in head for key in (b'"objectTypes"', b'"eventTypes"', b'"ocel:')):
            return "json"
    return None


def read_ocel(path: str | os.PathLike[str], timezone: str | tzinfo | None = None,
              progress: Callable[[int], None] | None = None) -> OcelLog:
    """Read and check an OCEL 2.0 log in any of its forms; ``progress(n)`` gets the
    bytes read so far (JSON and XML)."""
    path = Path(path)
    form = form_of(path)
    if form is None:
        raise LogImportError(f"{path.name}: not an OCEL 2.0 log (.jsonocel, .xmlocel, .sqlite)")
    zone = zone_of(timezone)
    if form == "sqlite":
        log = read_sqlite(path, zone)
    else:
        text = _read_bytes(path, progress)
        reader = read_json if form == "json" else read_xml
        log = reader(path.name, text, zone)
    log.check_relations()
    if not log.events:
        raise LogImportError(f"{path.name} holds no events; nothing was imported")
    return log


def _read_bytes(path: Path, progress: Callable[[int], None] | None) -> bytes:
    chunks = []
    with open(path, "rb") as raw:
        handle = content(raw)
        try:
            while chunk := handle.read(_CHUNK):
                chunks.append(chunk)
                if progress is not None:
                    progress(raw.tell())
        except (EOFError, OSError, zlib.error) as exc:
            raise LogImportError(f"{path.name}: the compressed file is damaged or cut short "
                                 f"({exc}); nothing was imported") from None
    return b"".join(chunks)


# -- flattening -------------------------------------------------------------------------------

def flatten(log: OcelLog, object_type: str,
            attributes: Collection[str] | None = None) -> tuple[pa.Table, int]:
    """Import rows (as ``read_xes`` gives, plus ``event_id``) with one stream per object
    of ``object_type``, and how many events relate to no such object (left out)."""
    counts = log.type_counts()
    if object_type not in counts:
        raise LogImportError(
            f"{log.name} has no object type {object_type!r}; its object types: "
            f"{log.describe_types()}")
    if counts[object_type][1] == 0:
        raise LogImportError(f"{log.name}: no event relates to an object of type "
                             f"{object_type!r}; nothing was imported")
    keep = None if attributes is None else set(attributes)
    columns: dict[str, list[Any]] = {k: [] for k in ("line", "case", "activity", "timestamp",
                                                     "data", "event_id")}
    left_out = 0
    for line, event in enumerate(log.events, start=1):
        streams = sorted({oid for oid, _ in event.relations
                          if log.objects[oid] == object_type})
        if not streams:
            left_out += 1
            continue
        data = _encode(_payload(log, event, keep)).decode()
        for oid in streams:
            columns["line"].append(line)
            columns["case"].append(oid)
            columns["activity"].append(event.type)
            columns["timestamp"].append(event.time)
            columns["data"].append(data)
            columns["event_id"].append(str(uuid.uuid5(_IDS, _encode(
                [object_type, oid, event.id, event.type, event.time, data]).decode())))
    n = len(columns["line"])
    rows = pa.table({
        "line": pa.array(columns["line"], pa.int64()),
        "case": pa.array(columns["case"], pa.string()),
        "activity": pa.array(columns["activity"], pa.string()),
        "timestamp": pa.array(columns["timestamp"], pa.string()),
        "data": pa.array(columns["data"], pa.string()),
        "metadata": pa.nulls(n, pa.string()),
        "ord": pa.array(range(n), pa.int64()),
        "event_id": pa.array(columns["event_id"], pa.string()),
    })
    return rows, left_out


def _payload(log: OcelLog, event: Event, keep: set[str] | None) -> dict[str, Any]:
    """The event's attributes (those in ``keep``), its id and every object it relates to."""
    data = {k: v for k, v in event.attributes.items() if keep is None or k in keep}
    related = sorted(set(event.relations),
                     key=lambda r: (log.objects[r[0]], r[0], r[1] or ""))
    data[EVENT_ID] = event.id
    data[OBJECTS] = [{"id": oid, "type": log.objects[oid], "qualifier": qualifier}
                     for oid, qualifier in related]
    return data
