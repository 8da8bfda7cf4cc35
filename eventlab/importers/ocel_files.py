"""The three forms of an OCEL 2.0 log (JSON, XML, SQLite) read into one ``OcelLog``.

Each reader knows its form's layout and says where a problem is in its own
terms: a JSON path (``events[3] (id 'e4')``), an XML line, or a SQLite table
and row. The values themselves are checked alike (``ocel_log``).

>>> from datetime import UTC
>>> log = read_json("tiny.jsonocel", b'''{"objectTypes": [{"name": "Order", "attributes": []}],
...     "eventTypes": [{"name": "Paid", "attributes": [{"name": "amount", "type": "float"}]}],
...     "objects": [{"id": "o1", "type": "Order"}],
...     "events": [{"id": "e1", "type": "Paid", "time": "2024-05-01T10:00:00+02:00",
...                 "attributes": [{"name": "amount", "value": "9.5"}],
...                 "relationships": [{"objectId": "o1", "qualifier": "paid"}]}]}''', UTC)
>>> event = log.events[0]
>>> event.time, event.attributes, event.relations
('2024-05-01T08:00:00.000000Z', {'amount': 9.5}, [('o1', 'paid')])
"""

from __future__ import annotations

import sqlite3
from datetime import tzinfo
from pathlib import Path
from typing import Any
from xml.parsers import expat

import msgspec

from .errors import LogImportError
from .ocel_log import Event, OcelLog, attributes_of, event_time, unique

_SQLITE_MAGIC = b"SQLite format 3\x00"


# -- JSON -------------------------------------------------------------------------------------

def read_json(name: str, text: bytes, zone: tzinfo) -> OcelLog:
    """The log in an OCEL 2.0 JSON document (``text``, the bytes of file ``name``)."""
    try:
        doc = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise LogImportError(f"{name}: not valid JSON ({exc}); nothing was imported") from None
    if not isinstance(doc, dict):
        raise LogImportError(f"{name}: not an OCEL 2.0 log: it holds a JSON "
                             f"{type(doc).__name__}, not an object")
    if any(str(key).startswith("ocel:") for key in doc):
        raise LogImportError(f"{name} is an OCEL 1.0 log; eventlab reads OCEL 2.0: convert "
                             "it first")
    kinds = _json_kinds(name, doc)
    objects: dict[str, str] = {}
    seen: dict[str, str] = {}
    for i, item in enumerate(_json_list(name, doc, "objects")):
        where = f"objects[{i}]"
        oid = _json_text(name, item, "id", where)
        unique(seen, oid, where, "object", name)
        objects[oid] = _json_text(name, item, "type", f"{where} (id {oid!r})")
    events = []
    seen = {}
    for i, item in enumerate(_json_list(name, doc, "events")):
        eid = _json_text(name, item, "id", f"events[{i}]")
        where = f"events[{i}] (id {eid!r})"
        unique(seen, eid, where, "event", name)
        events.append(_json_event(name, item, eid, where, kinds, zone))
    return OcelLog(name, events, objects)


def _json_event(name: str, item: dict[str, Any], eid: str, where: str,
                kinds: dict[str, dict[str, str]], zone: tzinfo) -> Event:
    kind = _json_text(name, item, "type", where)
    time = event_time(item.get("time"), zone, f"{name}, {where}", "field 'time'")
    pairs = []
    for j, attr in enumerate(_json_list(name, item, "attributes", where)):
        at = f"{where}, attributes[{j}]"
        pairs.append((_json_text(name, attr, "name", at), attr.get("value")))
    attributes = attributes_of(pairs, kinds.get(kind, {}), zone, f"{name}, {where}")
    relations = []
    for j, rel in enumerate(_json_list(name, item, "relationships", where)):
        at = f"{where}, relationships[{j}]"
        qualifier = rel.get("qualifier")
        relations.append((_json_text(name, rel, "objectId", at),
                          None if qualifier is None else str(qualifier)))
    return Event(eid, kind, time, attributes, relations, where)


def _json_kinds(name: str, doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each event type's declared attribute kinds (``eventTypes``)."""
    kinds = {}
    for i, item in enumerate(_json_list(name, doc, "eventTypes")):
        where = f"eventTypes[{i}]"
        declared = {}
        for j, attr in enumerate(_json_list(name, item, "attributes", where)):
            at = f"{where}, attributes[{j}]"
            declared[_json_text(name, attr, "name", at)] = attr.get("type")
        kinds[_json_text(name, item, "name", where)] = declared
    return kinds


def _json_list(name: str, doc: Any, key: str, where: str = "") -> list[dict[str, Any]]:
    """``doc[key]``, a list of JSON objects (absent: empty)."""
    found = doc.get(key) or []
    place = f"{where}, " if where else ""
    if not isinstance(found, list):
        raise LogImportError(f"{name}, {place}field {key!r}: not a list; nothing was imported")
    for i, item in enumerate(found):
        if not isinstance(item, dict):
            raise LogImportError(f"{name}, {place}{key}[{i}]: not a JSON object; nothing "
                                 "was imported")
    return found


def _json_text(name: str, item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if value is None or value == "":
        problem = "missing" if value is None else "empty"
    elif isinstance(value, (dict, list)):
        problem = "not text"
    else:
        return str(value)
    raise LogImportError(f"{name}, {where}: field {key!r} is {problem}; nothing was imported")


# -- XML --------------------------------------------------------------------------------------

def read_xml(name: str, text: bytes, zone: tzinfo) -> OcelLog:
    """The log in an OCEL 2.0 XML document (``text``, the bytes of file ``name``)."""
    reader = _XmlReader(name, zone)
    try:
        reader.parser.Parse(text, True)
    except expat.ExpatError as exc:
        if reader.root is None:
            raise LogImportError(f"{name} is empty or not XML: it holds no OCEL log") from None
        raise LogImportError(f"{name}, line {exc.lineno}: not well-formed XML "
                             f"({expat.errors.messages[exc.code]}); nothing was "
                             "imported") from None
    return OcelLog(name, reader.events, reader.objects)


class _XmlReader:
    """expat callbacks collecting declarations, objects and events."""

    def __init__(self, name: str, zone: tzinfo) -> None:
        self.name, self.zone = name, zone
        self.parser = expat.ParserCreate()
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end
        self.parser.CharacterDataHandler = self.text
        self.root: str | None = None
        self.path: list[str] = []
        self.kinds: dict[str, dict[str, str]] = {}
        self.objects: dict[str, str] = {}
        self.events: list[Event] = []
        self.event: dict[str, Any] | None = None
        self.value: list[str] | None = None
        self.declaring: str | None = None
        self.seen: dict[str, str] = {}
        self.seen_objects: dict[str, str] = {}

    def at(self) -> str:
        return f"{self.name}, line {self.parser.CurrentLineNumber}"

    def need(self, attrs: dict[str, str], key: str, tag: str) -> str:
        value = attrs.get(key)
        if not value:
            raise LogImportError(f"{self.at()}: <{tag}> has no {key!r} attribute; nothing "
                                 "was imported")
        return value

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.path.append(tag)
        if self.root is None:
            self.root = tag
            if tag != "log":
                raise LogImportError(f"{self.at()}: not an OCEL 2.0 log: the root element "
                                     f"is <{tag}>, not <log>")
        path = tuple(self.path)
        if path == ("log", "global"):
            raise LogImportError(f"{self.name} is an OCEL 1.0 log; eventlab reads OCEL 2.0: "
                                 "convert it first")
        if path == ("log", "event-types", "event-type"):
            self.declaring = self.need(attrs, "name", tag)
            self.kinds[self.declaring] = {}
        elif path == ("log", "event-types", "event-type", "attributes", "attribute"):
            declared = self.kinds[self.declaring or ""]
            declared[self.need(attrs, "name", tag)] = attrs.get("type", "")
        elif path == ("log", "objects", "object"):
            oid = self.need(attrs, "id", tag)
            line = f"line {self.parser.CurrentLineNumber}"
            unique(self.seen_objects, oid, line, "object", self.name)
            self.objects[oid] = self.need(attrs, "type", tag)
        elif path == ("log", "events", "event"):
            self.start_event(attrs)
        elif path == ("log", "events", "event", "attributes", "attribute") and self.event:
            self.event["pairs"].append([self.need(attrs, "name", tag), None])
            self.value = []
        elif path == ("log", "events", "event", "objects", "relationship") and self.event:
            self.event["relations"].append((self.need(attrs, "object-id", tag),
                                            attrs.get("qualifier")))

    def start_event(self, attrs: dict[str, str]) -> None:
        eid = self.need(attrs, "id", "event")
        where = f"line {self.parser.CurrentLineNumber} (event {eid!r})"
        unique(self.seen, eid, where, "event", self.name)
        self.event = {"id": eid, "type": self.need(attrs, "type", "event"), "where": where,
                      "time": event_time(attrs.get("time"), self.zone,
                                         f"{self.name}, {where}", "attribute 'time'"),
                      "pairs": [], "relations": []}

    def text(self, data: str) -> None:
        if self.value is not None:
            self.value.append(data)

    def end(self, tag: str) -> None:
        self.path.pop()
        if tag == "attribute" and self.value is not None and self.event is not None:
            self.event["pairs"][-1][1] = "".join(self.value)
            self.value = None
        elif tag == "event" and self.event is not None and len(self.path) == 2:
            self.events.append(self.finish(self.event))
            self.event = None

    def finish(self, event: dict[str, Any]) -> Event:
        where = event["where"]
        attributes = attributes_of([tuple(p) for p in event["pairs"]],
                                   self.kinds.get(event["type"], {}), self.zone,
                                   f"{self.name}, {where}")
        return Event(event["id"], event["type"], event["time"], attributes,
                     event["relations"], where)


# -- SQLite -----------------------------------------------------------------------------------

_KINDS_BY_COLUMN = (("INT", "integer"), ("BOOL", "boolean"), ("REAL", "float"),
                    ("FLOA", "float"), ("DOUB", "float"), ("TIMESTAMP", "time"),
                    ("DATE", "time"), ("TEXT", "string"), ("CHAR", "string"))


def read_sqlite(path: Path, zone: tzinfo) -> OcelLog:
    """The log in an OCEL 2.0 SQLite database, opened read-only."""
    name = path.name
    with open(path, "rb") as raw:
        if raw.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
            raise LogImportError(f"{name}: not an OCEL 2.0 SQLite log: the file is not a "
                                 "SQLite database")
    con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return _sqlite_log(con, name, zone)
    except sqlite3.Error as exc:
        raise LogImportError(f"{name}: cannot read it as an OCEL 2.0 SQLite log ({exc}); "
                             "nothing was imported") from None
    finally:
        con.close()


def _sqlite_log(con: sqlite3.Connection, name: str, zone: tzinfo) -> OcelLog:
    tables = {row[0] for row in con.execute(
        "select name from sqlite_master where type in ('table', 'view')")}
    missing = [t for t in ("event", "object", "event_object", "event_map_type")
               if t not in tables]
    if missing:
        raise LogImportError(f"{name}: not an OCEL 2.0 SQLite log: it has no table "
                             f"{', '.join(missing)}; nothing was imported")
    objects: dict[str, str] = {}
    seen: dict[str, str] = {}
    for row, (oid, kind) in enumerate(con.execute("select ocel_id, ocel_type from object "
                                                  "order by rowid"), start=1):
        where = f"table object, row {row}"
        oid = _cell(name, oid, where, "ocel_id")
        unique(seen, oid, where, "object", name)
        objects[oid] = _cell(name, kind, where, "ocel_type")
    tables_of = dict(con.execute("select ocel_type, ocel_type_map from event_map_type"))
    events = _sqlite_events(con, name, tables_of, tables, zone)
    by_id = {event.id: event for event in events}
    rows = con.execute("select ocel_event_id, ocel_object_id, ocel_qualifier "
                       "from event_object order by rowid")
    for row, (eid, oid, qualifier) in enumerate(rows, start=1):
        where = f"table event_object, row {row}"
        event = by_id.get(_cell(name, eid, where, "ocel_event_id"))
        if event is None:
            raise LogImportError(f"{name}, {where}: event {eid!r} is not in table event; "
                                 "nothing was imported")
        oid = _cell(name, oid, where, "ocel_object_id")
        if oid not in objects:
            raise LogImportError(f"{name}, {where} (event {eid!r}): a relationship to "
                                 f"object {oid!r}, which is not in table object; nothing "
                                 "was imported")
        event.relations.append((oid, None if qualifier is None else str(qualifier)))
    return OcelLog(name, events, objects)


def _sqlite_events(con: sqlite3.Connection, name: str, tables_of: dict[str, str],
                   tables: set[str], zone: tzinfo) -> list[Event]:
    """The events in the order of table ``event``, each with the row of its type's table."""
    details: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
    events = []
    seen: dict[str, str] = {}
    for row, (eid, kind) in enumerate(con.execute("select ocel_id, ocel_type from event "
                                                  "order by rowid"), start=1):
        at = f"table event, row {row}"
        eid = _cell(name, eid, at, "ocel_id")
        unique(seen, eid, at, "event", name)
        kind = _cell(name, kind, at, "ocel_type")
        table = f"event_{tables_of.get(kind, '')}"
        if kind not in tables_of or table not in tables:
            raise LogImportError(f"{name}, {at}: event type {kind!r} has no table of its "
                                 "own (see table event_map_type); nothing was imported")
        if table not in details:
            details[table] = _sqlite_details(con, name, table, zone)
        if eid not in details[table]:
            raise LogImportError(f"{name}, {at}: event {eid!r} has no row in table {table} "
                                 "(its time and attributes); nothing was imported")
        time, attributes = details[table][eid]
        events.append(Event(eid, kind, time, attributes, [], f"{at} (event {eid!r})"))
    return events


def _sqlite_details(con: sqlite3.Connection, name: str, table: str,
                    zone: tzinfo) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each event's time and typed attributes in one event type's table, by event id."""
    declared = {column: _column_kind(kind) for column, kind in
                con.execute("select name, type from pragma_table_info(?)", [table])}
    cursor = con.execute('select * from "' + table.replace('"', '""') + '" order by rowid')
    columns = [d[0] for d in cursor.description]
    for needed in ("ocel_id", "ocel_time"):
        if needed not in columns:
            raise LogImportError(f"{name}: table {table} has no column {needed!r}; nothing "
                                 "was imported")
    kinds = {column: kind for column, kind in declared.items() if kind is not None}
    found = {}
    seen: dict[str, str] = {}
    for row, values in enumerate(cursor, start=1):
        cells = dict(zip(columns, values, strict=True))
        at = f"table {table}, row {row}"
        eid = _cell(name, cells.pop("ocel_id"), at, "ocel_id")
        unique(seen, eid, at, "event", name)
        where = f"{name}, {at} (event {eid!r})"
        time = event_time(cells.pop("ocel_time"), zone, where, "column 'ocel_time'")
        found[eid] = (time, attributes_of(list(cells.items()), kinds, zone, where))
    return found


def _column_kind(declared: str) -> str | None:
    """An OCEL attribute kind from a SQLite column's declared type."""
    upper = (declared or "").upper()
    return next((kind for part, kind in _KINDS_BY_COLUMN if part in upper), None)


def _cell(name: str, value: Any, where: str, column: str) -> str:
    if value is None or value == "":
        raise LogImportError(f"{name}, {where}: column {column!r} is empty; nothing was "
                             "imported")
    return str(value)
