"""Importing real logs: XES and CSV agree, counts match an independent parse, bad input
writes nothing and names the line."""

from __future__ import annotations

import csv
import gzip
import json
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

import eventlab as el
from eventlab.importers import LogImportError

from conftest import DATA, new_store

RECEIPT_XES = DATA / "receipt" / "receipt.xes.gz"
RECEIPT_CSV = DATA / "receipt" / "receipt.csv"
RUNNING_XES = DATA / "running-example" / "running-example.xes"
BPIC2012 = DATA / "bpic2012" / "bpic2012.xes.gz"


def xes_counts(path: Path) -> tuple[int, int, int]:
    """Cases, events and activities by a full ElementTree parse (no eventlab code)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        root = ET.parse(handle).getroot()
    ns = {"x": root.tag[1:].split("}")[0]} if root.tag.startswith("{") else None
    prefix = "x:" if ns else ""
    traces = root.findall(f"{prefix}trace", ns)
    events, activities = 0, set()
    for trace in traces:
        for event in trace.findall(f"{prefix}event", ns):
            events += 1
            for attr in event:
                if attr.get("key") == "concept:name":
                    activities.add(attr.get("value"))
    return len(traces), events, len(activities)


def csv_counts(path: Path) -> tuple[int, int, int]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return (len({r["case:concept:name"] for r in rows}), len(rows),
            len({r["concept:name"] for r in rows}))


def events_of(store: el.EventStore) -> list[tuple]:
    return sorted((e.stream_id, e.version, e.type, e.recorded_at,
                   json.dumps(e.data, sort_keys=True), json.dumps(e.metadata, sort_keys=True))
                  for e in store.read_all())


@pytest.fixture(params=["duckdb", "memory", "postgres"])
def store(request, tmp_path):
    s = new_store(request.param, request, tmp_path)
    yield s
    s.close()


def test_receipt_xes_counts_match_an_independent_parse(store):
    summary = el.import_log(store, RECEIPT_XES)
    cases, events, activities = xes_counts(RECEIPT_XES)
    assert (summary.cases, summary.events, summary.activities) == (cases, events, activities)
    assert len(store.stream_ids()) == cases
    assert store.head() == events
    assert store.sql("select count(distinct type) n from events")["n"][0] == activities


def test_receipt_csv_counts_match_the_csv_module(store):
    summary = el.import_log(store, RECEIPT_CSV)
    assert (summary.cases, summary.events, summary.activities) == csv_counts(RECEIPT_CSV)


def test_receipt_xes_and_csv_give_the_same_events():
    from_xes, from_csv = el.connect(), el.connect()
    summary = el.import_log(from_xes, RECEIPT_XES)
    el.import_log(from_csv, RECEIPT_CSV)
    assert events_of(from_xes) == events_of(from_csv)
    assert len(events_of(from_xes)) == summary.events == xes_counts(RECEIPT_XES)[1]


def test_xes_maps_trace_event_and_time_fields():
    store = el.InMemoryEventStore()
    el.import_log(store, RUNNING_XES, stream_prefix="claim-")
    first = next(store.read_stream("claim-3"))
    assert first.type == "register request"
    assert first.recorded_at == datetime.fromisoformat("2010-12-30T14:32:00+01:00")
    assert first.data == {"org:resource": "Pete", "Activity": "register request",
                          "Resource": "Pete", "Costs": "50"}
    assert first.metadata == {"creator": "Fluxicon Nitro"}


def test_events_of_a_case_follow_their_timestamps(store):
    summary = el.import_log(store, RECEIPT_XES)
    df = store.to_df()
    assert len(df) == summary.events and df["stream_id"].nunique() == summary.cases
    assert df["position"].is_monotonic_increasing
    for _, case in df.groupby("stream_id"):
        assert case.sort_values("version")["recorded_at"].is_monotonic_increasing


def test_ties_keep_file_order():
    log = pd.DataFrame({"case": ["c", "c", "c"], "activity": ["b", "a", "c"],
                        "timestamp": ["2024-01-01 10:00", "2024-01-01 10:00",
                                      "2024-01-01 09:00"]})
    store = el.InMemoryEventStore()
    el.import_log(store, log)
    assert [e.type for e in store.read_stream("c")] == ["c", "b", "a"]


def test_attributes_limit_the_payload():
    store = el.InMemoryEventStore()
    el.import_log(store, RUNNING_XES, attributes=["Costs"])
    assert {tuple(e.data) for e in store.read_all()} == {("Costs",)}


@pytest.mark.slow
def test_bpic2012_imports_with_the_right_counts():
    store = el.connect()
    summary = el.import_log(store, BPIC2012)
    cases, events, activities = xes_counts(BPIC2012)
    assert (summary.cases, summary.events, summary.activities) == (cases, events, activities)
    assert events == 262_200
    counts = store.sql("select count(distinct stream_id) s, count(*) e, "
                       "count(distinct type) t from events").iloc[0].tolist()
    assert counts == [cases, events, activities]


# -- bad input: a clear error, nothing written ----------------------------------------------

def assert_nothing_written(store):
    assert store.head() == 0
    assert store.stream_ids() == []


def test_truncated_gzip(tmp_path, store):
    cut = tmp_path / "cut.xes.gz"
    cut.write_bytes(RECEIPT_XES.read_bytes()[:50_000])
    with pytest.raises(LogImportError, match="damaged or cut short"):
        el.import_log(store, cut)
    assert_nothing_written(store)


def test_xml_that_is_not_xes(tmp_path, store):
    page = tmp_path / "page.xes"
    page.write_text("<html><body><p>hello</p></body></html>")
    with pytest.raises(LogImportError, match=r"not an XES log: the root element is <html>"):
        el.import_log(store, page)
    assert_nothing_written(store)


def test_broken_xml_names_the_line(tmp_path, store):
    text = RUNNING_XES.read_text().splitlines()
    text[40] = text[40].replace("/>", ">")          # an unclosed tag
    broken = tmp_path / "broken.xes"
    broken.write_text("\n".join(text))
    with pytest.raises(LogImportError, match=r"line \d+: not well-formed XML"):
        el.import_log(store, broken)
    assert_nothing_written(store)


def test_xes_event_without_timestamp_names_its_line(tmp_path, store):
    lines = RUNNING_XES.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if "time:timestamp" in line and i > 30)
    event_line = max(i for i in range(index) if "<event>" in lines[i]) + 1
    del lines[index]
    bad = tmp_path / "no-time.xes"
    bad.write_text("\n".join(lines))
    with pytest.raises(LogImportError, match=rf"line {event_line}: column 'time:timestamp' "
                                             "is empty"):
        el.import_log(store, bad)
    assert_nothing_written(store)


def test_csv_missing_a_column(tmp_path, store):
    bad = tmp_path / "no-time.csv"
    pd.read_csv(RUNNING_XES.with_suffix(".csv")).drop(columns=["time:timestamp"]).to_csv(
        bad, index=False)
    with pytest.raises(LogImportError, match="no timestamp column found"):
        el.import_log(store, bad)
    with pytest.raises(LogImportError, match="there is no column 'when'"):
        el.import_log(store, RUNNING_XES.with_suffix(".csv"), timestamp="when")
    assert_nothing_written(store)


def test_csv_bad_timestamp_names_line_and_column(tmp_path, store):
    lines = RECEIPT_CSV.read_text().splitlines()
    cells = next(csv.reader([lines[6]]))
    header = next(csv.reader([lines[0]]))
    cells[header.index("time:timestamp")] = "not a time"
    lines[6] = ",".join(cells)                # file line 7
    bad = tmp_path / "bad-time.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(LogImportError,
                       match=r"bad-time.csv, line 7: column 'time:timestamp': "
                             r"cannot read 'not a time'"):
        el.import_log(store, bad)
    assert_nothing_written(store)


def test_csv_missing_case_names_the_line(tmp_path, store):
    bad = tmp_path / "no-case.csv"
    bad.write_text("case_id;activity;timestamp\nc1;a;2024-01-01\n;b;2024-01-02\n")
    with pytest.raises(LogImportError, match=r"line 3: column 'case_id' is empty"):
        el.import_log(store, bad)
    assert_nothing_written(store)


@pytest.mark.parametrize("name", ["empty.csv", "empty.xes", "empty.xes.gz"])
def test_empty_files(tmp_path, store, name):
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wb"):
            pass
    else:
        path.write_bytes(b"")
    with pytest.raises(LogImportError, match="empty"):
        el.import_log(store, path)
    assert_nothing_written(store)


def test_header_only_csv_holds_no_events(tmp_path, store):
    path = tmp_path / "header.csv"
    path.write_text("case_id,activity,timestamp\n")
    with pytest.raises(LogImportError, match="holds no events"):
        el.import_log(store, path)
    assert_nothing_written(store)


def test_a_failed_import_leaves_earlier_events_alone(tmp_path):
    store = el.connect()
    el.import_log(store, RUNNING_XES)
    before = store.head()
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,activity,timestamp\nc1,a,2024-01-01\nc1,b,yesterday\n")
    with pytest.raises(LogImportError, match="line 3"):
        el.import_log(store, bad)
    assert store.head() == before


def test_unknown_source_kinds(tmp_path, store):
    other = tmp_path / "log.json"
    other.write_text("{}")
    with pytest.raises(LogImportError, match="unknown kind of log"):
        el.import_log(store, other)
    with pytest.raises(LogImportError, match="does not exist"):
        el.import_log(store, tmp_path / "missing.xes")
    with pytest.raises(LogImportError, match="cannot import a list"):
        el.import_log(store, [1, 2])


# -- importing again is a safe retry ---------------------------------------------------------

def ids_of(store: el.EventStore) -> list[tuple[str, int, str]]:
    return sorted((e.stream_id, e.version, str(e.event_id)) for e in store.read_all())


def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("case_id,activity,timestamp\n" + "".join(f"{c},{a},{t}\n"
                                                             for c, a, t in rows))
    return path


ROWS = [("c1", "open", "2024-01-01 09:00"), ("c1", "close", "2024-01-01 10:00"),
        ("c2", "open", "2024-01-02 09:00")]


def test_importing_the_same_file_twice_leaves_the_log_unchanged(store, tmp_path):
    first = el.import_log(store, RUNNING_XES)
    before, ids = events_of(store), ids_of(store)
    again = el.import_log(store, RUNNING_XES)
    assert (first.written, again.written, again.already_stored) == (42, 0, 42)
    assert (again.cases, again.events) == (first.cases, first.events)
    assert store.head() == 42 and events_of(store) == before and ids_of(store) == ids
    copy = tmp_path / "elsewhere.xes"        # the same bytes under another name
    copy.write_bytes(RUNNING_XES.read_bytes())
    assert el.import_log(store, copy).written == 0 and store.head() == 42


def test_reimport_into_a_reopened_file_writes_nothing(tmp_path):
    path = tmp_path / "log.duckdb"
    with el.connect(path) as store:
        el.import_log(store, RECEIPT_CSV)
        head, ids = store.head(), ids_of(store)
    with el.connect(path) as store:
        summary = el.import_log(store, RECEIPT_CSV)
        assert summary.written == 0 and summary.already_stored == head
        assert store.head() == head and ids_of(store) == ids


def test_imported_ids_are_uuid5_and_the_same_in_every_store():
    a, b = el.connect(), el.InMemoryEventStore()
    el.import_log(a, RUNNING_XES)
    el.import_log(b, RUNNING_XES)
    assert ids_of(a) == ids_of(b)
    assert {e.event_id.version for e in a.read_all()} == {5}


def test_a_different_file_with_overlapping_rows_is_imported_in_full(store, tmp_path):
    el.import_log(store, write_csv(tmp_path / "a.csv", ROWS))
    more = [*ROWS, ("c1", "reopen", "2024-01-03 09:00")]
    summary = el.import_log(store, write_csv(tmp_path / "b.csv", more))
    assert summary.written == 4 and store.head() == 7
    assert store.stream_version("c1") == 5


def test_other_options_make_another_import(store):
    el.import_log(store, RUNNING_XES)
    assert el.import_log(store, RUNNING_XES, stream_prefix="copy-").written == 42
    assert el.import_log(store, RUNNING_XES, stream_prefix="copy-").written == 0
    assert el.import_log(store, RUNNING_XES, attributes=["Costs"]).written == 42
    assert store.head() == 126
    assert len({e.event_id for e in store.read_all()}) == 126


def test_a_frame_keeps_its_event_ids(store):
    el.import_log(store, RUNNING_XES)
    frame = store.to_df()
    copy = el.connect()
    assert el.import_log(copy, frame).written == 42
    assert ids_of(copy) == ids_of(store)
    assert el.import_log(store, frame).written == 0 and store.head() == 42
    # under a prefix the copy gets ids of its own, still stable on a retry
    assert el.import_log(store, frame, stream_prefix="copy-").written == 42
    assert el.import_log(store, frame, stream_prefix="copy-").written == 0
    assert len({e.event_id for e in store.read_all()}) == store.head() == 84


def test_a_dataframe_again_is_a_retry_and_a_grown_one_adds_its_new_rows(store):
    log = pd.DataFrame(ROWS, columns=["case_id", "activity", "timestamp"])
    assert el.import_log(store, log).written == 3
    assert el.import_log(store, log).written == 0
    grown = pd.concat([log, pd.DataFrame([("c1", "reopen", "2024-01-03 09:00"),
                                          ("c3", "open", "2024-01-04 09:00")],
                                         columns=log.columns)])
    summary = el.import_log(store, grown)
    assert (summary.written, summary.already_stored, store.head()) == (2, 3, 5)
    assert [e.type for e in store.read_stream("c1")] == ["open", "close", "reopen"]
    assert el.import_log(store, grown).written == 0
    changed = log.assign(activity=["begin", "end", "begin"])
    assert el.import_log(store, changed).written == 3   # other content: other events


def test_stored_rows_out_of_place_are_refused(store):
    log = pd.DataFrame(ROWS, columns=["case_id", "activity", "timestamp"])
    el.import_log(store, log)
    earlier = pd.concat([log, pd.DataFrame([("c1", "draft", "2023-12-31 09:00"),
                                            ("c9", "open", "2024-01-03 09:00")],
                                           columns=log.columns)])
    with pytest.raises(LogImportError, match="stream 'c1' already holds"):
        el.import_log(store, earlier)                 # c1's new event comes first
    assert store.head() == 3


def test_bad_event_ids_in_a_frame_name_the_row(store):
    el.import_log(store, RUNNING_XES)
    frame = store.to_df()
    target = el.InMemoryEventStore()
    bad = frame.assign(event_id=["not-a-uuid", *frame["event_id"][1:]])
    with pytest.raises(LogImportError, match=r"row 1: column 'event_id': 'not-a-uuid'"):
        el.import_log(target, bad)
    twice = frame.assign(event_id=[*frame["event_id"][:-1], frame["event_id"][0]])
    with pytest.raises(LogImportError, match=r"row 42: column 'event_id'.*earlier row"):
        el.import_log(target, twice)
    assert target.head() == 0
