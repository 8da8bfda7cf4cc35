"""Importing OCEL 2.0 logs: counts match an independent parse of each form, the three
forms give the same store, relations stay queryable, and bad input writes nothing."""

from __future__ import annotations

import copy
import gzip
import json
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

import eventlab as el
from eventlab.importers import LogImportError

DATA = Path(__file__).resolve().parents[1] / "data" / "ocel20-p2p-example"
JSON_LOG = DATA / "ocel20_example.jsonocel"
XML_LOG = DATA / "ocel20_example.xmlocel"
SQLITE_LOG = DATA / "ocel20_example.sqlite"
PO = "Purchase Order"
# The XML and SQLite forms of the example write times without an offset, in Central
# European Time (one hour ahead of the JSON form's UTC times).
WRITTEN_IN = "Europe/Berlin"
FORMS = [(JSON_LOG, None), (XML_LOG, WRITTEN_IN), (SQLITE_LOG, WRITTEN_IN)]


def raw_json(path: Path = JSON_LOG) -> dict:
    return json.loads(path.read_text())


def expected_from_json(object_type: str = PO) -> dict:
    """Per object of the type: its events' (time, type) in time order; and the events
    related to no such object. Read with the json module alone."""
    doc = raw_json()
    kind = {o["id"]: o["type"] for o in doc["objects"]}
    streams: dict[str, list] = {o: [] for o, t in kind.items() if t == object_type}
    left_out = 0
    for event in doc["events"]:
        mine = {r["objectId"] for r in event["relationships"]
                if kind[r["objectId"]] == object_type}
        left_out += not mine
        for oid in mine:
            streams[oid].append((datetime.fromisoformat(event["time"]), event["type"]))
    return {"streams": {o: sorted(e) for o, e in streams.items() if e},
            "left_out": left_out}


def stored(store: el.EventStore) -> dict[str, list]:
    found: dict[str, list] = {}
    for e in store.read_all():
        found.setdefault(e.stream_id, []).append((e.recorded_at, e.type))
    return found


def import_po(store: el.EventStore, path: Path = JSON_LOG, timezone: str | None = None,
              **options) -> el.importers.ImportSummary:
    return el.import_log(store, path, object_type=PO, timezone=timezone, **options)


def frame(store: el.EventStore) -> pd.DataFrame:
    return store.to_df().drop(columns=["metadata"])


# -- what an import makes of the example --------------------------------------------------

def test_counts_match_the_json_read_with_the_json_module(store):
    expected = expected_from_json()
    summary = import_po(store)
    assert stored(store) == expected["streams"]
    assert summary.cases == len(expected["streams"]) == 2
    assert summary.events == store.head() == sum(map(len, expected["streams"].values()))
    assert summary.left_out == expected["left_out"] == 8
    assert summary.activities == len({t for e in expected["streams"].values() for _, t in e})
    assert "left_out=8" in repr(summary)


def test_sqlite_counts_match_sql_over_the_file():
    con = sqlite3.connect(SQLITE_LOG)
    per_object = dict(con.execute(
        "select eo.ocel_object_id, count(distinct eo.ocel_event_id) from event_object eo "
        "join object o on o.ocel_id = eo.ocel_object_id where o.ocel_type = ? group by 1",
        [PO]).fetchall())
    left_out = con.execute(
        "select count(*) from event e where not exists (select 1 from event_object eo "
        "join object o on o.ocel_id = eo.ocel_object_id "
        "where eo.ocel_event_id = e.ocel_id and o.ocel_type = ?)", [PO]).fetchone()[0]
    con.close()
    store = el.InMemoryEventStore()
    summary = import_po(store, SQLITE_LOG, WRITTEN_IN)
    assert {s: store.stream_version(s) for s in store.stream_ids()} == per_object
    assert summary.left_out == left_out


def test_xml_counts_and_times_match_element_tree():
    root = ET.parse(XML_LOG).getroot()
    kind = {o.get("id"): o.get("type") for o in root.iter("object")}
    expected: dict[str, list] = {}
    for event in root.find("events"):
        when = datetime.fromisoformat(event.get("time"))
        when = when.replace(tzinfo=when.tzinfo or ZoneInfo(WRITTEN_IN))
        for rel in event.find("objects"):
            if kind[rel.get("object-id")] == PO:
                expected.setdefault(rel.get("object-id"), []).append(
                    (when.astimezone(UTC), event.get("type")))
    store = el.InMemoryEventStore()
    import_po(store, XML_LOG, WRITTEN_IN)
    assert stored(store) == {o: sorted(e) for o, e in expected.items()}


def test_the_three_forms_give_the_same_store():
    frames = []
    for path, timezone in FORMS:
        store = el.connect()
        import_po(store, path, timezone)
        frames.append(frame(store))
    assert len(frames[0]) == 5
    for other in frames[1:]:
        pd.testing.assert_frame_equal(other, frames[0])   # ids, positions and payloads too


def test_without_a_timezone_naive_times_are_utc():
    from_json, from_xml = el.InMemoryEventStore(), el.InMemoryEventStore()
    import_po(from_json, JSON_LOG)
    import_po(from_xml, XML_LOG)
    shifted = [(e.stream_id, e.recorded_at - timedelta(hours=1)) for e in from_xml.read_all()]
    assert shifted == [(e.stream_id, e.recorded_at) for e in from_json.read_all()]
    with pytest.raises(LogImportError, match="timezone='Mars/Olympus' is not a time zone"):
        import_po(from_xml, XML_LOG, "Mars/Olympus")


def test_payload_holds_attributes_event_id_and_every_related_object():
    doc = raw_json()
    kind = {o["id"]: o["type"] for o in doc["objects"]}
    raw = next(e for e in doc["events"] if e["id"] == "e3")
    store = el.InMemoryEventStore()
    import_po(store)
    event = next(store.read_stream("PO1"))
    assert event.type == raw["type"]
    assert event.recorded_at == datetime.fromisoformat(raw["time"])
    related = sorted(({"id": r["objectId"], "type": kind[r["objectId"]],
                       "qualifier": r["qualifier"]} for r in raw["relationships"]),
                     key=lambda o: (o["type"], o["id"]))
    expected = {a["name"]: a["value"] for a in raw["attributes"]}
    assert event.data == {**expected, "ocel_event_id": "e3", "objects": related}
    assert event.metadata == {}


def test_relations_are_queryable_with_sql(store):
    doc = raw_json()
    kind = {o["id"]: o["type"] for o in doc["objects"]}
    expected = set()
    for event in doc["events"]:
        ids = [r["objectId"] for r in event["relationships"]]
        if "PO1" in ids:
            expected |= {i for i in ids if kind[i] == "Invoice"}
    import_po(store)
    touched = store.sql("""
        select distinct o->>'id' as invoice
        from events, unnest(json_extract(data, '$.objects[*]')) as r(o)
        where stream_id = 'PO1' and o->>'type' = 'Invoice'""")
    assert set(touched["invoice"]) == expected == {"R1", "R2"}
    qualifiers = store.sql("""
        select o->>'qualifier' as q from events,
               unnest(json_extract(data, '$.objects[*]')) as r(o)
        where data->>'ocel_event_id' = 'e5' and o->>'id' = 'R1'""")
    assert qualifiers["q"].tolist() == ["Invoice created with identifier"]


def test_another_object_type_gives_other_streams():
    store = el.InMemoryEventStore()
    summary = el.import_log(store, JSON_LOG, object_type="Invoice")
    expected = expected_from_json("Invoice")
    assert stored(store) == expected["streams"]
    assert summary.left_out == expected["left_out"]


def test_attributes_limit_the_event_attributes_only():
    store = el.InMemoryEventStore()
    import_po(store, attributes=["po_editor"])
    assert {tuple(sorted(e.data)) for e in store.read_all()} == {
        ("objects", "ocel_event_id"), ("objects", "ocel_event_id", "po_editor")}


# -- importing again is a safe retry -----------------------------------------------------

def test_reimport_in_any_form_writes_nothing(store):
    assert import_po(store).written == 5
    ids = sorted(str(e.event_id) for e in store.read_all())
    for path, timezone in FORMS:
        again = import_po(store, path, timezone)
        assert (again.written, again.already_stored) == (0, 5)
    assert store.head() == 5 and sorted(str(e.event_id) for e in store.read_all()) == ids
    assert {e.event_id.version for e in store.read_all()} == {5}


def test_a_duckdb_file_keeps_ids_across_opening(tmp_path):
    path = tmp_path / "p2p.duckdb"
    with el.connect(path) as store:
        import_po(store, SQLITE_LOG, WRITTEN_IN)
        before = frame(store)
    with el.connect(path) as store:
        assert import_po(store, JSON_LOG).written == 0
        pd.testing.assert_frame_equal(frame(store), before)


def test_other_options_make_other_events():
    store = el.InMemoryEventStore()
    import_po(store)
    assert import_po(store, stream_prefix="po-").written == 5
    assert import_po(store, stream_prefix="po-").written == 0
    assert import_po(store, XML_LOG).written == 5          # other times: other events
    assert el.import_log(store, JSON_LOG, object_type="Invoice").written == 9
    assert len({e.event_id for e in store.read_all()}) == store.head() == 24


def test_json_named_json_or_gzipped_is_read_too(tmp_path):
    plain = tmp_path / "p2p.json"
    shutil.copy(JSON_LOG, plain)
    packed = tmp_path / "p2p.jsonocel.gz"
    packed.write_bytes(gzip.compress(JSON_LOG.read_bytes()))
    reference = el.InMemoryEventStore()
    import_po(reference)
    for path in (plain, packed):
        store = el.InMemoryEventStore()
        assert import_po(store, path).written == 5
        pd.testing.assert_frame_equal(frame(store), frame(reference))
        assert import_po(store).written == 0


# -- an event related to several objects, and typed attributes --------------------------

def small_log(events: list[dict], objects: list[dict] | None = None,
              event_types: list[dict] | None = None) -> dict:
    return {"objectTypes": [{"name": "Order", "attributes": []},
                            {"name": "Item", "attributes": []}],
            "eventTypes": event_types or [],
            "objects": objects if objects is not None else [
                {"id": "o1", "type": "Order"}, {"id": "o2", "type": "Order"},
                {"id": "i1", "type": "Item"}],
            "events": events}


def write(tmp_path: Path, doc: dict, name: str = "log.jsonocel") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def rel(oid: str, qualifier: str = "q") -> dict:
    return {"objectId": oid, "qualifier": qualifier}


def test_an_event_of_two_objects_is_in_both_streams(tmp_path):
    log = write(tmp_path, small_log([
        {"id": "e1", "type": "Merged", "time": "2024-01-01T10:00:00Z",
         "relationships": [rel("o2"), rel("o1"), rel("i1"), rel("o1", "again")]},
        {"id": "e2", "type": "Packed", "time": "2024-01-01T11:00:00Z",
         "relationships": [rel("i1")]}]))
    store = el.InMemoryEventStore()
    summary = el.import_log(store, log, object_type="Order")
    assert (summary.cases, summary.events, summary.left_out) == (2, 2, 1)
    first, second = next(store.read_stream("o1")), next(store.read_stream("o2"))
    assert first.event_id != second.event_id
    assert first.data == second.data
    assert [(o["id"], o["qualifier"]) for o in first.data["objects"]] == [
        ("i1", "q"), ("o1", "again"), ("o1", "q"), ("o2", "q")]


def test_attributes_take_their_declared_types(tmp_path):
    declared = [{"name": "Payment Received", "attributes": [
        {"name": n, "type": t} for n, t in (("count", "integer"), ("amount", "float"),
                                            ("urgent", "boolean"), ("due", "time"),
                                            ("note", "string"))]}]
    values = {"count": "3", "amount": 9.5, "urgent": "true", "due": "2024-02-01T10:00:00+01:00",
              "note": "x", "extra": 7}
    log = write(tmp_path, small_log([
        {"id": "e1", "type": "Payment Received", "time": "2024-01-01T10:00:00Z",
         "attributes": [{"name": k, "value": v} for k, v in values.items()],
         "relationships": [rel("o1")]}], event_types=declared))
    store = el.InMemoryEventStore()
    el.import_log(store, log, object_type="Order")
    data = next(store.read_stream("o1")).data
    assert {k: data[k] for k in values} == {
        "count": 3, "amount": 9.5, "urgent": True, "due": "2024-02-01T09:00:00.000000Z",
        "note": "x", "extra": 7}


# -- bad input: a clear error naming the file and the place; nothing written -------------

@pytest.fixture
def filled() -> el.EventStore:
    """A store holding the example once (as purchase orders): a failed import leaves it so."""
    store = el.connect()
    import_po(store)
    return store


def refused(store: el.EventStore, path, match: str, **options) -> None:
    before = frame(store)
    with pytest.raises(LogImportError, match=match):
        el.import_log(store, path, **options)
    pd.testing.assert_frame_equal(frame(store), before)


def broken_json(tmp_path: Path, change) -> Path:
    doc = copy.deepcopy(raw_json())
    change(doc)
    return write(tmp_path, doc, "broken.jsonocel")


def event(doc: dict, eid: str) -> dict:
    return next(e for e in doc["events"] if e["id"] == eid)


def test_no_object_type_lists_the_types_with_counts(filled):
    refused(filled, SQLITE_LOG, r"ocel20_example.sqlite is an OCEL 2.0 log: name the object "
                                r"type .* with object_type=.*'Invoice' \(3 objects, 9 events\), "
                                r"'Payment' \(3 objects, 3 events\), 'Purchase Order' "
                                r"\(2 objects, 5 events\)")


def test_an_unknown_object_type_lists_the_valid_ones(filled):
    refused(filled, XML_LOG, r"ocel20_example.xmlocel has no object type 'Order'; its object "
                             r"types: 'Invoice' .*'Purchase Requisition' \(1 object, 3 events\)",
            object_type="Order")


def test_ocel_options_on_other_sources_are_refused(filled, tmp_path):
    csv = tmp_path / "log.csv"
    csv.write_text("case_id,activity,timestamp\nc1,a,2024-01-01\n")
    refused(filled, csv, r"object_type= is for OCEL 2.0 logs .* log.csv is not one",
            object_type=PO)
    refused(filled, csv, r"timezone= is for OCEL 2.0 logs", timezone="UTC")
    table = pd.DataFrame({"case_id": ["c"], "activity": ["a"], "timestamp": ["2024-01-01"]})
    refused(filled, table, r"object_type= is for OCEL 2.0 logs .* the table is not one",
            object_type=PO)
    refused(filled, JSON_LOG, r"case=, timestamp= name columns of a table", object_type=PO,
            case="x", timestamp="y")


def test_json_event_without_time_names_it(filled, tmp_path):
    path = broken_json(tmp_path, lambda d: event(d, "e4").pop("time"))
    refused(filled, path, r"broken.jsonocel, events\[3\] \(id 'e4'\): the event has no "
                          r"field 'time'", object_type=PO)


def test_json_unreadable_time_names_it(filled, tmp_path):
    path = broken_json(tmp_path, lambda d: event(d, "e5").update(time="last tuesday"))
    refused(filled, path, r"events\[4\] \(id 'e5'\): field 'time': cannot read 'last "
                          r"tuesday' as a time", object_type=PO)


def test_json_relation_to_an_unknown_object_names_it(filled, tmp_path):
    path = broken_json(tmp_path, lambda d: event(d, "e6")["relationships"].append(rel("R9")))
    refused(filled, path, r"events\[5\] \(id 'e6'\): a relationship to object 'R9', which "
                          r"the log does not hold", object_type=PO)


def test_json_badly_typed_attribute_names_it(filled, tmp_path):
    def change(doc):
        doc["eventTypes"][1]["attributes"][0]["type"] = "integer"   # po_editor
    path = broken_json(tmp_path, change)
    refused(filled, path, r"events\[3\] \(id 'e4'\): attribute 'po_editor': 'Mike' is not "
                          r"an integer", object_type=PO)


def test_json_duplicate_ids_and_reserved_names(filled, tmp_path):
    path = broken_json(tmp_path, lambda d: event(d, "e5").update(id="e4"))
    refused(filled, path, r"events\[4\] \(id 'e4'\): event id 'e4' is also the id of "
                          r"events\[3\]", object_type=PO)
    path = broken_json(tmp_path, lambda d: event(d, "e4")["attributes"].append(
        {"name": "objects", "value": "x"}))
    refused(filled, path, r"events\[3\] \(id 'e4'\): attribute 'objects' has the name "
                          r"eventlab gives the related objects", object_type=PO)


def test_json_that_is_not_an_ocel_2_log(filled, tmp_path):
    cut = tmp_path / "cut.jsonocel"
    cut.write_bytes(JSON_LOG.read_bytes()[:3000])
    refused(filled, cut, r"cut.jsonocel: not valid JSON", object_type=PO)
    old = write(tmp_path, {"ocel:global-log": {}, "ocel:events": {}}, "old.jsonocel")
    refused(filled, old, r"old.jsonocel is an OCEL 1.0 log", object_type=PO)
    empty = write(tmp_path, small_log([]), "empty.jsonocel")
    refused(filled, empty, r"empty.jsonocel holds no events", object_type="Order")
    idle = write(tmp_path, small_log([{"id": "e1", "type": "T", "time": "2024-01-01T00:00Z",
                                       "relationships": [rel("i1")]}]), "idle.jsonocel")
    refused(filled, idle, r"idle.jsonocel: no event relates to an object of type 'Order'",
            object_type="Order")


def xml_with(tmp_path: Path, old: str, new: str) -> Path:
    text = XML_LOG.read_text()
    assert text.count(old) == 1
    path = tmp_path / "broken.xmlocel"
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_xml_event_without_time_names_its_line(filled, tmp_path):
    path = xml_with(tmp_path, '<event id="e4" type="Change PO Quantity" '
                              'time="2022-01-13T12:00:00">',
                    '<event id="e4" type="Change PO Quantity">')
    line = line_of(path, '<event id="e4"')
    refused(filled, path, rf"broken.xmlocel, line {line} \(event 'e4'\): the event has no "
                          "attribute 'time'", object_type=PO)


def test_xml_bad_time_and_unknown_object_name_their_line(filled, tmp_path):
    path = xml_with(tmp_path, 'time="2022-01-14T12:00:00"', 'time="2022-13-14T12:00:00"')
    line = line_of(path, '<event id="e5"')
    refused(filled, path, rf"line {line} \(event 'e5'\): attribute 'time': cannot read "
                          "'2022-13-14T12:00:00'", object_type=PO)
    path = xml_with(tmp_path, '<relationship object-id="R2" qualifier="Invoice created with',
                    '<relationship object-id="R22" qualifier="Invoice created with')
    line = line_of(path, '<event id="e6"')
    refused(filled, path, rf"line {line} \(event 'e6'\): a relationship to object 'R22'",
            object_type=PO)


def test_xml_that_is_not_an_ocel_log(filled, tmp_path):
    path = xml_with(tmp_path, "</events>", "</event>")
    refused(filled, path, r"broken.xmlocel, line \d+: not well-formed XML", object_type=PO)
    page = tmp_path / "page.xmlocel"
    page.write_text("<html><body/></html>")
    refused(filled, page, r"page.xmlocel, line 1: not an OCEL 2.0 log: the root element is "
                          "<html>", object_type=PO)


def sqlite_with(tmp_path: Path, *statements: str) -> Path:
    path = tmp_path / "broken.sqlite"
    shutil.copy(SQLITE_LOG, path)
    con = sqlite3.connect(path)
    for statement in statements:
        con.execute(statement)
    con.commit()
    con.close()
    return path


def test_sqlite_bad_rows_name_table_and_row(filled, tmp_path):
    path = sqlite_with(tmp_path, "update event_ChangePOQuantity set ocel_time = null")
    refused(filled, path, r"broken.sqlite, table event_ChangePOQuantity, row 1 \(event 'e4'\): "
                          r"the event has no column 'ocel_time'", object_type=PO,
            timezone=WRITTEN_IN)
    path = sqlite_with(tmp_path, "update event_InsertInvoice set ocel_time = 'soon' "
                                 "where ocel_id = 'e6'")
    refused(filled, path, r"table event_InsertInvoice, row \d \(event 'e6'\): column "
                          "'ocel_time': cannot read 'soon' as a time", object_type=PO)
    rows = sqlite3.connect(SQLITE_LOG).execute("select count(*) from event_object").fetchone()
    path = sqlite_with(tmp_path, "insert into event_object values ('e4', 'PO7', 'lost')")
    refused(filled, path, rf"table event_object, row {rows[0] + 1} \(event 'e4'\): a "
                          "relationship to object 'PO7', which is not in table object",
            object_type=PO)


def test_sqlite_that_is_not_an_ocel_log(filled, tmp_path):
    path = sqlite_with(tmp_path, "drop table event_object")
    refused(filled, path, r"broken.sqlite: not an OCEL 2.0 SQLite log: it has no table "
                          "event_object", object_type=PO)
    path = sqlite_with(tmp_path, "delete from event_CreatePurchaseOrder where ocel_id = 'e10'")
    refused(filled, path, r"table event, row 10: event 'e10' has no row in table "
                          "event_CreatePurchaseOrder", object_type=PO)
    other = tmp_path / "notes.db"
    other.write_text("just text")
    refused(filled, other, r"notes.db: not an OCEL 2.0 SQLite log: the file is not a SQLite "
                           "database", object_type=PO)
